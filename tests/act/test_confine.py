"""Targets chosen by event data stay inside what people allowed, and a sender of signals
cannot make a fresh install change a real host without a person.

Each escape arrives the way it would in production — as an alert label — and must be
refused when the params are rendered or, if the file system changes afterwards, just
before the step runs.
"""

from __future__ import annotations

import os
import stat
import subprocess

import pytest
import yaml
from fastapi.testclient import TestClient

from baton.act.confine import Scope, before_step, confine_path
from baton.act.runbook import Catalogue, ParamError, parse, resolve_params
from baton.act.versions import sync_catalogue
from baton.api.app import create_app
from baton.correlate.topology import ServiceDef
from baton.govern.rbac import create_token
from baton.store.models import Approval, Decision, Execution, Proposal
from tests.helpers import run_now


def _runbook(params, argv):
    doc = {
        "id": "confined-book",
        "title": "A runbook acting on confined targets",
        "owner": "team-test",
        "risk": "low",
        "reversible": False,
        "match": {"alertnames": ["Anything"]},
        "autonomy": {"default": "approve"},
        "params": params,
        "steps": [{"name": "act", "action": "command", "with": {"argv": argv}}],
    }
    return parse(yaml.safe_dump(doc))


def _dir_book(root, kind="dir"):
    spec = {"source": "label:dir", "type": "path", "kind": kind, "roots": [str(root)]}
    return _runbook({"dir": spec}, ["true", "{{ dir }}"])


@pytest.fixture
def root(tmp_path):
    allowed = tmp_path / "srv" / "app"
    (allowed / "logs").mkdir(parents=True)
    (tmp_path / "secret").mkdir()
    return allowed


def _escapes(tmp_path, root):
    """The corpus: each label value, and why it must never be acted on."""
    (root / "out").symlink_to(tmp_path / "secret")
    (root / "etc").symlink_to("/etc")
    (root / "null").symlink_to("/dev/null")
    (root / "loop").symlink_to(root / "loop")
    os.mkfifo(root / "fifo")
    os.mknod(root / "zero", 0o600 | stat.S_IFCHR, os.makedev(1, 5))
    return {
        "dot-dot": f"{root}/logs/../../../secret",
        "dot": f"{root}/./logs",
        "double slash": f"{root}//logs",
        "relative": "srv/app/logs",
        "symlink out of the root": f"{root}/out",
        "symlink to /etc": f"{root}/etc/passwd",
        "symlink to a device": f"{root}/null",
        "symlink loop": f"{root}/loop",
        "fifo": f"{root}/fifo",
        "character device": f"{root}/zero",
        "/proc/self/root": f"/proc/self/root{root}/logs",
        "/proc/self/cwd": "/proc/self/cwd",
        "/proc/self/fd": "/proc/self/fd/0",
        "/sys": "/sys/kernel",
        "/dev/sda": "/dev/sda",
        "/dev/null": "/dev/null",
        "over-long path": f"{root}/" + "a/" * 200,
        "over-long component": f"{root}/" + "x" * 256,
        "missing": f"{root}/nothing-here",
        "another root": str(tmp_path / "secret"),
        "shell": f"{root}/logs; rm -rf /",
        "newline": f"{root}/logs\n/etc",
        "leading dash": "-rf",
    }


def test_every_escape_is_refused_at_render(tmp_path, root):
    rb = _dir_book(root, kind="dir")
    for why, value in _escapes(tmp_path, root).items():
        with pytest.raises(ParamError):
            resolve_params(rb, origin_service=None, labels={"dir": value})
            pytest.fail(f"{why}: {value!r} was accepted")


def test_an_allowed_path_is_kept_resolved(tmp_path, root):
    (root / "current").symlink_to(root / "logs")  # a symlink that stays inside is fine
    rb = _dir_book(root)
    params = resolve_params(rb, origin_service=None, labels={"dir": f"{root}/current"})
    assert params["dir"] == str(root / "logs")
    assert resolve_params(rb, origin_service=None, labels={"dir": str(root)})["dir"] == str(root)


def test_a_bind_mount_inside_the_root_is_refused(tmp_path, root):
    with pytest.raises(ValueError, match="mount point"):
        confine_path("dir", str(root / "logs"), [str(root)], mounts=lambda: [str(root / "logs")])
    with pytest.raises(ValueError, match="mount point"):  # one below the target too
        confine_path("dir", str(root), [str(root)], mounts=lambda: [str(root / "logs")])
    # the root itself being a mount point is fine
    assert confine_path("dir", str(root / "logs"), [str(root)], mounts=lambda: [str(root)])


def test_a_real_bind_mount_is_refused(tmp_path, root):
    target = root / "logs"
    if subprocess.run(["mount", "--bind", str(tmp_path / "secret"), str(target)]).returncode:
        pytest.skip("bind mounts need CAP_SYS_ADMIN here")
    try:
        with pytest.raises(ParamError, match="mount point"):
            resolve_params(_dir_book(root), origin_service=None, labels={"dir": str(target)})
    finally:
        subprocess.run(["umount", str(target)], check=True)


def test_no_roots_means_nothing_is_allowed(root):
    rb = _runbook(
        {"dir": {"source": "label:dir", "type": "path", "roots": []}}, ["true", "{{ dir }}"]
    )
    with pytest.raises(ParamError, match="no allowed roots"):
        resolve_params(rb, origin_service=None, labels={"dir": str(root)})
    scope = Scope.of(rb.params, {"dir": {"roots": [str(root)]}})  # a lead's policy
    assert resolve_params(rb, origin_service=None, labels={"dir": str(root)}, scope=scope)


def test_roots_that_confine_nothing_do_not_validate():
    for bad in ("/", "/proc", "/dev/disk"):
        with pytest.raises(ValueError, match="cannot be a root"):
            _runbook(
                {"d": {"source": "label:d", "type": "path", "roots": [bad]}}, ["true", "{{ d }}"]
            )


def test_a_symlink_swapped_in_after_render_stops_the_step(platform, tmp_path, root):
    logs = root / "logs"
    victim = tmp_path / "secret" / "precious"
    victim.write_text("keep")
    rb = _runbook(
        {"dir": {"source": "label:dir", "type": "path", "kind": "dir", "roots": [str(root)]}},
        ["find", "{{ dir }}", "-type", "f", "-delete"],
    )
    params = resolve_params(rb, origin_service=None, labels={"dir": str(logs)})
    assert before_step(rb.params, params) is None
    logs.rmdir()
    logs.symlink_to(tmp_path / "secret")  # the race: swapped after the proposal
    assert "now resolves to" in before_step(rb.params, params)
    with platform.db.session() as s:
        sync_catalogue(s, Catalogue({rb.id: rb}), platform.clock.now())
    execution_id, status = run_now(platform, rb, params)
    assert status != "verifying" and victim.read_text() == "keep"
    with platform.db.session() as s:
        assert "confinement" in s.get(Execution, execution_id).summary


def test_hosts_units_and_processes_come_from_lists_people_keep():
    rb = _runbook(
        {
            "host": {"source": "label:host", "type": "host"},
            "unit": {"source": "label:unit", "type": "unit", "allow": ["nginx.service"]},
            "proc": {"source": "label:proc", "type": "process", "allow": ["report-builder"]},
        },
        ["true", "{{ host }}", "{{ unit }}", "{{ proc }}"],
    )
    good = {"host": "web-01", "unit": "nginx.service", "proc": "report-builder"}
    scope = Scope.of(rb.params, hosts={"web-01", "db-01"})
    assert resolve_params(rb, origin_service=None, labels=good, scope=scope) == good
    for name, bad in [
        ("host", "attacker.example"),
        ("host", "web-01; reboot"),
        ("unit", "sshd.service"),
        ("unit", "nginx.service/../sshd"),
        ("proc", "init"),
        ("proc", "report-builder "),
    ]:
        with pytest.raises(ParamError, match=name):
            resolve_params(rb, origin_service=None, labels={**good, name: bad}, scope=scope)
    with pytest.raises(ParamError, match="no service catalogue"):
        resolve_params(rb, origin_service=None, labels=good)  # no hosts known: refused
    widened = Scope.of(rb.params, {"proc": {"allow": ["init"]}}, hosts={"web-01"})
    assert resolve_params(rb, origin_service=None, labels={**good, "proc": "init"}, scope=widened)


# --- the reproduction of the safety defect ---------------------------------------------
def _post_alert(platform, labels):
    with platform.db.session() as s:
        _, secret = create_token(s, name="prometheus", role="ingest", at=platform.clock.now())
    client = TestClient(create_app(platform))
    resp = client.post(
        "/api/v2/alerts", json=[{"labels": labels}], headers={"Authorization": f"Bearer {secret}"}
    )
    assert resp.status_code == 200, resp.text
    platform.drain.process_inbox()
    for _ in range(20):  # ten simulated minutes: grouping, triage, any veto window
        platform.clock.advance(30)
        platform.scheduler.tick()


def _big_log(directory):
    directory.mkdir(parents=True, exist_ok=True)
    log = directory / "app.log"
    with log.open("wb") as handle:
        handle.truncate(101 * 1024 * 1024)  # sparse, over the runbook's 100 MB
    return log


def _rows(platform, model):
    with platform.db.session() as s:
        return list(s.query(model).order_by(model.id))


def test_an_ingest_alert_naming_a_directory_waits_for_a_person(platform, tmp_path):
    """The issue's reproduction: a fresh serve-like platform (no sandbox) with the starter
    runbooks; a lead allowed the directory's root, as a real install would."""
    logs = tmp_path / "srv" / "app" / "logs"
    log = _big_log(logs)
    policy = platform.settings.runbooks_path / "policy.yaml"
    doc = yaml.safe_load(policy.read_text())
    doc["runbooks"] = {"compress-large-logs": {"params": {"log_dir": {"roots": [str(tmp_path)]}}}}
    policy.write_text(yaml.safe_dump(doc))
    platform.config.reload()
    _post_alert(platform, {"alertname": "LogVolumeFull", "log_dir": str(logs)})
    [proposal] = _rows(platform, Proposal)
    assert proposal.runbook_id == "compress-large-logs"
    assert proposal.params["log_dir"] == str(logs)
    [decision] = _rows(platform, Decision)
    assert decision.tier == "approve", decision.reasons
    assert "act on a real host" in decision.reasons[0]
    [approval] = _rows(platform, Approval)
    assert approval.status == "pending"
    assert _rows(platform, Execution) == []
    assert log.exists() and not (logs / "app.log.gz").exists()  # untouched


def test_the_default_roots_refuse_a_directory_they_do_not_hold(platform, tmp_path):
    logs = tmp_path / "srv" / "app" / "logs"
    log = _big_log(logs)
    _post_alert(platform, {"alertname": "LogVolumeFull", "log_dir": str(logs)})
    assert _rows(platform, Proposal) == [] and _rows(platform, Execution) == []
    assert log.exists()


def test_labels_cannot_raise_a_tier_or_widen_a_target(platform, tmp_path):
    """Whatever else the sender puts in the alert, the ceiling, caps, roots and limits are
    the runbook's and the policy's."""
    logs = tmp_path / "srv" / "app" / "logs"
    log = _big_log(logs)
    outside = _big_log(tmp_path / "elsewhere")
    policy = platform.settings.runbooks_path / "policy.yaml"
    doc = yaml.safe_load(policy.read_text())
    doc["runbooks"] = {"compress-large-logs": {"params": {"log_dir": {"roots": [str(logs)]}}}}
    policy.write_text(yaml.safe_dump(doc))
    platform.config.reload()
    platform.config.declare_services([ServiceDef("stage-app", env="staging")])
    hostile = {
        "alertname": "LogVolumeFull",
        "log_dir": str(logs),
        "service": "stage-app",  # a staging service, where caps are looser
        "env": "staging",
        "autonomy": "auto",
        "tier": "auto",
        "min_mb": "0",
        "roots": str(tmp_path),
        "max_per_hour": "1000",
    }
    _post_alert(platform, hostile)
    decisions = _rows(platform, Decision)
    assert decisions and all(d.tier in ("approve", "recommend", "observe") for d in decisions)
    assert [p.params["min_mb"] for p in _rows(platform, Proposal)] == [100]
    _post_alert(platform, {**hostile, "log_dir": str(outside.parent)})
    assert len(_rows(platform, Proposal)) == 1  # the second one is outside its root
    assert _rows(platform, Execution) == []
    assert log.exists() and outside.exists()


def test_the_per_target_limit_counts_the_confined_target(platform, root):
    """A sender naming the same directory again meets max_per_hour_per_target, though the
    runbook has no `service` param (before, such runbooks had no per-target limit)."""
    from baton.act import limits

    doc = {
        "id": "per-target-book",
        "title": "A runbook limited per target",
        "owner": "team-test",
        "risk": "low",
        "reversible": False,
        "match": {"alertnames": ["Anything"]},
        "autonomy": {"default": "approve"},
        "params": {"dir": {"source": "label:dir", "type": "path", "roots": [str(root)]}},
        "steps": [{"name": "look", "action": "command", "with": {"argv": ["true", "{{ dir }}"]}}],
        "limits": {"max_per_hour_per_target": 1},
    }
    rb = parse(yaml.safe_dump(doc))
    assert limits.target_param(rb) == "dir"
    with platform.db.session() as s:
        sync_catalogue(s, Catalogue({rb.id: rb}), platform.clock.now())
    logs = {"dir": str(root / "logs")}
    run_now(platform, rb, logs)
    with platform.db.session() as s:
        with pytest.raises(limits.LimitReached, match=r"on .*logs"):
            limits.check(s, rb, logs, platform.clock.now())
        limits.check(s, rb, {"dir": str(root)}, platform.clock.now())  # another target
