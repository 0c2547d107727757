"""The everyday runbooks of the starter catalogue, run for real on this machine."""

from __future__ import annotations

import gzip
import os
import shutil
import socket
import subprocess
import time

import pytest

from baton.act.confine import Scope
from baton.act.runbook import ParamError, resolve_params
from baton.store.models import Execution
from tests.helpers import free_port, require_program, run_now


def _run(demo, runbook_id, labels, allowed=None):
    """`allowed`: the roots / allow-lists a lead would set in the policy for these."""
    p = demo.platform
    rb = p.config.catalogue.get(runbook_id)
    params = resolve_params(
        rb, origin_service=None, labels=labels, scope=Scope.of(rb.params, allowed)
    )
    return run_now(p, rb, params)


def _verified(demo, execution_id):
    demo.platform.scheduler.tick()
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
    execution_id, status = _run(
        demo, "compress-large-logs", {"log_dir": str(logs)}, {"log_dir": {"roots": [str(logs)]}}
    )
    assert status == "verifying"
    assert (logs / "app.log.gz").exists() and not big.exists() and small.exists()
    assert _verified(demo, execution_id)[:2] == ("succeeded", True)


def test_kill_runaway_process(demo, tmp_path):
    hog = tmp_path / "baton-hog"
    shutil.copy(shutil.which("sleep"), hog)
    proc = subprocess.Popen([str(hog), "120"])
    try:
        execution_id, status = _run(
            demo,
            "kill-runaway-process",
            {"process": "baton-hog"},
            {"process": {"allow": ["baton-hog"]}},
        )
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
        ("rotate-log", {"log_file": "/etc/passwd"}),
        ("rotate-log", {"log_file": "/var/log/../../etc/shadow.log"}),
        ("restart-local-service", {"service": "../../bin/sh", "port": "80"}),
        ("restart-local-service", {"service": "web", "port": "80; reboot"}),
        ("restart-local-service", {"service": "web", "port": "80"}),  # not listed yet
        ("kill-runaway-process", {"process": "sshd"}),  # not listed yet
        ("compress-large-logs", {"log_dir": "/proc/self/root/var/log"}),
        ("compress-large-logs", {"log_dir": "/etc"}),
        ("clean-old-temp-files", {"tmp_dir": "/dev/shm"}),
    ],
)
def test_hostile_labels_never_reach_these_commands(demo, runbook_id, labels):
    with pytest.raises(ParamError):
        resolve_params(
            demo.platform.config.catalogue.get(runbook_id), origin_service=None, labels=labels
        )


def test_constant_params_cannot_be_overridden(demo):
    with pytest.raises(ParamError, match="fixed by the runbook"):
        resolve_params(
            demo.platform.config.catalogue.get("clean-old-temp-files"),
            origin_service=None,
            labels={"tmp_dir": "/tmp"},
            overrides={"days": 0},
        )


def test_rotate_log(demo, tmp_path):
    require_program("savelog", "debianutils")
    log, older = tmp_path / "app.log", tmp_path / "app.log.0"
    log.write_text("second day\n")
    log.chmod(0o640)
    older.write_text("first day\n")  # yesterday's rotation
    execution_id, status = _run(
        demo, "rotate-log", {"log_file": str(log)}, {"log_file": {"roots": [str(tmp_path)]}}
    )
    assert status == "verifying"
    assert older.read_text() == "second day\n"
    assert gzip.decompress((tmp_path / "app.log.1.gz").read_bytes()) == b"first day\n"
    assert log.read_text() == "" and (log.stat().st_mode & 0o777) == 0o640  # same mode
    assert _verified(demo, execution_id)[:2] == ("succeeded", True)


def _answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


@pytest.fixture
def local_service(demo, tmp_path):
    """A real daemon (python's http.server) started by start-stop-daemon from a launcher,
    with the runbook's launcher and pidfile directories pointed into tmp_path."""
    require_program("start-stop-daemon", "dpkg")
    launchers, run_dir, port = tmp_path / "launchers", tmp_path / "run", free_port()
    launchers.mkdir()
    launcher = launchers / "web"
    launcher.write_text(
        f"#!/bin/sh\nexec {shutil.which('python3')} -m http.server {port} --bind 127.0.0.1 "
        f"--directory {tmp_path}\n"
    )
    launcher.chmod(0o755)
    path = demo.platform.settings.runbooks_path / "restart-local-service.yaml"
    path.write_text(
        path.read_text()
        .replace("const:/etc/baton/services", f"const:{launchers}")
        .replace("const:/run/baton", f"const:{run_dir}")
    )
    demo.platform.config.reload()
    pidfile = run_dir / "web.pid"
    run_dir.mkdir()
    subprocess.run(
        [
            "start-stop-daemon",
            "--start",
            "--background",
            "--make-pidfile",
            "--pidfile",
            str(pidfile),
            "--startas",
            str(launcher),
        ],
        check=True,
    )
    yield port, pidfile
    subprocess.run(
        [
            "start-stop-daemon",
            "--stop",
            "--oknodo",
            "--remove-pidfile",
            "--retry",
            "TERM/5/KILL/5",
            "--pidfile",
            str(pidfile),
        ],
        check=False,
    )


def _settle(demo, execution_id, seconds=20.0):
    """Tick until the execution ends; the daemon is a real process, so this polls."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status, verified, steps = _verified(demo, execution_id)
        if status != "verifying":
            return status, verified, steps
        time.sleep(0.2)
    return _verified(demo, execution_id)


WEB = {"service": {"allow": ["web"]}}  # what a lead lists in the policy


def test_restart_local_service(demo, local_service):
    port, pidfile = local_service
    deadline = time.monotonic() + 10
    while not (pidfile.exists() and _answers(port)) and time.monotonic() < deadline:
        time.sleep(0.1)
    before = int(pidfile.read_text())
    execution_id, status = _run(
        demo, "restart-local-service", {"service": "web", "port": port}, WEB
    )
    assert status == "verifying"
    after = int(pidfile.read_text())
    assert after != before and not os.path.exists(f"/proc/{before}")  # the old one is gone
    status, verified, _ = _settle(demo, execution_id)
    assert (status, verified) == ("succeeded", True)
    assert _answers(port)


def test_restart_local_service_rolls_back_when_the_port_stays_closed(demo, local_service):
    _, pidfile = local_service
    wrong = free_port()  # the alert named a port the daemon does not serve
    execution_id, status = _run(
        demo, "restart-local-service", {"service": "web", "port": wrong}, WEB
    )
    assert status == "verifying"
    demo.clock.advance(61)  # past the port check's within_s
    status, verified, steps = _settle(demo, execution_id)
    assert (status, verified) == ("rolled_back", False)
    assert ("rollback", "ok") in steps
    assert pidfile.exists() and os.path.exists(f"/proc/{int(pidfile.read_text())}")  # still up
