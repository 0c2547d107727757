"""The triage bench: held-out quality on a ticket export, against simple baselines, and
training/prediction speed.

The folder holds `tickets.csv`. Its columns: `BATON_TRIAGE_TEXT` (comma list) and
`BATON_TRIAGE_LABEL` when set, else the last column is the label and every other column
is text — so any export can be benched without code, and nothing here names one file's
columns or classes.
"""

from __future__ import annotations

import csv
import io
import os
import random
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from baton.servicedesk.tickets import classify
from baton.triage.dataset import Example, read_csv, split_columns
from baton.triage.evaluate import evaluate, split
from baton.triage.model import predict_many, train

FIGURES = ("accuracy", "macro_f1", "weighted_f1", "majority_accuracy")


def columns(path: Path) -> tuple[list[str], str]:
    """(text columns, label column) of the export, from the environment or its header."""
    header = next(csv.reader(io.StringIO(path.read_text("utf-8-sig").split("\n", 1)[0])))
    names = [h.strip() for h in header]
    label = os.environ.get("BATON_TRIAGE_LABEL", "").strip() or names[-1]
    text = os.environ.get("BATON_TRIAGE_TEXT", "")
    return (split_columns(text) if text.strip() else [n for n in names if n != label]), label


def keyword_accuracy(test: Sequence[Example], text_columns: Sequence[str]) -> float | None:
    """The desk's keyword classifier, where its category names equal the export's labels
    (case aside); None when no label is one of its categories (not comparable)."""
    labels = {e.label.lower() for e in test}
    guesses = [classify(" ".join(e.fields[c] for c in text_columns), "")[0] for e in test]
    if not labels & set(guesses):
        return None
    hits = sum(g == e.label.lower() for g, e in zip(guesses, test, strict=True))
    return round(hits / len(test), 4)


def recombined(examples: Sequence[Example], size: int, seed: int) -> list[Example]:
    """`size` synthetic tickets for the speed figure: halves of two tickets of one class,
    shuffled, so the vocabulary grows as a real history's would rather than repeating."""
    rng = random.Random(seed)  # noqa: S311 - synthetic bench data, not security
    by_label: dict[str, list[Example]] = {}
    for e in examples:
        by_label.setdefault(e.label, []).append(e)
    labels = [e.label for e in examples]
    rows = []
    for _ in range(size):
        label = rng.choice(labels)
        a, b = rng.choice(by_label[label]), rng.choice(by_label[label])
        fields = {}
        for column, text in a.fields.items():
            left, right = text.split(), b.fields.get(column, "").split()
            words = left[: len(left) // 2] + right[len(right) // 2 :]
            rng.shuffle(words)
            fields[column] = " ".join(words)
        rows.append(Example(fields, label))
    return rows


def _timed(work: Callable[[], object]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) that `work` took."""
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    return time.perf_counter() - wall, time.process_time() - cpu


def run(
    folder: Path, seeds: Sequence[int], size: int | None, progress: Callable[[int, int], None]
) -> dict[str, Any]:
    path = folder / "tickets.csv"
    if not path.is_file():
        raise ValueError(f"{path} not found (the bench reads FOLDER/tickets.csv)")
    text_columns, label = columns(path)
    examples, report = read_csv(path, text_columns, label)
    result: dict[str, Any] = {"rows": report.kept, "load": report.to_dict()}
    result["text_columns"], result["label"] = text_columns, label
    per_seed: dict[str, dict[str, Any]] = {}
    steps = len(seeds) + (1 if size else 0)
    for i, seed in enumerate(seeds):
        figures = evaluate(examples, text_columns=text_columns, test_size=0.2, seed=seed)
        _, test, _ = split(examples, 0.2, seed)
        per_seed[str(seed)] = {
            **{k: figures[k] for k in FIGURES},
            "keyword_accuracy": keyword_accuracy(test, text_columns),
            "at_threshold": figures["at_threshold"],
            "train_seconds": figures["train_seconds"],
            "classes": figures["classes"],
        }
        progress(i + 1, steps)
    result["seeds"] = per_seed
    for key in ("accuracy", "macro_f1"):
        result[f"mean_{key}"] = round(statistics.mean(s[key] for s in per_seed.values()), 4)
    model = train("bench", examples, text_columns=text_columns, label=label)
    batch = [e.fields for e in examples] * max(1, -(-5000 // len(examples)))
    wall, cpu = _timed(lambda: predict_many(model, batch))
    result["predict_per_s"] = round(len(batch) / wall)
    result["predict_per_cpu_s"] = round(len(batch) / cpu) if cpu > 0 else None
    if size:
        rows = recombined(examples, size, seed=1)
        wall, cpu = _timed(lambda: train("bench", rows, text_columns=text_columns, label=label))
        result[f"train_seconds_{size}"] = round(wall, 3)
        # on a shared machine wall time is mostly waiting for a core; CPU time is the cost
        result[f"train_cpu_seconds_{size}"] = round(cpu, 3)
        progress(steps, steps)
    return result
