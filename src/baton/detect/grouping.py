"""Grouping masked messages into templates by their longest common pattern.

Messages of one length are compared position by position. Each (position, word) pair has
a frequency (lines holding that word at that position). The words of a template's
constant part tend to share one frequency — every line of the template holds them —
while a variable's values each occur less often, and words shared with other templates
more often. So a message's *pattern* is the set of its words whose frequency is the one
most of its words share (ties: the higher frequency), and messages with the same pattern
start as one group. In a group, a position whose values number at least ``distinct`` is
a variable; a position with fewer, different values splits the group by value (few values
are usually different events, "opened" and "closed"); a position with one value is
constant. The idea is the longest-common-pattern grouping of Brain (Yu et al., 2023);
this is our own, simpler form of it, without its per-system thresholds.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence

from baton.detect.masking import WILDCARD

Tokens = tuple[str, ...]


def templates(keys: Sequence[Tokens], weights: Sequence[int], distinct: int = 5) -> list[Tokens]:
    """One template per key; every key has the same length."""
    freq: Counter[tuple[int, str]] = Counter()
    for key, weight in zip(keys, weights, strict=True):
        for pair in enumerate(key):
            freq[pair] += weight
    groups: dict[Tokens, list[int]] = defaultdict(list)
    for k, key in enumerate(keys):
        counts = Counter(freq[p] for p in enumerate(key) if p[1] != WILDCARD)
        if counts:
            common = max(counts, key=lambda f: (counts[f], f))
            pattern = tuple(w if freq[i, w] == common else WILDCARD for i, w in enumerate(key))
        else:
            pattern = key
        groups[pattern].append(k)
    out: list[Tokens] = [()] * len(keys)
    for pattern, members in groups.items():
        _split(keys, members, pattern, distinct, out)
    return out


def _split(
    keys: Sequence[Tokens], members: list[int], pattern: Tokens, distinct: int, out: list[Tokens]
) -> None:
    """Settle the positions outside the pattern: variable, constant, or split by value."""
    fixed = {i for i, w in enumerate(pattern) if w != WILDCARD}
    stack = [(members, list(keys[members[0]]), fixed)]
    while stack:
        group, template, fixed = stack.pop()
        open_positions = []
        for i in range(len(template)):
            if i in fixed:
                continue
            values = {keys[k][i] for k in group}
            if WILDCARD in values or len(values) >= distinct:
                template[i] = WILDCARD
            elif len(values) > 1:
                open_positions.append(i)
            else:
                template[i] = next(iter(values))  # constant here (a split may have made it)
        if not open_positions:
            final = tuple(template)
            for k in group:
                out[k] = final
            continue
        i = open_positions[0]
        by_value: dict[str, list[int]] = defaultdict(list)
        for k in group:
            by_value[keys[k][i]].append(k)
        for value, part in by_value.items():
            child = list(template)
            child[i] = value
            stack.append(
                (
                    part,
                    child,
                    fixed | {i} | {j for j in range(len(child)) if j not in open_positions},
                )
            )
