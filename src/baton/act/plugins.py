"""`python` steps: call a plugin registered under the entry-point group `baton.actions`.

A plugin is any callable taking keyword arguments (the step's rendered `with`, minus
`plugin`) and returning `True`/`False` or a mapping with a boolean `ok` (and optionally
`output` and other facts, kept as what was observed). Raising counts as failing.

Why a child process: a step must stop at its timeout, on cancel and on the kill switch,
and a Python thread cannot be stopped from outside. So the plugin runs in a fresh
interpreter (`python -m baton.act.plugins NAME`) through the same runner as `command`
steps: its own process group, killed on timeout or cancel, output bounded and scrubbed
of secrets, a clean environment. The keyword arguments travel in an environment
variable (JSON), not on the command line where every user could read them in `ps`.
The price is an interpreter start (~0.1-0.3 s) per call.
"""

from __future__ import annotations

import inspect
import json
import os
import sys
from collections.abc import Callable
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from typing import Any

GROUP = "baton.actions"
KWARGS_VAR = "BATON_PLUGIN_KWARGS"
RESULT_MARK = "@@baton-plugin-result@@ "


@cache
def available() -> dict[str, EntryPoint]:
    """Installed plugins by name (read once per process: installing one needs a restart)."""
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def load(name: str) -> Callable[..., Any]:
    found = available().get(name)
    if found is None:
        known = ", ".join(sorted(available())) or "none installed"
        raise LookupError(f"no plugin {name!r} in entry-point group {GROUP} ({known})")
    plugin = found.load()
    if not callable(plugin):
        raise LookupError(f"plugin {name!r} ({found.value}) is not callable")
    return plugin


def problems(args: dict[str, Any]) -> str | None:
    """Why a step's `with` cannot call its plugin (unknown, or arguments it does not take);
    checked when a runbook is validated, so a typo fails the file, not a run at 3 a.m."""
    name = args.get("plugin")
    try:
        plugin = load(str(name))
    except LookupError as exc:
        return str(exc)
    except Exception as exc:  # a plugin that cannot even be imported
        return f"plugin {name!r} cannot be loaded: {type(exc).__name__}: {exc}"
    try:
        inspect.signature(plugin).bind(**{k: None for k in args if k != "plugin"})
    except TypeError as exc:
        return f"plugin {name!r} does not take these arguments: {exc}"
    except ValueError:  # no introspectable signature (some builtins): let it run
        return None
    return None


def argv_and_env(args: dict[str, Any]) -> tuple[list[str], dict[str, str]]:
    """How to run the plugin call `args` describes in a child interpreter."""
    name = args.get("plugin")
    if not isinstance(name, str) or name not in available():
        raise ValueError(f"no plugin {name!r} in entry-point group {GROUP}")
    kwargs = {k: v for k, v in args.items() if k != "plugin"}
    return [sys.executable, "-m", "baton.act.plugins", name], {KWARGS_VAR: json.dumps(kwargs)}


def verdict(output: str) -> tuple[bool, str, dict[str, Any]]:
    """(ok, message, observed) from a child's output: the last result line wins, the rest
    (whatever the plugin printed) is kept as its log."""
    head, mark, tail = output.rpartition(RESULT_MARK)
    if not mark:
        return False, f"the plugin gave no result: {output.strip()}".strip(), {}
    try:
        result = json.loads(tail.strip().splitlines()[0])
    except (ValueError, IndexError):
        return False, f"unreadable plugin result: {tail[:200]}", {}
    log = head.strip()
    message = str(result.get("output", ""))
    text = f"{message}\n{log}".strip() if log else message
    return bool(result.get("ok")), text, dict(result.get("observed", {}))


def _result(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"ok": value, "output": "ok" if value else "failed"}
    if isinstance(value, dict) and isinstance(value.get("ok"), bool):
        extra = {k: v for k, v in value.items() if k not in ("ok", "output")}
        return {"ok": value["ok"], "output": str(value.get("output", "")), "observed": extra}
    return {
        "ok": False,
        "output": f"plugin returned {type(value).__name__}, not a bool or "
        "a mapping with a boolean 'ok'",
    }


def main(name: str) -> int:
    """Child side: run one plugin call, print its result line. Exit 0 even on failure:
    the verdict is in the line, and a crash (no line) reads as failure."""
    kwargs = json.loads(os.environ.get(KWARGS_VAR, "{}"))
    try:
        result = _result(load(name)(**kwargs))
    except Exception as exc:
        result = {"ok": False, "output": f"{type(exc).__name__}: {exc}"}
    sys.stdout.flush()
    print(RESULT_MARK + json.dumps(result, default=str), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
