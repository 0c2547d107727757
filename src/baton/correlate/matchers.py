"""Label matchers with Alertmanager's semantics: `=`, `!=`, `=~`, `!~`.

A missing label reads as the empty string, so `team!="db"` matches an alert without a
team and `team=~".*"` matches every alert. Regular expressions are anchored at both
ends, as in Alertmanager.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache

OPS = ("=~", "!~", "!=", "=")
_SYNTAX = re.compile(
    r"^\s*(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*(?P<op>=~|!~|!=|=)\s*"
    r'(?:"(?P<quoted>(?:[^"\\]|\\.)*)"|(?P<bare>[^"\s]*))\s*$'
)


@dataclass(frozen=True)
class Matcher:
    name: str
    op: str
    value: str
    _regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def matches(self, labels: Mapping[str, object]) -> bool:
        actual = str(labels.get(self.name, ""))
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        hit = self._regex is not None and self._regex.fullmatch(actual) is not None
        return hit if self.op == "=~" else not hit

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"')
        return f'{self.name}{self.op}"{escaped}"'


@lru_cache(maxsize=4096)  # the same few matchers are read on every pass
def parse(text: str) -> Matcher:
    """`name="value"`, `name!="value"`, `name=~"regex"` or `name!~"regex"`; ValueError
    saying what is wrong otherwise."""
    found = _SYNTAX.match(text) if isinstance(text, str) else None
    if found is None:
        raise ValueError(
            f'{text!r} is not a matcher; write name="value" with one of {", ".join(OPS)}'
        )
    quoted = found.group("quoted")
    value = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else found.group("bare") or ""
    op = found.group("op")
    regex = None
    if op in ("=~", "!~"):
        try:
            regex = re.compile(value)
        except re.error as exc:
            raise ValueError(f"{text!r}: bad regular expression: {exc}") from None
    return Matcher(found.group("name"), op, value, regex)


def parse_all(texts: Iterable[str]) -> tuple[Matcher, ...]:
    return tuple(parse(t) for t in texts)


def match_all(matchers: Iterable[Matcher], labels: Mapping[str, object]) -> bool:
    """True when every matcher matches (an empty list matches everything)."""
    return all(m.matches(labels) for m in matchers)
