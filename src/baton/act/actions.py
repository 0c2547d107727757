"""Step actions and verify checks, looked up by name from a runbook.

Simulated systems are reached through `targets` wired by the runtime; real ones through
`command` (an argv list, never a shell), `http`, `ssh` and `python` (a registered
plugin). Every value that came from an alert or a person was validated against its
param spec before it got here, and it fills exactly one argv element or one JSON value:
it can never add or split arguments.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from baton.act import plugins
from baton.act.secrets import scrub

MAX_OUTPUT = 4000
MAX_KEPT = 32 * 1024  # bytes of a program's or server's output kept (head and tail)
POLL_S = 0.2
DEFAULT_TIMEOUT_S = 60.0
# A command inherits only these from Baton's environment (no tokens, no secrets).
SAFE_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
}


class SandboxTarget(Protocol):
    """What the `sandbox` action needs from a simulated estate."""

    def remediate(self, action: str, service: str, **params: Any) -> Any: ...

    def observe(self, service: str, metric: str) -> float: ...


@dataclass(frozen=True)
class Outcome:
    ok: bool
    output: str
    observed: dict[str, Any] = field(default_factory=dict)


@dataclass
class ActionContext:
    targets: dict[str, Any] = field(default_factory=dict)
    dry_run: bool = False
    secrets: dict[str, str] = field(default_factory=dict)  # values, to scrub from output
    timeout_s: float = DEFAULT_TIMEOUT_S
    sleep: Callable[[float], None] = time.sleep
    should_cancel: Callable[[], str | None] = lambda: None  # polled while a command runs
    on_output: Callable[[str], None] = lambda text: None  # output so far, for live logs

    def sandbox(self) -> SandboxTarget:
        target = self.targets.get("sandbox")
        if target is None:
            raise RuntimeError("no sandbox estate is attached to this Baton instance")
        return target


def _sandbox_action(args: dict[str, Any], ctx: ActionContext) -> Outcome:
    remediation, service = args.get("remediation"), args.get("service")
    if not isinstance(remediation, str) or not isinstance(service, str):
        return Outcome(False, "sandbox action needs string 'remediation' and 'service'")
    extra = {k: v for k, v in args.items() if k not in ("remediation", "service")}
    if ctx.dry_run:
        return Outcome(True, f"would run {remediation} on {service} with {extra}")
    result = ctx.sandbox().remediate(remediation, service, **extra)
    changed = bool(getattr(result, "changed", True))
    detail = str(getattr(result, "detail", result))
    return Outcome(
        True,
        f"{remediation} on {service}: {detail}" + ("" if changed else " (no change)"),
        {"changed": changed},
    )


def _sandbox_metric(args: dict[str, Any], ctx: ActionContext) -> Outcome:
    service, metric = args.get("service"), args.get("metric")
    if not isinstance(service, str) or not isinstance(metric, str):
        return Outcome(False, "sandbox_metric needs string 'service' and 'metric'")
    value = float(ctx.sandbox().observe(service, metric))
    below, above = args.get("below"), args.get("above")
    ok = (below is None or value < float(below)) and (above is None or value > float(above))
    bound = f"< {below}" if below is not None else f"> {above}"
    return Outcome(
        ok,
        f"{metric} of {service} = {value:.3f} (want {bound})",
        {"service": service, "metric": metric, "value": value},
    )


def _argv(args: dict[str, Any]) -> list[str]:
    argv = args.get("argv")
    if not isinstance(argv, list) or not argv:
        raise ValueError("command needs 'argv': a non-empty list")
    if not all(isinstance(a, str | int) and not isinstance(a, bool) for a in argv):
        raise ValueError("every argv element must be a string or an integer")
    argv = [str(a) for a in argv]
    if any("\x00" in a for a in argv):
        raise ValueError("an argument contains a NUL byte")
    if shutil.which(argv[0], path=SAFE_ENV["PATH"]) is None:
        raise ValueError("program not found on the command PATH: " + argv[0][:80])
    return argv


class _Capture(threading.Thread):
    """Reads a child's output, keeping only its first and last `MAX_KEPT` bytes."""

    def __init__(self, stream: Any) -> None:
        super().__init__(daemon=True)
        self.stream, self.head, self.tail, self.size = stream, b"", b"", 0

    def run(self) -> None:
        for chunk in iter(lambda: self.stream.read1(8192), b""):
            self.size += len(chunk)
            if len(self.head) < MAX_KEPT:
                room = MAX_KEPT - len(self.head)
                self.head, chunk = self.head + chunk[:room], chunk[room:]
            self.tail = (self.tail + chunk)[-MAX_KEPT:]

    def text(self) -> str:
        dropped = self.size - len(self.head) - len(self.tail)
        gap = f"\n… ({dropped} bytes left out) …\n" if dropped else ""
        return self.head.decode(errors="replace") + gap + self.tail.decode(errors="replace")


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def _run(args: dict[str, Any], ctx: ActionContext) -> tuple[int | None, str, str | None]:
    """Run the argv in its own process group; return (exit code, output, why it was stopped).

    The group is killed on timeout, on cancel (a person, the kill switch) and after a
    normal exit too, so background children it left do not outlive the step. A runbook's
    `env` cannot replace PATH.
    """
    env = {**{k: str(v) for k, v in (args.get("env") or {}).items()}, **SAFE_ENV}
    proc = subprocess.Popen(  # noqa: S603 - argv list, no shell; values validated upstream
        _argv(args),
        shell=False,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
        cwd=args.get("cwd") or "/",
        start_new_session=True,
    )
    capture = _Capture(proc.stdout)
    capture.start()
    deadline, why, shown = time.monotonic() + ctx.timeout_s, None, 0
    while why is None:
        try:
            proc.wait(timeout=POLL_S)
            break
        except subprocess.TimeoutExpired:
            if capture.size != shown:
                shown = capture.size
                ctx.on_output(_tail(capture.text(), ctx))
            if time.monotonic() >= deadline:
                why = f"timed out after {ctx.timeout_s:g}s"
            elif cancelled := ctx.should_cancel():
                why = f"stopped: {cancelled}"
    _kill_group(proc)
    proc.wait()
    capture.join(timeout=2)  # a detached grandchild may hold the pipe: do not wait on it
    return (None if why else proc.returncode), capture.text(), why


def _tail(text: str, ctx: ActionContext) -> str:
    """The latest output of a running program, for people following it live."""
    text = scrub(text, ctx.secrets).replace("\x00", "\\0")
    return text if len(text) <= MAX_OUTPUT else "… " + text[-MAX_OUTPUT:]


def _clip(text: str, ctx: ActionContext) -> str:
    text = scrub(text, ctx.secrets).replace("\x00", "\\0")  # databases refuse NUL
    return text if len(text) <= MAX_OUTPUT else text[:MAX_OUTPUT] + "… (truncated)"


def _command(args: dict[str, Any], ctx: ActionContext) -> Outcome:
    """Run a program with an argv list; success is its expected exit code (default 0)."""
    if ctx.dry_run:
        return Outcome(True, f"would run argv {_argv(args)}")
    code, output, stopped = _run(args, ctx)
    if stopped:
        detail = f"{stopped} (process group killed): {_clip(output, ctx)}".strip()
        return Outcome(False, detail, {"stopped": stopped.startswith("stopped")})
    want = args.get("expect_exit", 0)
    return Outcome(code == want, f"exit {code}: {_clip(output, ctx)}".strip(), {"exit": code})


_HOST = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$")
_USER = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")


def ssh_argv(args: dict[str, Any]) -> list[str]:
    """The local argv for running `argv` on a remote host over SSH with key auth.

    ssh hands its remote command to the remote user's shell, so every element is quoted
    for that shell: a value arrives there as exactly one literal argument.
    """
    host, user, remote = args.get("host"), args.get("user"), args.get("argv")
    if not isinstance(host, str) or not _HOST.fullmatch(host):
        raise ValueError("ssh needs a 'host': a hostname or IPv4 address")
    if not isinstance(user, str) or not _USER.fullmatch(user):
        raise ValueError("ssh needs a 'user': a plain login name")
    if not isinstance(remote, list) or not remote:
        raise ValueError("ssh needs 'argv': the remote program and its arguments")
    port = args.get("port", 22)
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        raise ValueError("ssh 'port' must be 1-65535")
    options = [
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        f"ConnectTimeout={max(1, min(30, int(args.get('connect_timeout_s', 10))))}",
        "-p",
        str(port),
    ]
    for key, flag in (("identity_file", "-i"), ("known_hosts", "UserKnownHostsFile")):
        value = args.get(key)
        if value is None:
            continue
        if not isinstance(value, str) or not value.startswith("/"):
            raise ValueError(f"ssh '{key}' must be an absolute path")
        options += [flag, value] if flag == "-i" else ["-o", f"{flag}={value}"]
    command = " ".join(shlex.quote(str(a)) for a in remote)
    return ["ssh", *options, "--", f"{user}@{host}", command]


def _ssh(args: dict[str, Any], ctx: ActionContext) -> Outcome:
    """Run a program on a remote host (key auth, known host keys only)."""
    argv = ssh_argv(args)
    if ctx.dry_run:
        return Outcome(True, f"would run argv {argv}")
    return _command({"argv": argv, "expect_exit": args.get("expect_exit", 0)}, ctx)


def _http(args: dict[str, Any], ctx: ActionContext) -> Outcome:
    """Call an HTTP endpoint; success is an expected status (default any 2xx)."""
    method = str(args.get("method", "GET")).upper()
    url = args.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ValueError("http needs an http(s) 'url'")
    if ctx.dry_run:
        return Outcome(True, f"would {method} {scrub(url, ctx.secrets)}")
    try:
        with httpx.stream(
            method,
            url,
            headers=args.get("headers") or {},
            json=args.get("json"),
            timeout=ctx.timeout_s,
        ) as response:
            body = b""
            for chunk in response.iter_bytes():
                body += chunk[: MAX_KEPT - len(body)]
                if len(body) >= MAX_KEPT:
                    break
    except httpx.HTTPError as exc:  # its message may carry the URL: say only what failed
        return Outcome(False, f"{type(exc).__name__} calling {scrub(url, ctx.secrets)[:200]}")
    expected = args.get("expect_status")
    wanted = expected if isinstance(expected, list) else [expected] if expected else None
    ok = response.status_code in wanted if wanted else response.is_success
    return Outcome(
        ok,
        f"HTTP {response.status_code}: {_clip(body.decode(errors='replace'), ctx)}",
        {"status": response.status_code},
    )


def _python(args: dict[str, Any], ctx: ActionContext) -> Outcome:
    """Call a registered plugin in a child interpreter (see `plugins` for why a process)."""
    argv, env = plugins.argv_and_env(args)
    if ctx.dry_run:
        keys = sorted(k for k in args if k != "plugin")
        return Outcome(True, f"would call plugin {args['plugin']} with arguments {keys}")
    code, output, stopped = _run({"argv": argv, "env": env}, ctx)
    if stopped:
        detail = f"plugin {args['plugin']} {stopped} (process killed): {_clip(output, ctx)}"
        return Outcome(False, detail.strip(), {"stopped": stopped.startswith("stopped")})
    ok, message, observed = plugins.verdict(output)
    return Outcome(ok and code == 0, _clip(message, ctx), observed)


def pause(ctx: ActionContext, seconds: float) -> str | None:
    """Sleep in short slices so a cancel or the kill switch ends the wait; returns why."""
    left = seconds
    while left > 0:
        ctx.sleep(min(1.0, left))
        left -= 1.0
        if why := ctx.should_cancel():
            return why
    return None


def _wait(args: dict[str, Any], ctx: ActionContext) -> Outcome:
    seconds = args.get("seconds")
    if not isinstance(seconds, int | float) or not 0 <= seconds <= 3600:
        raise ValueError("wait needs 'seconds' between 0 and 3600")
    if not ctx.dry_run and (why := pause(ctx, float(seconds))):
        return Outcome(False, f"stopped while waiting: {why}", {"stopped": True})
    return Outcome(True, f"waited {seconds}s")


ACTIONS: dict[str, Callable[[dict[str, Any], ActionContext], Outcome]] = {
    "sandbox": _sandbox_action,
    "command": _command,
    "http": _http,
    "ssh": _ssh,
    "wait": _wait,
    "python": _python,
}
# A check is an action whose success is the verdict: a command's exit code, an HTTP status.
CHECKS: dict[str, Callable[[dict[str, Any], ActionContext], Outcome]] = {
    "sandbox_metric": _sandbox_metric,
    "command_exit": _command,
    "http_check": _http,
    "ssh_exit": _ssh,
    "python_check": _python,
}


# Which attached target each action or check works through.
TARGET_OF: dict[str, str] = {"sandbox": "sandbox", "sandbox_metric": "sandbox"}


# Actions that change a real host (this one or another): a person decides until a lead
# raises the runbook in the policy.
HOST_ACTIONS = frozenset({"command", "ssh", "http", "python"})


def host_actions(doc: dict[str, Any]) -> list[str]:
    """The host-changing actions among a runbook's steps and rollback."""
    kinds = {
        item.get("action") for section in ("steps", "rollback") for item in doc.get(section, [])
    }
    return sorted(kinds & HOST_ACTIONS)


def missing_targets(doc: dict[str, Any], targets: dict[str, Any]) -> list[str]:
    """Targets a runbook's steps and checks need that this instance does not have."""
    kinds = [
        item.get("action") or item.get("check")
        for section in ("steps", "verify", "rollback")
        for item in doc.get(section, [])
    ]
    return sorted({TARGET_OF[k] for k in kinds if k in TARGET_OF and TARGET_OF[k] not in targets})


def cannot_act_here(doc: dict[str, Any], targets: dict[str, Any]) -> str | None:
    """Why this instance cannot run the runbook at all (a target it does not have)."""
    missing = missing_targets(doc, targets)
    if not missing:
        return None
    return f"the runbook acts on the {', '.join(missing)} target, which this instance does not have"


def run_action(name: str, args: dict[str, Any], ctx: ActionContext) -> Outcome:
    """Run one action; an exception becomes a failed outcome with its message."""
    try:
        return ACTIONS[name](args, ctx)
    except Exception as exc:  # an action failing must not take the executor down
        return Outcome(False, f"{type(exc).__name__}: {scrub(str(exc), ctx.secrets)}")


def run_check(name: str, args: dict[str, Any], ctx: ActionContext) -> Outcome:
    try:
        return CHECKS[name](args, ctx)
    except Exception as exc:
        return Outcome(False, f"{type(exc).__name__}: {scrub(str(exc), ctx.secrets)}")
