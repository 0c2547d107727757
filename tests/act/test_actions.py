"""Real actions: argv commands (never a shell), HTTP, waits, retries, secrets, limits.

Hostile values arrive the way they would in production — as alert labels — and must be
rejected by validation or reach the program as exactly one literal argument.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import yaml

from baton.act.actions import ActionContext, run_action
from baton.act.executions import create_execution
from baton.act.limits import LimitReached
from baton.act.runbook import ParamError, parse, resolve_params
from baton.act.steps import perform
from baton.act.worker import run_execution
from baton.kernel.audit import Actor
from baton.store.models import AuditRecord, Execution
from tests.helpers import python_script

ECHO_ARGS = python_script("import json,sys; print(json.dumps(sys.argv[1:]))")


def _runbook(steps, params=None, limits=None, verify=None):
    doc = {
        "id": "test-book",
        "title": "A runbook for tests",
        "owner": "team-test",
        "risk": "low",
        "reversible": False,
        "match": {"alertnames": ["Anything"]},
        "autonomy": {"default": "auto"},
        "params": params
        or {
            "target": {
                "source": "label:target",
                "type": "string",
                "pattern": r"^[^\x00-\x1f]{1,300}$",
                "allow_leading_dash": False,
            }
        },
        "steps": steps,
    }
    if limits:
        doc["limits"] = limits
    if verify:
        doc["verify"] = verify
    return parse(yaml.safe_dump(doc))


HOSTILE = [
    "web; rm -rf /",
    "a && b",
    "$(id)",
    "`id`",
    "'quoted' \"double\"",
    "../etc/passwd",
    "two words",
    "x" * 250,
]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_label_values_arrive_as_one_literal_argument(value):
    rb = _runbook(
        [
            {
                "name": "echo",
                "action": "command",
                "with": {"argv": [*ECHO_ARGS, "--target", "{{ target }}"]},
            }
        ]
    )
    params = resolve_params(rb, origin_service=None, labels={"target": value})
    _, outcome = perform(rb.doc["steps"][0], params, ActionContext(), run_action)
    assert outcome.ok, outcome.output
    assert json.loads(outcome.output.removeprefix("exit 0:").strip()) == ["--target", value]


@pytest.mark.parametrize(
    "value", ["-rf", "--help", "x\ny", "x\x00y", "a\tb", "é" * 300, "bad\udcff"]
)
def test_hostile_values_that_fail_validation_never_run(value):
    rb = _runbook(
        [{"name": "echo", "action": "command", "with": {"argv": ["true"]}}],
        params={"target": {"source": "label:target", "type": "string", "pattern": r"^\S{1,256}$"}},
    )
    with pytest.raises(ParamError):
        resolve_params(rb, origin_service=None, labels={"target": value})


def test_no_shell_is_ever_involved(tmp_path):
    marker = tmp_path / "pwned"
    rb = _runbook(
        [{"name": "echo", "action": "command", "with": {"argv": ["echo", "{{ target }}"]}}]
    )
    params = resolve_params(rb, origin_service=None, labels={"target": f"x; touch {marker}"})
    _, outcome = perform(rb.doc["steps"][0], params, ActionContext(), run_action)
    assert outcome.ok and not marker.exists()
    assert f"x; touch {marker}" in outcome.output


def test_timeouts_kill_the_process_and_retries_back_off():
    sleeps = []
    ctx = ActionContext(sleep=sleeps.append)
    step = {
        "name": "slow",
        "action": "command",
        "timeout_s": 0.3,
        "retries": 2,
        "backoff_s": 0.5,
        "with": {"argv": python_script("import time; time.sleep(5)")},
    }
    _, outcome = perform(step, {}, ctx, run_action)
    assert not outcome.ok and "timed out" in outcome.output and "attempt 3" in outcome.output
    assert sleeps == [0.5, 1.0]


def test_unknown_program_and_bad_argv_fail_cleanly():
    assert not run_action("command", {"argv": ["no-such-program-xyz"]}, ActionContext()).ok
    assert not run_action("command", {"argv": "echo hi"}, ActionContext()).ok


def test_secrets_are_injected_but_never_shown(monkeypatch):
    monkeypatch.setenv("BATON_SECRET_API_TOKEN", "s3cr3t-value")
    step = {
        "name": "echo",
        "action": "command",
        "with": {"argv": [*ECHO_ARGS, "{{ secret.API_TOKEN }}"]},
    }
    shown, outcome = perform(step, {}, ActionContext(), run_action)
    assert outcome.ok
    assert "s3cr3t-value" not in outcome.output and "***" in outcome.output
    assert shown["argv"][-1] == "***"
    monkeypatch.delenv("BATON_SECRET_API_TOKEN")
    _, missing = perform(step, {}, ActionContext(), run_action)
    assert not missing.ok and "BATON_SECRET_API_TOKEN" in missing.output


def test_http_action_sends_values_as_json_not_as_syntax(http_peer, monkeypatch):
    api_server, seen = http_peer
    monkeypatch.setenv("BATON_SECRET_HOOK", "tok-123")
    rb = _runbook(
        [
            {
                "name": "call",
                "action": "http",
                "with": {
                    "method": "POST",
                    "url": f"{api_server}/ok",
                    "headers": {"Authorization": "Bearer {{ secret.HOOK }}"},
                    "json": {"target": "{{ target }}", "note": "for {{ target }}"},
                    "expect_status": 202,
                },
            }
        ]
    )
    params = resolve_params(rb, origin_service=None, labels={"target": 'a"}, "x": {"y'})
    shown, outcome = perform(rb.doc["steps"][0], params, ActionContext(), run_action)
    assert outcome.ok, outcome.output
    _, auth, body = seen[0]
    assert auth == "Bearer tok-123" and shown["headers"]["Authorization"] == "Bearer ***"
    assert body == {"target": 'a"}, "x": {"y', "note": 'for a"}, "x": {"y'}
    bad = run_action(
        "http", {"method": "POST", "url": f"{api_server}/fail", "json": {}}, ActionContext()
    )
    assert not bad.ok and "HTTP 500" in bad.output


def test_continue_on_error_and_wait(demo):
    rb_doc = {
        "name": "may fail",
        "action": "command",
        "continue_on_error": True,
        "with": {"argv": ["false"]},
    }
    _, outcome = perform(rb_doc, {}, ActionContext(), run_action)
    assert not outcome.ok
    slept = []
    assert run_action("wait", {"seconds": 2}, ActionContext(sleep=slept.append)).ok
    assert slept == [1.0, 1.0]  # in slices, so a cancel can end the wait
    assert not run_action("wait", {"seconds": 99999}, ActionContext()).ok


def test_limits_hold_under_concurrent_proposals(demo):
    rb = _runbook(
        [{"name": "noop", "action": "command", "with": {"argv": ["true"]}}],
        limits={"max_per_hour": 2},
    )
    from baton.act.runbook import Catalogue
    from baton.act.versions import sync_catalogue

    with demo.platform.db.session() as s:
        sync_catalogue(s, Catalogue({rb.id: rb}), demo.clock.now())
    results = []

    def propose(i):  # like the act stage: a refused run is recorded, the rest commits
        with demo.platform.db.session() as s:
            try:
                create_execution(
                    s,
                    runbook=rb,
                    params={"target": f"t{i}"},
                    incident_id=None,
                    decision_id=None,
                    at=demo.clock.now(),
                    requested_by=Actor("t", "human"),
                )
                results.append("ok")
            except LimitReached:
                results.append("limited")

    threads = [threading.Thread(target=propose, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["limited"] * 4 + ["ok"] * 2
    with demo.platform.db.session() as s:
        assert s.query(Execution).filter_by(runbook_id="test-book").count() == 2
        limited = s.query(AuditRecord).filter_by(action="execution.limited").count()
    assert limited == 4


def test_a_command_runbook_runs_end_to_end_and_verifies(demo, tmp_path):
    flag = tmp_path / "fixed"
    rb = _runbook(
        [{"name": "fix", "action": "command", "with": {"argv": ["touch", str(flag)]}}],
        verify=[
            {
                "name": "flag exists",
                "check": "command_exit",
                "with": {"argv": ["test", "-f", str(flag)]},
            }
        ],
    )
    from baton.act.runbook import Catalogue
    from baton.act.versions import sync_catalogue

    with demo.platform.db.session() as s:
        sync_catalogue(s, Catalogue({rb.id: rb}), demo.clock.now())
        execution, _ = create_execution(
            s,
            runbook=rb,
            params={"target": "x"},
            incident_id=None,
            decision_id=None,
            at=demo.clock.now(),
            requested_by=Actor("t", "human"),
        )
    p = demo.platform
    assert (
        run_execution(p.db, execution.id, p.dispatch.action_context(), p.clock.now) == "verifying"
    )
    p.scheduler.tick()
    with p.db.session() as s:
        done = s.get(Execution, execution.id)
        assert done.status == "succeeded" and done.verified is True
        assert [st.phase for st in done.steps] == ["step", "verify"]


def test_timeout_kills_the_whole_process_group(tmp_path):
    import time

    pidfile = tmp_path / "child.pid"
    script = (
        "import subprocess,sys,time;"
        f"p=subprocess.Popen([sys.executable,'-c','import time; time.sleep(60)']);"
        f"open({str(pidfile)!r},'w').write(str(p.pid));time.sleep(60)"
    )
    started = time.monotonic()
    outcome = run_action("command", {"argv": python_script(script)}, ActionContext(timeout_s=1.0))
    assert not outcome.ok and "timed out" in outcome.output
    assert time.monotonic() - started < 10
    child = int(pidfile.read_text())
    time.sleep(0.3)
    stat = Path(f"/proc/{child}/stat")
    if stat.exists():  # a zombie waiting to be reaped is dead too
        assert stat.read_text().split(") ")[1][0] == "Z"  # the grandchild is gone too


def test_cancel_kills_a_running_command(demo):
    import time

    rb = _runbook(
        [
            {
                "name": "long",
                "action": "command",
                "timeout_s": 120,
                "with": {"argv": python_script("import time; time.sleep(60)")},
            }
        ]
    )
    from baton.act.runbook import Catalogue
    from baton.act.versions import sync_catalogue

    p = demo.platform
    with p.db.session() as s:
        sync_catalogue(s, Catalogue({rb.id: rb}), demo.clock.now())
        execution, _ = create_execution(
            s,
            runbook=rb,
            params={"target": "x"},
            incident_id=None,
            decision_id=None,
            at=demo.clock.now(),
            requested_by=Actor("t", "human"),
        )
    outcome = {}
    worker = threading.Thread(
        target=lambda: outcome.update(
            status=run_execution(p.db, execution.id, p.dispatch.action_context(), p.clock.now)
        )
    )
    started = time.monotonic()
    worker.start()
    for _ in range(50):  # cancel once the program runs (its step is stored as running)
        with p.db.session() as s:
            if [st.status for st in s.get(Execution, execution.id).steps] == ["running"]:
                break
        time.sleep(0.1)
    p.commands.override(execution.id, "cancel", "wrong_fix", "stop now", Actor("alice", "human"))
    worker.join(timeout=15)
    assert not worker.is_alive() and outcome["status"] == "cancelled"
    assert time.monotonic() - started < 15
    with p.db.session() as s:
        step = s.get(Execution, execution.id).steps[0]
        assert "stopped" in step.output and "killed" in step.output


@pytest.mark.parametrize("value", ["-5", "+7", " 9 ", "1_000", "٣", "1" * 30, "1e3", True])
def test_integer_params_are_strict(value):
    rb = _runbook(
        [{"name": "scale", "action": "command", "with": {"argv": [*ECHO_ARGS, "{{ n }}"]}}],
        params={"n": {"source": "label:n", "type": "integer", "maximum": 20}},
    )
    with pytest.raises(ParamError):
        resolve_params(rb, origin_service=None, labels={"n": value})
    params = resolve_params(rb, origin_service=None, labels={"n": "12"})
    _, outcome = perform(rb.doc["steps"][0], params, ActionContext(), run_action)
    assert outcome.ok and json.loads(outcome.output.removeprefix("exit 0:").strip()) == ["12"]


@pytest.mark.parametrize(
    "value",
    ["evil.com#", "evil.com?", "evil.com/", "a@evil.com#", "169.254.169.254/latest/meta-data#"],
)
def test_a_value_inside_a_url_cannot_move_the_host(value):
    rb = _runbook(
        [{"name": "call", "action": "http", "with": {"url": "https://{{ target }}.internal/x"}}]
    )
    params = resolve_params(rb, origin_service=None, labels={"target": value})
    shown, _ = perform(rb.doc["steps"][0], params, ActionContext(dry_run=True), run_action)
    from urllib.parse import urlsplit

    assert urlsplit(shown["url"]).path == "/x" and urlsplit(shown["url"]).hostname.endswith(
        ".internal"
    )


def test_unconstrained_params_and_shell_code_do_not_validate():
    loose = {"source": "incident.origin_service", "type": "string"}
    with pytest.raises(Exception, match=r"params\.service"):
        _runbook(
            [{"name": "x", "action": "command", "with": {"argv": ["true"]}}],
            params={"service": loose},
        )
    for argv in (
        ["sh", "-c", "systemctl restart {{ target }}"],
        ["ssh", "host", "restart {{ target }}"],
    ):
        with pytest.raises(Exception, match="shell code"):
            _runbook([{"name": "x", "action": "command", "with": {"argv": argv}}])


def test_cancel_stops_retries_and_nul_and_huge_output_are_handled():
    calls = []
    cancel = iter([None, "a person cancelled it"] + ["a person cancelled it"] * 50)
    ctx = ActionContext(sleep=lambda s: None, should_cancel=lambda: next(cancel))
    step = {
        "name": "flaky",
        "action": "command",
        "retries": 3,
        "backoff_s": 5,
        "with": {"argv": python_script("import sys; sys.stdout.write('a\\x00b'); sys.exit(1)")},
    }

    def counting(kind, args, c):
        calls.append(kind)
        return run_action(kind, args, c)

    _, outcome = perform(step, {}, ctx, counting)
    assert len(calls) == 1 and "stopped before a retry" in outcome.output
    assert "\x00" not in outcome.output
    big = run_action(
        "command",
        {"argv": python_script("import sys; sys.stdout.write('x' * 50_000_000)")},
        ActionContext(timeout_s=60),
    )
    assert big.ok and len(big.output) < 10_000


def test_all_known_secrets_are_scrubbed_in_their_encodings(monkeypatch, tmp_path):
    secrets_file = tmp_path / "secrets.yaml"
    secrets_file.write_text("DB_PASSWORD: 'p@ss w/rd+1é\"x'\n")
    monkeypatch.setenv("BATON_SECRETS_FILE", str(secrets_file))
    script = (
        "import json,sys,urllib.parse,base64; v=sys.argv[1];"
        "print(v, urllib.parse.quote(v), json.dumps(v), base64.b64encode(v.encode()).decode())"
    )
    step = {
        "name": "leaky",
        "action": "command",
        "with": {"argv": [*python_script(script), "{{ secret.DB_PASSWORD }}"]},
    }
    shown, outcome = perform(step, {}, ActionContext(), run_action)
    assert outcome.ok and "p@ss" not in outcome.output and "cEBzc" not in outcome.output
    assert shown["argv"][-1] == "***"


def test_each_limit_refuses_the_run_over_it_and_only_that(demo):
    rb = _runbook(
        [{"name": "noop", "action": "command", "with": {"argv": ["true"]}}],
        limits={"max_per_hour_per_target": 2, "max_concurrent": 3},
    )
    at, asker = demo.clock.now(), Actor("t", "human")

    def queue(service: str | int, global_per_hour: int | None = None) -> str:
        with demo.platform.db.session() as s:
            try:
                create_execution(
                    s,
                    runbook=rb,
                    params={"service": service, "n": len(seen)},  # never a repeat
                    incident_id=None,
                    decision_id=None,
                    at=at,
                    requested_by=asker,
                    global_per_hour=global_per_hour,
                )
                return "ok"
            except LimitReached as exc:
                return str(exc)
            finally:
                seen.append(service)

    seen: list[str | int] = []
    assert [queue("web"), queue("web")] == ["ok", "ok"]
    assert "max_per_hour_per_target" in queue("web")  # a third on the same target
    assert queue("db") == "ok"  # another target is its own count
    assert "max_concurrent" in queue("cache")  # three already queued: in flight
    with demo.platform.db.session() as s:
        s.query(Execution).filter_by(runbook_id=rb.id).update({"status": "succeeded"})
    assert queue("cache") == "ok"  # finished runs are not in flight
    assert "max_runs_per_hour" in queue("mail", global_per_hour=4)  # four ran this hour
    with demo.platform.db.session() as s:
        s.query(Execution).filter_by(runbook_id=rb.id).update({"status": "succeeded"})
    assert [queue(7), queue(7)] == ["ok", "ok"]  # a target that is not text counts too
    assert "max_per_hour_per_target" in queue(7)
