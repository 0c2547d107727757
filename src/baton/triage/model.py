"""Triage classifiers: one field (category, priority, group...) from a ticket's fields.

One configuration for every history, nothing keyed to one dataset: TF-IDF over word
uni- and bi-grams of the text (sublinear counts, so a word repeated by a signature does
not drown the rest), structured fields as `column=value` indicator features,
a class-balanced linear SVM (rare groups still count) whose C is chosen per history by
cross-validation on the training rows, and per-class sigmoid (Platt) calibration on
out-of-fold scores (`triage.calibrated`) so that "0.9" means right about nine times in
ten — the number the auto-apply threshold is compared with.

A trained model is a pickled scikit-learn pipeline whose version is the SHA-256 of its
bytes: the same bytes always carry the same version, and a blob whose bytes do not
match its version is refused on load.
"""

from __future__ import annotations

import hashlib
import io
import pickle  # our own blobs only, checked against their hash before loading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import FunctionTransformer

from baton.kernel.errors import Invalid
from baton.triage.calibrated import CalibratedSVM
from baton.triage.dataset import MAX_TEXT, Example, class_counts

FOLDS = 3  # calibration folds; a class needs this many examples to be learned
# In a large history a term seen once is noise that costs memory and training time; in
# a small one it may be the only hint a rare class has.
LARGE_HISTORY = 10_000
DEFAULT_THRESHOLD = 0.8  # auto-apply at or above this calibrated confidence
CS = (0.3, 1.0)  # the SVM's C, chosen among these by cross-validation on the training rows


@dataclass(frozen=True)
class Prediction:
    """A model's choice among the allowed values, and what it would suggest instead."""

    value: str | None  # None: no allowed value is one the model knows
    confidence: float
    top3: list[tuple[str, float]]
    model_version: str

    def applies(self, threshold: float) -> bool:
        """Confident enough to set the field itself (else: show the top three)."""
        return self.value is not None and self.confidence >= threshold

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "confidence": round(self.confidence, 4),
            "top3": [[v, round(p, 4)] for v, p in self.top3],
            "model_version": self.model_version,
        }


@dataclass
class Trained:
    """A fitted model with what it needs to be used, stored and explained."""

    name: str
    text_columns: list[str]
    field_columns: list[str]
    label: str
    pipeline: Pipeline
    threshold: float = DEFAULT_THRESHOLD
    version: str = ""
    notes: dict[str, Any] = field(default_factory=dict)  # rows dropped, rare classes...

    @property
    def classes(self) -> list[str]:
        return [str(c) for c in self.pipeline.classes_]

    def proba(self, rows: Sequence[Mapping[str, str]]) -> np.ndarray:
        return self.pipeline.predict_proba(list(rows))


# --- features: module-level functions so the pipeline pickles ---------------------------
def _texts(rows: Sequence[Mapping[str, str]], columns: Sequence[str]) -> list[str]:
    """The text columns joined; each cut at MAX_TEXT so a huge body costs what a long one does."""
    return [" \n ".join(str(r.get(c) or "")[:MAX_TEXT] for c in columns) for r in rows]


def _field_tokens(rows: Sequence[Mapping[str, str]], columns: Sequence[str]) -> list[list[str]]:
    return [[f"{c}={str(r.get(c) or '').strip().lower()}" for c in columns] for r in rows]


def _identity(tokens: list[str]) -> list[str]:
    return tokens


def _features(text_columns: Sequence[str], field_columns: Sequence[str]) -> FeatureUnion:
    text = FunctionTransformer(_texts, kw_args={"columns": list(text_columns)})
    parts: list[tuple[str, Any]] = [
        (
            "words",
            Pipeline(
                [
                    ("text", text),
                    (
                        "tfidf",
                        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, dtype=np.float32),
                    ),
                ]
            ),
        ),
    ]
    if field_columns:
        parts.append(
            (
                "fields",
                Pipeline(
                    [
                        (
                            "tokens",
                            FunctionTransformer(
                                _field_tokens, kw_args={"columns": list(field_columns)}
                            ),
                        ),
                        ("onehot", CountVectorizer(analyzer=_identity, binary=True)),
                    ]
                ),
            )
        )
    return FeatureUnion(parts)


def trainable(examples: Sequence[Example]) -> tuple[list[Example], dict[str, int]]:
    """The examples of classes with enough rows to learn and calibrate, and the rest."""
    counts = class_counts(e.label for e in examples)
    rare = {label: n for label, n in counts.items() if n < FOLDS}
    return [e for e in examples if e.label not in rare], rare


def train(
    name: str,
    examples: Sequence[Example],
    *,
    text_columns: Sequence[str],
    field_columns: Sequence[str] = (),
    label: str = "label",
    threshold: float = DEFAULT_THRESHOLD,
    seed: int = 0,
) -> Trained:
    """Fit a calibrated model; classes too rare to calibrate are left out and named."""
    kept, rare = trainable(examples)
    classes = {e.label for e in kept}
    if len(classes) < 2:
        raise Invalid(
            f"need at least two classes with {FOLDS}+ examples each; have {len(classes)}"
            + (f" (too rare: {', '.join(sorted(rare))})" if rare else ""),
            "label",
        )
    if not 0.0 < threshold <= 1.0:
        raise Invalid("must be in (0, 1]", "threshold")
    calibrated = CalibratedSVM(cs=CS, folds=FOLDS, seed=seed)
    pipeline = Pipeline(
        [("features", _features(text_columns, field_columns)), ("model", calibrated)]
    )
    pipeline.set_params(features__words__tfidf__min_df=1 if len(kept) < LARGE_HISTORY else 2)
    pipeline.fit([e.fields for e in kept], [e.label for e in kept])
    model = Trained(
        name=name,
        text_columns=list(text_columns),
        field_columns=list(field_columns),
        label=label,
        pipeline=pipeline,
        threshold=threshold,
        notes={
            "trained_rows": len(kept),
            "classes": class_counts(e.label for e in kept),
            "rare_classes_left_out": rare,
            "svm_c": calibrated.c_,
        },
    )
    model.version = version_of(dumps(model))
    return model


# --- choosing among allowed values ------------------------------------------------------
def _choose(
    classes: list[str], probs: np.ndarray, allowed: set[str] | None, version: str
) -> Prediction:
    """Keep only allowed values, renormalise, rank: a model never picks a value that is
    not offered (removed, disabled, or unknown to this desk)."""
    if allowed is not None:
        mask = np.array([c in allowed for c in classes])
        probs = np.where(mask, probs, 0.0)
    total = float(probs.sum())
    if total <= 0.0:
        return Prediction(None, 0.0, [], version)
    probs = probs / total
    order = np.argsort(-probs, kind="stable")
    top = [(classes[i], float(probs[i])) for i in order[:3] if probs[i] > 0.0]
    return Prediction(top[0][0], top[0][1], top, version)


def predict(
    model: Trained, fields: Mapping[str, str], allowed: set[str] | None = None
) -> Prediction:
    """One ticket's prediction; `allowed` is the set of values that exist and are enabled."""
    return predict_many(model, [fields], allowed)[0]


def predict_many(
    model: Trained, rows: Sequence[Mapping[str, str]], allowed: set[str] | None = None
) -> list[Prediction]:
    """Many tickets in one vectorised pass (this is where throughput comes from)."""
    if not rows:
        return []
    probs = model.proba(rows)
    classes = model.classes
    return [_choose(classes, p, allowed, model.version) for p in probs]


# --- storage ----------------------------------------------------------------------------
def dumps(model: Trained) -> bytes:
    """The pipeline's bytes (the version is computed from exactly these)."""
    buffer = io.BytesIO()
    pickle.dump(model.pipeline, buffer, protocol=pickle.HIGHEST_PROTOCOL)
    return buffer.getvalue()


def version_of(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()[:16]


def loads(blob: bytes, version: str) -> Pipeline:
    """Unpickle a stored pipeline, but only if its bytes are the ones that were stored."""
    if version_of(blob) != version:
        raise Invalid(f"stored model bytes do not match version {version}", "model")
    return pickle.loads(blob)  # noqa: S301 - hash-checked blob written by `dumps`


def accuracy_at(
    predictions: Iterable[Prediction], truth: Iterable[str], threshold: float
) -> tuple[float, float]:
    """(coverage, accuracy among the covered) when only values at/above `threshold` apply."""
    hits = total = covered = 0
    for p, t in zip(predictions, truth, strict=True):
        total += 1
        if p.applies(threshold):
            covered += 1
            hits += int(p.value == t)
    coverage = covered / total if total else 0.0
    return coverage, (hits / covered if covered else 0.0)
