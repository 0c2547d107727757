"""The everyday runbooks of the starter catalogue, run for real on this machine."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest

from baton.act.executor import create_execution, run_execution
from baton.act.runbook import ParamError, resolve_params
from baton.govern.audit import Actor
from baton.store.models import Execution


def _run(demo, runbook_id, labels):
    p = demo.platform
    rb = p.catalogue.get(runbook_id)
    params = resolve_params(rb, origin_service=None, labels=labels)
    with p.db.session() as s:
        execution, _ = create_execution(
            s,
            runbook=rb,
            params=params,
            incident_id=None,
            decision_id=None,
            at=p.clock.now(),
            requested_by=Actor("tester", "human"),
        )
    status = run_execution(p.db, execution.id, p.action_context(), p.clock.now)
    return execution.id, status


def _verified(demo, execution_id):
    demo.platform.tick()
    with demo.platform.db.session() as s:
        done = s.get(Execution, execution_id)
        return done.status, done.verified, [(st.phase, st.status) for st in done.steps]


def test_compress_large_logs(demo, tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    big, small = logs / "app.log", logs / "small.log"
    with big.open("wb") as handle:
        handle.truncate(101 * 1024 * 1024)  # sparse: over the 100 MB threshold
    small.write_text("keep me\n")
    execution_id, status = _run(demo, "compress-large-logs", {"log_dir": str(logs)})
    assert status == "verifying"
    assert (logs / "app.log.gz").exists() and not big.exists() and small.exists()
    assert _verified(demo, execution_id)[:2] == ("succeeded", True)


def test_kill_runaway_process(demo, tmp_path):
    hog = tmp_path / "baton-hog"
    shutil.copy(shutil.which("sleep"), hog)
    proc = subprocess.Popen([str(hog), "120"])
    try:
        execution_id, status = _run(demo, "kill-runaway-process", {"process": "baton-hog"})
        assert status == "verifying"
        proc.wait(timeout=10)  # reap it, as its parent would
        assert proc.returncode == -15  # SIGTERM
        assert _verified(demo, execution_id)[:2] == ("succeeded", True)
    finally:
        proc.kill()


def test_clean_old_temp_files(demo, tmp_path):
    old, new = tmp_path / "old.tmp", tmp_path / "new.tmp"
    old.write_text("x")
    new.write_text("y")
    month_ago = time.time() - 30 * 86400
    os.utime(old, (month_ago, month_ago))
    execution_id, status = _run(demo, "clean-old-temp-files", {"tmp_dir": str(tmp_path)})
    assert status == "verifying" and not old.exists() and new.exists()
    assert _verified(demo, execution_id)[:2] == ("succeeded", True)


@pytest.mark.parametrize(
    "runbook_id, labels",
    [
        ("compress-large-logs", {"log_dir": "/var/log/../../etc"}),
        ("compress-large-logs", {"log_dir": "relative/path"}),
        ("kill-runaway-process", {"process": "-9"}),
        ("kill-runaway-process", {"process": "a very long process name"}),
        ("clean-old-temp-files", {"tmp_dir": "/tmp/$(reboot)"}),
    ],
)
def test_hostile_labels_never_reach_these_commands(demo, runbook_id, labels):
    with pytest.raises(ParamError):
        resolve_params(demo.platform.catalogue.get(runbook_id), origin_service=None, labels=labels)


def test_constant_params_cannot_be_overridden(demo):
    with pytest.raises(ParamError, match="fixed by the runbook"):
        resolve_params(
            demo.platform.catalogue.get("clean-old-temp-files"),
            origin_service=None,
            labels={"tmp_dir": "/tmp"},
            overrides={"days": 0},
        )
