"""The `ssh` action against a real sshd on 127.0.0.1 (Debian's openssh-server, key auth).

Hostile values must reach the remote program as exactly one literal argument: ssh hands
its command to the remote shell, so the action quotes every element for it.
"""

from __future__ import annotations

import getpass
import json
import os
import shutil
import socket
import subprocess
import sys
import time

import pytest

from baton.act.actions import ActionContext, run_action, ssh_argv

SSHD = shutil.which("sshd") or ("/usr/sbin/sshd" if os.path.exists("/usr/sbin/sshd") else None)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    if SSHD is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("sshd (openssh-server) is required on CI")
        pytest.skip("sshd (openssh-server) is not installed")
    tmp = tmp_path_factory.mktemp("sshd")
    for name in ("hostkey", "clientkey"):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp / name)], check=True
        )
    (tmp / "authorized_keys").write_text((tmp / "clientkey.pub").read_text())
    port = _free_port()
    (tmp / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {tmp}/hostkey\n"
        f"AuthorizedKeysFile {tmp}/authorized_keys\nPidFile {tmp}/sshd.pid\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
        "StrictModes no\nPermitRootLogin prohibit-password\n"
    )
    os.makedirs("/run/sshd", exist_ok=True)
    proc = subprocess.Popen(
        [SSHD, "-D", "-e", "-f", str(tmp / "sshd_config")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(50):
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.1)
    host_key = (tmp / "hostkey.pub").read_text().split()[:2]
    (tmp / "known_hosts").write_text(f"[127.0.0.1]:{port} {' '.join(host_key)}\n")
    yield {
        "host": "127.0.0.1",
        "port": port,
        "user": getpass.getuser(),
        "identity_file": str(tmp / "clientkey"),
        "known_hosts": str(tmp / "known_hosts"),
    }
    proc.terminate()
    proc.wait(timeout=10)


ECHO = [sys.executable, "-c", "import json,sys; print(json.dumps(sys.argv[1:]))"]


@pytest.mark.integration
@pytest.mark.parametrize(
    "value",
    [
        "web; touch /tmp/baton-pwned",
        "a && b",
        "$(id)",
        "`id`",
        "'quoted' \"double\"",
        "two  spaces",
        "../etc/passwd",
        "*",
        "~root",
        "a\\b",
        "x" * 200,
    ],
)
def test_hostile_values_arrive_literally_on_the_remote_host(sshd, value):
    outcome = run_action("ssh", {**sshd, "argv": [*ECHO, value]}, ActionContext(timeout_s=30))
    assert outcome.ok, outcome.output
    assert json.loads(outcome.output.removeprefix("exit 0:").strip()) == [value]
    assert not os.path.exists("/tmp/baton-pwned")


@pytest.mark.integration
def test_unknown_host_keys_and_failed_commands_are_failures(sshd, tmp_path):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    stranger = run_action(
        "ssh", {**sshd, "known_hosts": str(empty), "argv": ["true"]}, ActionContext(timeout_s=30)
    )
    assert not stranger.ok and "exit 255" in stranger.output
    failing = run_action("ssh", {**sshd, "argv": ["false"]}, ActionContext(timeout_s=30))
    assert not failing.ok and failing.output.startswith("exit 1")


@pytest.mark.parametrize(
    "bad",
    [
        {"host": "-oProxyCommand=x"},
        {"host": "a b"},
        {"user": "root;id"},
        {"port": 0},
        {"identity_file": "rel/key"},
    ],
)
def test_bad_connection_settings_are_refused(bad):
    args = {"host": "h", "user": "u", "argv": ["true"], **bad}
    with pytest.raises(ValueError):
        ssh_argv(args)
    assert not run_action("ssh", args, ActionContext()).ok
