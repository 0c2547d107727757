"""Held-out evaluation of a triage model on any labelled export.

The split is stratified wherever each class allows it: a class with a single example
cannot be in both halves, so it goes to training (and the report says so). Figures are
the ones a service-desk lead asks for: accuracy, macro-F1 (every class counts the
same, so small groups are not hidden), weighted-F1, per class precision/recall, and —
because only confident predictions are applied — coverage and accuracy at the
auto-apply threshold, with the curve around it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from sklearn.metrics import accuracy_score, classification_report, f1_score
from sklearn.model_selection import train_test_split

from baton.kernel.errors import Invalid
from baton.triage.dataset import Example, class_counts
from baton.triage.model import (
    DEFAULT_THRESHOLD,
    Prediction,
    accuracy_at,
    predict_many,
    train,
)

CURVE = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95)


def split(
    examples: Sequence[Example], test_size: float, seed: int
) -> tuple[list[Example], list[Example], dict[str, Any]]:
    """(train, test, notes): stratified over the classes with two or more examples."""
    if not 0.0 < test_size < 1.0:
        raise Invalid("must be between 0 and 1", "test_size")
    counts = class_counts(e.label for e in examples)
    singles = [e for e in examples if counts[e.label] < 2]
    rest = [e for e in examples if counts[e.label] >= 2]
    notes: dict[str, Any] = {"singleton_classes_train_only": sorted(e.label for e in singles)}
    if len(rest) < 2:
        raise Invalid("too few labelled rows to split", "csv")
    labels = [e.label for e in rest]
    try:
        train_rows, test_rows = train_test_split(
            rest, test_size=test_size, random_state=seed, stratify=labels
        )
        notes["stratified"] = True
    except ValueError as exc:  # fewer test rows than classes: stratifying is impossible
        train_rows, test_rows = train_test_split(rest, test_size=test_size, random_state=seed)
        notes["stratified"] = False
        notes["not_stratified_because"] = str(exc)
    return [*train_rows, *singles], list(test_rows), notes


def evaluate(
    examples: Sequence[Example],
    *,
    text_columns: Sequence[str],
    field_columns: Sequence[str] = (),
    test_size: float = 0.2,
    seed: int = 42,
    threshold: float = DEFAULT_THRESHOLD,
) -> dict[str, Any]:
    """Train on one part, score the other, and return every figure as plain data."""
    train_rows, test_rows, notes = split(examples, test_size, seed)
    started = time.perf_counter()
    model = train(
        "evaluate",
        train_rows,
        text_columns=text_columns,
        field_columns=field_columns,
        threshold=threshold,
        seed=seed,
    )
    train_s = time.perf_counter() - started
    known = set(model.classes)
    unseen = [e for e in test_rows if e.label not in known]
    started = time.perf_counter()
    predictions = predict_many(model, [e.fields for e in test_rows])
    predict_s = time.perf_counter() - started
    truth = [e.label for e in test_rows]
    guessed = [p.value or "" for p in predictions]
    report = classification_report(truth, guessed, output_dict=True, zero_division=0)
    per_class = {
        k: {m: round(v, 4) if isinstance(v, float) else v for m, v in row.items()}
        for k, row in report.items()
        if isinstance(row, dict) and k not in ("macro avg", "weighted avg", "")
    }
    majority = max(class_counts(e.label for e in train_rows).items(), key=lambda kv: kv[1])[0]
    return {
        "train_rows": len(train_rows),
        "test_rows": len(test_rows),
        "classes": len(known),
        "seed": seed,
        "test_size": test_size,
        **notes,
        "rare_classes_left_out": model.notes["rare_classes_left_out"],
        "test_rows_of_unlearned_classes": len(unseen),
        "accuracy": round(accuracy_score(truth, guessed), 4),
        "macro_f1": round(f1_score(truth, guessed, average="macro", zero_division=0), 4),
        "weighted_f1": round(f1_score(truth, guessed, average="weighted", zero_division=0), 4),
        "majority_class": majority,
        "majority_accuracy": round(sum(t == majority for t in truth) / len(truth), 4),
        "threshold": threshold,
        "at_threshold": _point(predictions, truth, threshold),
        "curve": [_point(predictions, truth, t) for t in CURVE],
        "per_class": per_class,
        "train_seconds": round(train_s, 2),
        "predict_per_s": round(len(test_rows) / predict_s) if predict_s > 0 else None,
    }


def _point(predictions: list[Prediction], truth: list[str], threshold: float) -> dict[str, float]:
    coverage, accuracy = accuracy_at(predictions, truth, threshold)
    return {"threshold": threshold, "coverage": round(coverage, 4), "accuracy": round(accuracy, 4)}
