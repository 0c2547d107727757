"""Log template mining, streaming: each line is assigned a template when it arrives, and
templates are refined as more lines show which words vary.

A line is masked (``masking.mask``: one general configuration); lines that mask alike share
a *key*. A new key takes the first known template of its length it fits (a template's
``<*>`` fits any word), else becomes a template of its own. Every so often (when the keys
added since the last refinement reach a quarter of all keys, at least 64) the keys of each
length that gained keys are grouped again by their longest common pattern
(``grouping.templates``), so "removing chargen" and "removing daytime" become
"removing <*>" once enough services have been removed. ``refine()`` does it on demand (a
batch reader calls it at the end and reads the final templates with ``template_for``).
Memory is bounded: at most ``capacity`` keys (the least recently seen forgotten).
A template's id is a digest of the template when it first appeared; a refined template
keeps the id of the largest template it absorbed, so rates keyed by id carry on.
"""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict, defaultdict
from dataclasses import dataclass
from typing import Any

from baton.detect.grouping import Tokens, templates
from baton.detect.masking import WILDCARD, mask

ERROR_LEVELS = frozenset({"error", "err", "fatal", "critical", "crit", "severe", "alert", "emerg"})


@dataclass(frozen=True)
class Match:
    template_id: str
    template: str
    new: bool  # the first line of this template
    key: Tokens = ()  # the masked line, for ``TemplateMiner.current``


class _Key:
    """A masked line's template (and its text, kept to spare a join per line) and count."""

    __slots__ = ("count", "template", "text")

    def __init__(self, template: Tokens, count: int = 0) -> None:
        self.count = count
        self.set(template)

    def set(self, template: Tokens) -> None:
        self.template, self.text = template, " ".join(template)


class TemplateMiner:
    """Assigns templates online and refines them; remembers at most ``capacity`` keys."""

    def __init__(self, capacity: int = 50_000, distinct: int = 5, refine_min: int = 64) -> None:
        self.capacity, self.distinct, self.refine_min = capacity, distinct, refine_min
        self._keys: OrderedDict[Tokens, _Key] = OrderedDict()
        self._by_length: dict[int, set[Tokens]] = defaultdict(set)
        self._lines: dict[Tokens, int] = {}  # template -> lines (of the kept keys)
        self._templates: dict[int, dict[Tokens, None]] = defaultdict(dict)  # by length
        self._ids: dict[Tokens, str] = {}  # template -> its id, kept through refinement
        self._changed: set[int] = set()
        self._fresh = 0
        self.refinements = 0

    def add(self, message: str) -> Match:
        tokens = mask(message)
        key = self._keys.get(tokens)
        if key is None:
            key = self._insert(tokens)
        else:
            self._keys.move_to_end(tokens)
        template = key.template
        new = template not in self._lines
        key.count += 1
        self._credit(template, 1)
        found = self._ids.get(template)
        if found is None:
            found = self._ids[template] = template_id(key.text)
        return Match(found, key.text, new, tokens)

    def current(self, match: Match) -> str:
        """The template of an earlier match now (refinement may have generalised it)."""
        key = self._keys.get(match.key)
        return key.text if key else match.template

    def template_for(self, message: str) -> str:
        """The current template of a message (its own mask if never added or forgotten)."""
        tokens = mask(message)
        key = self._keys.get(tokens)
        return key.text if key else " ".join(tokens)

    def count(self, template: str) -> int:
        return self._lines.get(tuple(template.split(" ")), 0)

    def __len__(self) -> int:
        return len(self._keys)

    @property
    def templates(self) -> int:
        return len(self._lines)

    def to_json(self) -> dict[str, Any]:
        """Everything the miner knows, as JSON-ready data (for a restart)."""
        return {
            "keys": [[list(t), list(e.template), e.count] for t, e in self._keys.items()],
            "ids": [[list(t), i] for t, i in self._ids.items()],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], **settings: int) -> TemplateMiner:
        miner = cls(**settings)
        for tokens, template, count in data["keys"][-miner.capacity :]:
            key = tuple(str(t) for t in tokens)
            entry = miner._keys[key] = _Key(tuple(str(t) for t in template), int(count))
            miner._by_length[len(key)].add(key)
            miner._credit(entry.template, entry.count)
        for template, found in data["ids"]:
            if tuple(template) in miner._lines:
                miner._ids[tuple(template)] = str(found)
        return miner

    def _insert(self, tokens: Tokens) -> _Key:
        if len(self._keys) >= self.capacity:
            old, gone = self._keys.popitem(last=False)  # forget the least recently seen
            self._by_length[len(old)].discard(old)
            self._drop(gone.template, gone.count)
        key = self._keys[tokens] = _Key(self._fitting(tokens))
        self._by_length[len(tokens)].add(tokens)
        self._changed.add(len(tokens))
        self._fresh += 1
        if self._fresh >= max(self.refine_min, len(self._keys) // 4):
            self.refine()
        return key

    def _fitting(self, tokens: Tokens) -> Tokens:
        for template in self._templates[len(tokens)]:
            if all(t in (WILDCARD, w) for t, w in zip(template, tokens, strict=True)):
                return template
        return tokens

    def _credit(self, template: Tokens, lines: int) -> None:
        if template not in self._lines:
            self._lines[template] = 0
            self._templates[len(template)][template] = None
        self._lines[template] += lines

    def _drop(self, template: Tokens, lines: int) -> None:
        left = self._lines.get(template, 0) - lines
        if left > 0:
            self._lines[template] = left
        elif template in self._lines:
            del self._lines[template]
            del self._templates[len(template)][template]
            self._ids.pop(template, None)

    def refine(self) -> None:
        """Group again the keys of every length that gained keys since the last time.

        A refined template keeps the id of the largest template it absorbed, so a
        template's line rate carries on through a generalisation.
        """
        for length in self._changed:
            members = list(self._by_length[length])
            if not members:
                continue
            entries = [self._keys[m] for m in members]
            found = templates(members, [e.count for e in entries], self.distinct)
            heirs: dict[Tokens, tuple[int, str]] = {}
            for entry, template in zip(entries, found, strict=True):
                old = self._ids.get(entry.template)
                if old is not None and entry.count > heirs.get(template, (-1, ""))[0]:
                    heirs[template] = (entry.count, old)
            for entry, template in zip(entries, found, strict=True):
                if entry.template != template:
                    self._drop(entry.template, entry.count)
                    self._credit(template, entry.count)
                    entry.set(template)
            taken: set[str] = set()
            for template, (_, old) in sorted(heirs.items(), key=lambda h: -h[1][0]):
                if old not in taken:
                    self._ids[template] = old
                    taken.add(old)
                else:
                    self._ids[template] = template_id(" ".join(template))
        self._changed.clear()
        self._fresh = 0
        self.refinements += 1


def template_id(template: str) -> str:
    return hashlib.blake2s(template.encode(), digest_size=5).hexdigest()


def parameters(template: str, message: str) -> list[str]:
    """The message's text at the template's ``<*>`` (white space between words loosened)."""
    pattern = _pattern(template)
    found = pattern.fullmatch(" ".join(message.split())) if pattern else None
    return [g.strip() for g in found.groups()] if found else []


_PATTERNS: OrderedDict[str, re.Pattern[str] | None] = OrderedDict()


def _pattern(template: str) -> re.Pattern[str] | None:
    if template in _PATTERNS:
        _PATTERNS.move_to_end(template)
        return _PATTERNS[template]
    parts = [re.escape(p) for p in template.split(WILDCARD)]
    try:
        compiled: re.Pattern[str] | None = re.compile("(.*?)".join(parts), re.DOTALL)
    except re.error:  # pragma: no cover - escaped text always compiles
        compiled = None
    _PATTERNS[template] = compiled
    if len(_PATTERNS) > 4096:
        _PATTERNS.popitem(last=False)
    return compiled


def is_novel_error(match: Match, level: str | None) -> bool:
    """A log anomaly: a template never seen before, at an error-like level."""
    return match.new and (level or "").strip().lower() in ERROR_LEVELS
