"""The command line as a user runs it: demo, audit verify, tokens, kill switch, bench."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest
import typer
from sqlalchemy import select
from typer.testing import CliRunner

from baton.cli import app
from baton.kernel.audit import Actor


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("BATON_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("BATON_DATABASE_URL", raising=False)
    monkeypatch.delenv("BATON_CONFIG", raising=False)
    return tmp_path / "home"


def run(*args):
    return CliRunner().invoke(app, list(args))


def _command_paths(group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command of the CLI, read off the app itself, so a new one cannot be missed."""
    paths = [prefix]
    for name, command in group.commands.items():
        if getattr(command, "commands", None) is not None:  # a group of commands
            paths += _command_paths(command, (*prefix, name))
        else:
            paths.append((*prefix, name))
    return paths


def test_help_on_every_command():
    paths = _command_paths(typer.main.get_command(app))
    assert ("pause",) in paths and ("token", "create") in paths and len(paths) > 20
    for path in paths:
        result = run(*path, "--help")
        assert result.exit_code == 0 and "Usage" in result.output, path
        assert result.output.count("\n") > 2, path  # says something about itself


def test_demo_once_then_audit_verify_and_tamper(env):
    result = run("demo", "--once", "--seed", "1", "--json")
    assert result.exit_code == 0, result.output
    # stdout alone: the summary is its last line (log lines go to stderr)
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["scenarios"] >= 6
    assert summary["scenarios_with_incident"] == summary["scenarios"]
    assert summary["proposals"] >= summary["scenarios"]
    assert summary["decisions"] >= summary["proposals"]
    assert summary["verified_fixes"] >= 1 and summary["faults_fixed"] >= 1
    assert summary["audit_ok"] is True
    # what Baton learned: the KPIs of the run and the trust ledger per environment
    assert summary["kpis"]["time_saved_min"] > 0 and summary["kpis"]["mttr_s"] > 0
    assert summary["kpis"]["override_reasons"].get("bad_timing", 0) >= 1
    assert any(row["judged"] >= 1 for row in summary["trust"])
    # people held the baton: one veto, one maintenance pause, one approval left waiting
    assert summary["overrides"] >= 1 and summary["pauses"] >= 1
    assert summary["approvals_pending"] >= 1 and summary["escalations"] >= 1
    assert "OVERRIDE" in result.output and "PAUSE" in result.output
    assert "end of shift: approvals left waiting" in result.output
    assert "INCIDENT" in result.output and "DECIDES" in result.output

    demo_home = env / "demo"
    verify_env = {"BATON_HOME": str(demo_home)}
    ok = CliRunner().invoke(app, ["audit", "verify"], env=verify_env)
    assert ok.exit_code == 0 and "intact" in ok.output

    conn = sqlite3.connect(demo_home / "baton.db")
    conn.execute("UPDATE audit_records SET rationale = 'edited' WHERE seq = 7")
    conn.commit()
    edited = CliRunner().invoke(app, ["audit", "verify"], env=verify_env)
    assert edited.exit_code == 1 and "record 7 was altered" in edited.output
    conn.execute("DELETE FROM audit_records WHERE seq = 3")
    conn.commit()
    conn.close()
    deleted = CliRunner().invoke(app, ["audit", "verify"], env=verify_env)
    assert deleted.exit_code == 1 and "record 3 is missing" in deleted.output


def test_demo_keeps_its_own_database_and_never_wipes_used_data(env, monkeypatch):
    assert run("token", "create", "--name", "alice", "--role", "lead").exit_code == 0
    assert run("demo", "--once").exit_code == 0
    assert run("demo", "--once").exit_code == 0  # its own untouched database: re-run is fine
    listed = json.loads(run("token", "list", "--json").stdout)
    assert [t["name"] for t in listed] == ["alice"]  # the real database was not touched

    monkeypatch.setenv("BATON_HOME", str(env / "demo"))  # now use the demo's database for real
    assert run("token", "create", "--name", "bob", "--role", "viewer").exit_code == 0
    monkeypatch.setenv("BATON_DATABASE_URL", f"sqlite:///{env / 'demo' / 'baton.db'}")
    refused = run("demo", "--once")
    assert refused.exit_code == 2
    assert "used after the last demo" in refused.output and "--reset" in refused.output


def test_token_create_and_bad_role(env):
    made = run("token", "create", "--name", "ci", "--role", "ingest")
    assert made.exit_code == 0 and made.stdout.strip().startswith("bt_")
    bad = run("token", "create", "--name", "x", "--role", "root")
    assert bad.exit_code == 2 and "unknown role 'root'" in bad.output
    listed = run("token", "list", "--json")
    assert json.loads(listed.stdout)[0]["role"] == "ingest"


def test_local_pause_and_resume(env):
    assert "paused: all" in run("pause", "--all", "--local", "--reason", "drill").output
    assert run("pause", "--local").exit_code == 2
    assert "still paused: nothing" in run("resume", "--all", "--local").output


def test_local_resume_releases_what_the_pause_held(env, tmp_path, monkeypatch):
    """`resume --local` is the same command as the API's: the incidents the pause held
    back go on to triage (it used to lift the switch and leave them at observe)."""
    from baton.correlate.topology import ServiceDef
    from baton.kernel.clock import SimulatedClock
    from baton.runtime.platform import Platform
    from baton.runtime.settings import load_settings
    from baton.store.models import AuditRecord, Incident

    clock = SimulatedClock(datetime(2026, 3, 2, 8, 0, tzinfo=UTC))
    platform = Platform(load_settings(), clock).start()
    platform.config.declare_services([ServiceDef("file-storage", kind="storage")])
    lead = Actor("lena", "human")
    platform.commands.pause("all", None, lead, "drill")
    alert = {"labels": {"alertname": "DiskAlmostFull", "service": "file-storage"}}
    platform.drain.ingest_alertmanager([alert])
    clock.advance(timedelta(minutes=5))
    platform.scheduler.tick()
    with platform.db.session() as s:
        assert s.scalars(select(Incident)).one().triaged_origin == "file-storage"
    result = run("resume", "--all", "--local", "--as", "lena", "--reason", "drill over")
    assert result.exit_code == 0, result.output
    with platform.db.session() as s:
        assert s.scalars(select(Incident)).one().triaged_origin is None  # triaged again
        record = s.scalars(select(AuditRecord).order_by(AuditRecord.seq.desc())).first()
        assert (record.action, record.actor) == ("automation.resumed", "lena")
    platform.close()


def test_people_commands_need_a_token(env, monkeypatch):
    monkeypatch.delenv("BATON_TOKEN", raising=False)
    result = run("pause", "--all")
    assert result.exit_code == 2 and "needs a token" in result.output


def test_unreachable_api_is_a_clear_error(env, monkeypatch):
    monkeypatch.setenv("BATON_URL", "http://127.0.0.1:9")
    result = run("approvals", "list", "--token", "bt_x")
    assert result.exit_code == 1 and "cannot reach Baton" in result.output


def test_bench_registry(env):
    listed = run("bench", "list")
    assert "pipeline" in listed.output and "demo" in listed.output
    unknown = run("bench", "nope")
    assert unknown.exit_code == 2 and "available" in unknown.output
    result = run("bench", "pipeline", "--json", "--size", "20")
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["alerts"] == 1000 and figures["alerts_per_s"] > 0


def test_invalid_config_exits_cleanly(env, tmp_path, monkeypatch):
    bad = tmp_path / "baton.yaml"
    bad.write_text("port: nope\n")
    monkeypatch.setenv("BATON_CONFIG", str(bad))
    result = run("db", "upgrade")
    assert result.exit_code == 2 and "port" in result.output


def test_token_create_can_target_the_demos_home_and_says_where(env):
    made = run("token", "create", "--demo", "--name", "bob", "--role", "lead")
    assert made.exit_code == 0
    assert f"BATON_HOME={env / 'demo'}" in made.stderr
    assert (env / "demo" / "baton.db").exists()
    elsewhere = env.parent / "other"
    there = run("token", "create", "--home", str(elsewhere), "--name", "x", "--role", "viewer")
    assert there.exit_code == 0 and f"BATON_HOME={elsewhere}" in there.stderr
