"""The notification routing tree (`notifications.yaml` beside the runbooks).

Alertmanager's model, because operators already know it: a root route catches
everything; child routes match on labels (service, severity and the alerts' own labels)
with `=`, `!=`, `=~`, `!~`; the first matching child wins unless it says `continue`;
children inherit receiver, group_by and timings they do not set.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from baton.govern.config import read_config
from baton.govern.oncall import CHANNEL

ALL_LABELS = "..."  # group_by: [...] puts every distinct label set in its own group
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"^([0-9]{1,6})([smhd])$")
_MATCHER = re.compile(r'^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(?:"(.*)"|(.*?))\s*$')


def _seconds(value: Any) -> int:
    """30 (seconds), "30s", "5m", "4h" or "1d"."""
    if isinstance(value, int) and not isinstance(value, bool):
        seconds = value
    elif isinstance(value, str) and (found := _DURATION.fullmatch(value.strip())):
        seconds = int(found[1]) * _UNITS[found[2]]
    else:
        raise ValueError(f"{value!r} is not a duration: use seconds or e.g. 30s, 5m, 4h, 1d")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


Duration = Annotated[int, BeforeValidator(_seconds)]


@dataclass(frozen=True)
class Matcher:
    label: str
    op: str  # = != =~ !~
    value: str
    regex: re.Pattern[str] | None = None

    def matches(self, labels: dict[str, str]) -> bool:
        """A missing label counts as the empty string, as in Alertmanager."""
        actual = labels.get(self.label, "")
        if self.regex is not None:
            found = self.regex.fullmatch(actual) is not None
            return found if self.op == "=~" else not found
        return (actual == self.value) == (self.op == "=")

    def __str__(self) -> str:
        return f'{self.label}{self.op}"{self.value}"'


def parse_matcher(text: Any) -> Matcher:
    """`severity="critical"`, `service=~"db-.*"`, `env!=dev` (regexes match the whole value)."""
    if isinstance(text, Matcher):
        return text
    found = _MATCHER.fullmatch(text) if isinstance(text, str) else None
    if found is None:
        raise ValueError(f"{text!r} is not a matcher: write label=value, !=, =~ or !~")
    label, op = found[1], found[2]
    value = found[3] if found[3] is not None else found[4]
    if not op.endswith("~"):
        return Matcher(label, op, value)
    try:
        return Matcher(label, op, value, re.compile(value))
    except re.error as exc:
        raise ValueError(f"{text!r}: not a valid regex: {exc}") from None


class ReceiverIn(BaseModel):
    """A named set of channels; each channel's address is a secret kept outside the file."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=128)
    channels: list[Annotated[str, Field(pattern=CHANNEL)]] = Field(min_length=1)


class RouteIn(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, arbitrary_types_allowed=True)
    receiver: str | None = None
    matchers: list[Annotated[Matcher, BeforeValidator(parse_matcher)]] = Field(default_factory=list)
    group_by: list[str] | None = None
    group_wait: Duration | None = Field(default=None, le=86400)
    group_interval: Duration | None = Field(default=None, ge=1, le=7 * 86400)
    repeat_interval: Duration | None = Field(default=None, ge=60, le=30 * 86400)
    continue_: bool = Field(default=False, alias="continue")
    routes: list[RouteIn] = Field(default_factory=list)


class NotificationConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    receivers: list[ReceiverIn] = Field(min_length=1)
    route: RouteIn

    @model_validator(mode="after")
    def _consistent(self) -> NotificationConfig:
        names = [r.name for r in self.receivers]
        duplicate = next((n for n in names if names.count(n) > 1), None)
        if duplicate:
            raise ValueError(f"receiver {duplicate!r} is defined twice")
        if self.route.receiver is None:
            raise ValueError("route.receiver: the root route needs a receiver (the default)")
        if self.route.matchers:
            raise ValueError("route.matchers: the root route matches everything")
        for where, route in _walk(self.route, "route"):
            if route.receiver is not None and route.receiver not in names:
                raise ValueError(f"{where}.receiver: no receiver named {route.receiver!r}")
        return self


def _walk(route: RouteIn, where: str) -> list[tuple[str, RouteIn]]:
    found = [(where, route)]
    for i, child in enumerate(route.routes):
        found += _walk(child, f"{where}.routes.{i}")
    return found


@dataclass(frozen=True)
class Route:
    """A route with everything it inherits filled in; `id` is its place in the tree."""

    id: str
    receiver: str
    matchers: tuple[Matcher, ...]
    group_by: tuple[str, ...]
    group_wait: timedelta
    group_interval: timedelta
    repeat_interval: timedelta
    continue_: bool = False
    routes: tuple[Route, ...] = field(default_factory=tuple)

    def match(self, labels: dict[str, str]) -> list[Route]:
        """The routes that take an alert with these labels (deepest match, per branch)."""
        if not all(m.matches(labels) for m in self.matchers):
            return []
        found: list[Route] = []
        for child in self.routes:
            taken = child.match(labels)
            found += taken
            if taken and not child.continue_:
                break
        return found or [self]

    def group_labels(self, labels: dict[str, str]) -> dict[str, str]:
        if ALL_LABELS in self.group_by:
            return dict(sorted(labels.items()))
        return {name: labels.get(name, "") for name in self.group_by}

    def find(self, route_id: str) -> Route | None:
        if self.id == route_id:
            return self
        return next((r for c in self.routes if (r := c.find(route_id)) is not None), None)


# Alertmanager's defaults, so a config written for it behaves the same here.
DEFAULTS = {"group_wait": 30, "group_interval": 300, "repeat_interval": 4 * 3600}


def _build(spec: RouteIn, parent: Route | None, route_id: str) -> Route:
    def timing(name: str) -> timedelta:
        own = getattr(spec, name)
        if own is not None:
            return timedelta(seconds=own)
        return getattr(parent, name) if parent else timedelta(seconds=DEFAULTS[name])

    route = Route(
        id=route_id,
        receiver=spec.receiver or (parent.receiver if parent else ""),
        matchers=tuple(spec.matchers),
        group_by=tuple(spec.group_by)
        if spec.group_by is not None
        else (parent.group_by if parent else ()),
        group_wait=timing("group_wait"),
        group_interval=timing("group_interval"),
        repeat_interval=timing("repeat_interval"),
        continue_=spec.continue_,
    )
    children = tuple(_build(c, route, f"{route_id}.{i}") for i, c in enumerate(spec.routes))
    return replace(route, routes=children)


@dataclass(frozen=True)
class Routing:
    """The routing tree and the channels behind each receiver name."""

    root: Route
    receivers: dict[str, tuple[str, ...]]

    def channels(self, receiver: str) -> tuple[str, ...]:
        return self.receivers.get(receiver, ())


def routing_from(config: NotificationConfig) -> Routing:
    return Routing(
        root=_build(config.route, None, "route"),
        receivers={r.name: tuple(r.channels) for r in config.receivers},
    )


def load_routing(path: Path) -> Routing | None:
    """The routing in `path`; None (no incident notifications) when there is no file."""
    if not path.is_file():
        return None
    return routing_from(read_config(path, NotificationConfig))
