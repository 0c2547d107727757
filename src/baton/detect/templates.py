"""Log template mining: one general masking configuration, one pass, bounded memory.

A message's template is the message with its variable words replaced by ``<*>``: a word
is variable when it holds a digit (counters, ids, addresses, sizes, times), is a day or
month name, a host name (a common top-level domain, or three or more lower-case labels),
an absolute path, or a long hex string; the word after ``user`` is a user name, and an
empty ``()`` is an empty value. Words end at punctuation that commonly glues values to
text (``key=value``, ``host:port``, brackets, quotes), and a run of variables separated
only by spaces or commas becomes one ``<*>``, so a list or a value of varying length
still yields one template. Messages with the same template share a template id; a
template seen for the first time is reported as new, which the log-anomaly rule uses.
"""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

_GLUE = r"\s,;:=\[\]\(\)\{\}\"'|<>"
_W = rf"[^{_GLUE}]"  # a word character: not space, not glue punctuation
_ND = rf"[^{_GLUE}0-9]"  # a word character that is not a digit
_TLD = "com|net|org|edu|gov|io|cn|hk|uk|de|jp|ru|info|biz|co|us|local|lan"
_CALENDAR = "mon|tue|wed|thu|fri|sat|sun|jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec"
_VARIABLE = re.compile(
    rf"(?<!{_W})(?:"
    rf"{_ND}*+\d{_W}*+"  # holds a digit (possessive: no backtracking)
    rf"|(?i:{_CALENDAR})"  # a day or month name
    rf"|/{_W}*/{_W}*"  # an absolute path
    rf"|(?<=\buser[ =]){_W}+"  # whoever the user is
    rf"|(?<=\()(?=\))"  # an empty value in brackets
    rf"|[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.(?i:{_TLD})"  # a host name
    rf"|[a-z0-9-]+(?:\.[a-z0-9-]+)+\.[a-z]{{2,6}}"  # any lower-case host of 3+ labels
    rf"|[0-9a-fA-F]{{8,}}"  # a long hex string
    rf")(?!{_W})"
)
_RUN = re.compile(r"<\*>(?:[\s,]+<\*>)+")
WILDCARD = "<*>"
ERROR_LEVELS = frozenset({"error", "err", "fatal", "critical", "crit", "severe", "alert", "emerg"})


@dataclass(frozen=True)
class Match:
    template_id: str
    template: str
    parameters: tuple[str, ...]
    new: bool


def template_of(message: str) -> tuple[str, tuple[str, ...]]:
    """The message's template and its variable words, in order."""
    masked = _VARIABLE.sub(WILDCARD, message)
    return _RUN.sub(WILDCARD, masked.strip()), tuple(_VARIABLE.findall(message))


class TemplateMiner:
    """Assigns template ids in one pass; remembers at most ``capacity`` templates."""

    def __init__(self, capacity: int = 50_000) -> None:
        self.capacity = capacity
        self._seen: OrderedDict[str, list[Any]] = OrderedDict()  # template -> [id, count]

    def add(self, message: str) -> Match:
        template, params = template_of(message)
        entry = self._seen.get(template)
        if entry is None:
            if len(self._seen) >= self.capacity:
                self._seen.popitem(last=False)  # forget the least recently seen
            entry = self._seen[template] = [template_id(template), 0]
        else:
            self._seen.move_to_end(template)
        entry[1] += 1
        return Match(entry[0], template, params, entry[1] == 1)

    def count(self, template: str) -> int:
        entry = self._seen.get(template)
        return entry[1] if entry else 0

    def __len__(self) -> int:
        return len(self._seen)


def template_id(template: str) -> str:
    return hashlib.blake2s(template.encode(), digest_size=5).hexdigest()


def is_novel_error(match: Match, level: str | None) -> bool:
    """A log anomaly: a template never seen before, at an error-like level."""
    return match.new and (level or "").strip().lower() in ERROR_LEVELS
