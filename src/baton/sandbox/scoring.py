"""Scoring a grouping of alerts against the truth: pairwise precision/recall/F1 and
probable-origin accuracy. Pure functions so a hand-made case can check them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Hashable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class PairScore:
    precision: float
    recall: float
    f1: float
    true_pairs: int
    predicted_pairs: int
    agreeing_pairs: int


def _pairs(n: int) -> int:
    return n * (n - 1) // 2


def pairwise(
    truth: Sequence[Hashable | None],
    predicted: Sequence[Hashable | None],
    neutral: Collection[Hashable] = (),
) -> PairScore:
    """Score two clusterings of the same alerts, given as one label per alert.

    None means "in no cluster" (a one-off noise alert in the truth, an alert in no
    incident in the prediction): it forms no pair with anything. A pair counts as agreeing
    when both sides put the two alerts together. Pairs of alerts that share a truth label
    in `neutral` count for nothing either way: the repeats of one flapping noise alert may
    be grouped or not, but grouping them with anything else is a false pair. With no pairs
    on a side, its score is 1.0 (nothing to get wrong) rather than undefined.
    """
    if len(truth) != len(predicted):
        raise ValueError("truth and prediction must label the same alerts")
    counted = [t is not None and t not in neutral for t in truth]
    true_pairs = sum(
        _pairs(n) for t, n in Counter(t for t, c in zip(truth, counted, strict=True) if c).items()
    )
    both = Counter(zip(truth, predicted, strict=True))
    skip = sum(_pairs(n) for (t, p), n in both.items() if p is not None and t in neutral)
    pred_pairs = sum(_pairs(n) for p, n in Counter(predicted).items() if p is not None) - skip
    agree = sum(
        _pairs(n)
        for (t, p), n in both.items()
        if t is not None and p is not None and t not in neutral
    )
    precision = agree / pred_pairs if pred_pairs else 1.0
    recall = agree / true_pairs if true_pairs else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return PairScore(
        round(precision, 4), round(recall, 4), round(f1, 4), true_pairs, pred_pairs, agree
    )


def origin_hits(
    truth: Sequence[Hashable | None],
    predicted: Sequence[Hashable | None],
    roots: dict[Hashable, str],
    origins: dict[Hashable, str | None],
) -> tuple[int, int]:
    """(faults whose incident names the right origin, faults with any alert).

    A fault's incident is the one holding most of its alerts; a fault whose alerts all
    stayed out of incidents counts as a miss.
    """
    per_fault: dict[Hashable, Counter[Hashable | None]] = {}
    for t, p in zip(truth, predicted, strict=True):
        if t is not None:
            per_fault.setdefault(t, Counter())[p] += 1
    hits = 0
    for fault, incidents in per_fault.items():
        placed = [(n, inc) for inc, n in incidents.items() if inc is not None]
        if placed:
            _, incident = max(placed, key=lambda pair: pair[0])
            hits += origins.get(incident) == roots.get(fault)
    return hits, len(per_fault)
