"""Confinement of what a step acts on when event data names it.

An alert may say *which* directory, host, unit or process is in trouble; it must never be
able to choose something outside what people allowed. Param types `path`, `host`, `unit`
and `process` are checked here: paths are resolved (realpath) when a proposal's params are
rendered and again just before each step runs, so a symlink swapped in meanwhile, a
bind mount, /proc, /sys or a device file cannot move the target.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CONFINED = ("path", "host", "unit", "process")
FORBIDDEN = ("/proc", "/sys", "/dev")  # kernel views and device files: never a target
MAX_PATH_LEN = 256
MAX_NAME_LEN = 255  # one path component (NAME_MAX)
MOUNTINFO = Path("/proc/self/mountinfo")


class Escape(ValueError):
    """A value outside its confinement; the message says which rule it broke."""


@dataclass(frozen=True)
class Scope:
    """What people allowed for one runbook: roots per path param, names per unit/process
    param (the policy's, else the runbook's), and the hosts of the service catalogue."""

    roots: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    allow: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    hosts: frozenset[str] | None = None  # None: no service catalogue at hand

    @classmethod
    def of(
        cls,
        specs: Mapping[str, Mapping[str, Any]],
        chosen: Mapping[str, Mapping[str, Any]] | None = None,
        hosts: Iterable[str] | None = None,
    ) -> Scope:
        """`chosen`: per param, the `roots` / `allow` a lead set in the policy; they
        replace the runbook's own lists."""
        chosen = chosen or {}

        def pick(name: str, key: str) -> tuple[str, ...]:
            mine = chosen.get(name, {}).get(key)
            return tuple(mine if mine is not None else specs[name].get(key, ()))

        return cls(
            roots={n: pick(n, "roots") for n, s in specs.items() if s["type"] == "path"},
            allow={
                n: pick(n, "allow") for n, s in specs.items() if s["type"] in ("unit", "process")
            },
            hosts=None if hosts is None else frozenset(hosts),
        )


def _under(path: str, top: str) -> bool:
    return path == top or path.startswith(top.rstrip("/") + "/")


def mount_points() -> list[str]:
    """Every mount point this process sees (bind mounts included), from mountinfo."""
    try:
        lines = MOUNTINFO.read_text().splitlines()
    except OSError:
        return []
    points = []
    for line in lines:
        fields = line.split()
        if len(fields) > 4:  # field 5 is the mount point, with octal escapes for spaces
            points.append(fields[4].encode().decode("unicode_escape"))
    return points


def _shape(name: str, value: Any) -> str:
    """The rules a path obeys before anything touches the file system."""
    if not isinstance(value, str) or not value:
        raise Escape(f"param {name!r}: must be a path")
    if len(value) > MAX_PATH_LEN:
        raise Escape(f"param {name!r}: a path of at most {MAX_PATH_LEN} characters")
    if not value.isprintable():
        raise Escape(f"param {name!r}: contains control characters")
    if not value.startswith("/"):
        raise Escape(f"param {name!r}: must be an absolute path")
    parts = value.split("/")[1:]
    if value != "/" and value.endswith("/"):
        parts = parts[:-1]
    if any(p in ("", ".", "..") for p in parts):
        raise Escape(f"param {name!r}: no '..', '.' or empty components")
    if any(len(p.encode()) > MAX_NAME_LEN for p in parts):
        raise Escape(f"param {name!r}: a path component longer than {MAX_NAME_LEN} bytes")
    if any(_under(value, f) for f in FORBIDDEN):
        raise Escape(f"param {name!r}: /proc, /sys and /dev are never a target")
    return value


def _special(name: str, real: str, kind: str | None) -> None:
    """The resolved path must be a plain file or directory (of `kind` when given)."""
    if any(_under(real, f) for f in FORBIDDEN):
        raise Escape(f"param {name!r}: resolves into /proc, /sys or /dev ({real})")
    try:
        mode = os.stat(real).st_mode
    except OSError as exc:
        raise Escape(f"param {name!r}: cannot stat {real}: {exc.strerror}") from None
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise Escape(f"param {name!r}: {real} is a device, pipe or socket, not a file")
    if kind == "file" and not stat.S_ISREG(mode):
        raise Escape(f"param {name!r}: {real} is not a regular file")
    if kind == "dir" and not stat.S_ISDIR(mode):
        raise Escape(f"param {name!r}: {real} is not a directory")


def _real(name: str, value: str) -> str:
    try:
        return os.path.realpath(value, strict=True)
    except OSError:
        raise Escape(f"param {name!r}: {value} does not exist") from None


def confine_path(
    name: str,
    value: Any,
    roots: Iterable[str],
    kind: str | None = None,
    mounts: Callable[[], list[str]] = mount_points,
) -> str:
    """The resolved path if it lies inside one of `roots` and crosses no mount point on the
    way (a bind mount could put anything there); Escape otherwise."""
    value = _shape(name, value)
    allowed = [r for r in roots if r != "/"]
    if not allowed:
        raise Escape(
            f"param {name!r}: no allowed roots; a lead lists them in the policy "
            f"(runbooks.<id>.params.{name}.roots)"
        )
    real = _real(name, value)
    tops = [os.path.realpath(r) for r in allowed]
    top = next((t for t in tops if _under(real, t)), None)
    if top is None:
        raise Escape(
            f"param {name!r}: {value} resolves to {real}, outside the allowed roots "
            f"{', '.join(allowed)}"
        )
    for point in mounts():
        inside = point != top and _under(point, top)
        if inside and (_under(real, point) or _under(point, real)):
            raise Escape(f"param {name!r}: {real} crosses the mount point {point}")
    _special(name, real, kind)
    return real


def confine_name(name: str, value: Any, allowed: Iterable[str], what: str) -> str:
    """A unit or process name from the allow-list, exactly."""
    names = tuple(allowed)
    if not isinstance(value, str) or value not in names:
        listed = ", ".join(names) or "none yet; a lead lists them in the policy"
        raise Escape(f"param {name!r}: {what} {str(value)[:64]!r} is not allowed ({listed})")
    return value


def confine_host(name: str, value: Any, hosts: frozenset[str] | None) -> str:
    if hosts is None:
        raise Escape(f"param {name!r}: no service catalogue to check the host against")
    if not isinstance(value, str) or value not in hosts:
        raise Escape(
            f"param {name!r}: host {str(value)[:64]!r} is not a host of the service catalogue"
        )
    return value


def confine(name: str, spec: Mapping[str, Any], value: Any, scope: Scope) -> str:
    """Check one confined value at render time; returns what the step will use."""
    kind = spec["type"]
    if kind == "path":
        return confine_path(name, value, scope.roots.get(name, ()), spec.get("kind"))
    if kind == "host":
        return confine_host(name, value, scope.hosts)
    return confine_name(name, value, scope.allow.get(name, ()), kind)


def before_step(specs: Mapping[str, Mapping[str, Any]], params: Mapping[str, Any]) -> str | None:
    """Why a step must not start now, or None. Path params were stored resolved, so each
    must still resolve to itself: a component that became a symlink (or a path that
    became /proc, a device or nothing) since the proposal stops the run."""
    for name, spec in specs.items():
        value = params.get(name)
        if spec.get("type") != "path" or value is None:
            continue
        try:
            real = _real(name, _shape(name, value))
            if real != value:
                raise Escape(f"param {name!r}: {value} now resolves to {real}")
            _special(name, real, spec.get("kind"))
        except Escape as exc:
            return f"target moved out of its confinement: {exc}"
    return None
