"""`python` steps: registered plugins, validated at load, run in a child that a timeout
can kill, results bounded and scrubbed like every other step's output."""

from __future__ import annotations

import socket
import time

import pytest

from baton.act import plugins
from baton.act.actions import ActionContext, run_action, run_check
from baton.act.runbook import RunbookError, parse
from tests.helpers import free_port

RUNBOOK = """\
id: check-port
title: Check a port
owner: team-platform
risk: low
reversible: false
match: {alertnames: [PortDown]}
params:
  port: {source: label:port, type: integer, minimum: 1, maximum: 65535}
steps:
  - name: probe
    action: python
    with: {plugin: tcp_port, host: 127.0.0.1, port: "{{ port }}"}
verify:
  - name: listening
    check: python_check
    with: {plugin: tcp_port, host: 127.0.0.1, port: "{{ port }}", expect: open}
autonomy: {default: recommend}
"""


@pytest.fixture
def listener():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    yield server.getsockname()[1]
    server.close()


def test_the_builtin_plugin_is_registered_as_an_entry_point():
    assert plugins.available()["tcp_port"].value == "baton.act.probes:tcp_port"
    assert parse(RUNBOOK).doc["verify"][0]["check"] == "python_check"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            (
                "{plugin: tcp_port, host: 127.0.0.1, port",
                "{plugin: tcp_prot, host: 127.0.0.1, port",
            ),
            "no plugin 'tcp_prot'",
        ),
        (("expect: open}", "expect: open, colour: red}"), "does not take these arguments"),
    ],
)
def test_an_unusable_plugin_fails_validation_with_line_and_field(edit, message):
    with pytest.raises(RunbookError) as info:
        parse(RUNBOOK.replace(*edit, 1), "check-port.yaml")
    field = "steps.0.with.plugin" if "prot" in edit[1] else "verify.0.with.plugin"
    assert info.value.field_path == field and message in info.value.message
    assert info.value.line == (12 if field.startswith("steps") else 16)
    assert str(info.value).startswith("check-port.yaml:")


def test_tcp_port_check_open_and_closed(listener):
    ctx = ActionContext()
    ok = run_check(
        "python_check", {"plugin": "tcp_port", "host": "127.0.0.1", "port": listener}, ctx
    )
    assert ok.ok and ok.output == f"127.0.0.1:{listener} is open (want open)"
    assert ok.observed == {"state": "open"}
    closed = free_port()
    shut = run_check(
        "python_check", {"plugin": "tcp_port", "host": "127.0.0.1", "port": closed}, ctx
    )
    assert not shut.ok and "is closed" in shut.output
    want_closed = {"plugin": "tcp_port", "host": "127.0.0.1", "port": closed, "expect": "closed"}
    assert run_check("python_check", want_closed, ctx).ok


def test_a_plugin_exception_is_a_failed_step_with_its_message():
    out = run_action(
        "python", {"plugin": "tcp_port", "host": "h", "port": 1, "expect": "?"}, ActionContext()
    )
    assert not out.ok and out.output == "ValueError: expect must be 'open' or 'closed'"


def test_plugin_output_is_scrubbed_of_secrets(listener):
    ctx = ActionContext(secrets={"secret.HOST": "127.0.0.1"})
    out = run_check(
        "python_check", {"plugin": "tcp_port", "host": "127.0.0.1", "port": listener}, ctx
    )
    assert out.ok and "127.0.0.1" not in out.output and "***" in out.output


def test_dry_run_calls_nothing():
    out = run_action(
        "python", {"plugin": "tcp_port", "host": "h", "port": 1}, ActionContext(dry_run=True)
    )
    assert out.ok and out.output == "would call plugin tcp_port with arguments ['host', 'port']"


def test_a_hanging_plugin_is_killed_at_the_step_timeout():
    """A full accept queue makes connect() hang: the child must be killed at 1 s, long
    before the plugin's own 30 s."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port, fillers = server.getsockname()[1], []
    try:
        while True:  # fill the queue until a connect no longer completes
            sock = socket.socket()
            sock.settimeout(0.3)
            fillers.append(sock)
            try:
                sock.connect(("127.0.0.1", port))
            except TimeoutError:
                break
            assert len(fillers) < 50, "the accept queue never filled"
        args = {"plugin": "tcp_port", "host": "127.0.0.1", "port": port, "timeout_s": 30}
        started = time.monotonic()
        out = run_action("python", args, ActionContext(timeout_s=1.0))
        assert time.monotonic() - started < 10
        assert not out.ok and "timed out after 1s (process killed)" in out.output
    finally:
        for sock in fillers:
            sock.close()
        server.close()
