"""The Loghub-2k parsing benchmark: reading its labelled samples and scoring a parser.

Grouping accuracy (GA) counts a message as right when the group the parser put it in holds
exactly the messages of its ground-truth group; parsing accuracy (PA) when its template
string equals the ground truth's. Both are computed on the original labels and, where the
system has them, on the corrected ones (Khan et al., ICSE 2022).
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Sample:
    system: str
    contents: list[str]
    templates: list[str]


def load(data: Path, corrected: bool) -> list[Sample]:
    """Every ``<S>/<S>_2k.log_structured[_corrected].csv`` under ``data``."""
    samples = []
    for folder in sorted(p for p in data.iterdir() if p.is_dir()):
        name = folder.name
        path = (
            folder / "corrected" / f"{name}_2k.log_structured_corrected.csv"
            if corrected
            else folder / f"{name}_2k.log_structured.csv"
        )
        if not path.is_file():
            continue
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        samples.append(
            Sample(name, [r["Content"] for r in rows], [r["EventTemplate"] for r in rows])
        )
    if not samples:
        raise ValueError(f"{data}: no <System>/<System>_2k.log_structured.csv (is this Loghub-2k?)")
    return samples


def grouping_accuracy(predicted: Sequence[str], truth: Sequence[str]) -> float:
    groups: dict[str, set[int]] = defaultdict(set)
    expected: dict[str, set[int]] = defaultdict(set)
    for i, (p, t) in enumerate(zip(predicted, truth, strict=True)):
        groups[p].add(i)
        expected[t].add(i)
    right = sum(len(ids) for ids in groups.values() if expected[truth[next(iter(ids))]] == ids)
    return right / len(truth) if truth else 1.0


def parsing_accuracy(predicted: Sequence[str], truth: Sequence[str]) -> float:
    right = sum(p == t for p, t in zip(predicted, truth, strict=True))
    return right / len(truth) if truth else 1.0
