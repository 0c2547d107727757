"""A class-balanced linear SVM whose scores are turned into honest probabilities.

Why not scikit-learn's `CalibratedClassifierCV(method="sigmoid")`: it fits each class's
sigmoid with a general-purpose optimiser once per fold, which on a 50,000-ticket history
cost more CPU than the three SVMs themselves. Here the same Platt scaling (per class,
with Platt's smoothed targets) is fitted once on the pooled out-of-fold scores of every
fold, by Newton steps vectorised over the classes — a few milliseconds — and the fold
models are kept as the ensemble that predicts (as scikit-learn's `ensemble=True` does),
so every confidence comes from scores of tickets the scoring model never saw.

The SVM's `C` is chosen per history by the same out-of-fold scores (macro-F1 over a few
values), on at most `SELECT_ROWS` rows so the choice stays cheap on a large history:
a general rule, not a parameter tuned to one dataset.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedKFold
from sklearn.svm import LinearSVC

SELECT_ROWS = 6_000  # rows the choice of C looks at (a sample on larger histories)
NEWTON_STEPS = 50


def _svm(c: float, seed: int) -> LinearSVC:
    return LinearSVC(C=c, class_weight="balanced", random_state=seed)


def _fold_scores(
    x: sparse.csr_matrix, y: np.ndarray, c: float, folds: int, seed: int
) -> tuple[np.ndarray, list[LinearSVC]]:
    """Out-of-fold decision values (rows x classes) and the fold models that made them."""
    classes = np.unique(y)
    scores = np.zeros((x.shape[0], len(classes)), dtype=np.float64)
    models = []
    split = StratifiedKFold(folds, shuffle=True, random_state=seed)
    for fit_rows, held_rows in split.split(np.zeros(len(y)), y):
        model = _svm(c, seed).fit(x[fit_rows], y[fit_rows])
        held = model.decision_function(x[held_rows])
        if held.ndim == 1:  # two classes: one score, for the second
            held = np.column_stack([-held, held])
        scores[np.ix_(held_rows, np.searchsorted(classes, model.classes_))] = held
        models.append(model)
    return scores, models


def platt(scores: np.ndarray, y: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Per class (a, b) with P(class | s) = 1 / (1 + exp(a*s + b)), Platt (1999) with
    Lin et al.'s targets; Newton with step halving, all classes at once."""
    target = (y[:, None] == classes[None, :]).astype(np.float64)
    positives = target.sum(0)
    negatives = len(y) - positives
    hi, lo = (positives + 1) / (positives + 2), 1 / (negatives + 2)
    t = np.where(target > 0, hi, lo)
    a = np.zeros(len(classes))
    b = np.log((negatives + 1) / (positives + 1))

    def loss(a_: np.ndarray, b_: np.ndarray) -> np.ndarray:
        z = scores * a_ + b_
        return (t * z + np.logaddexp(0, -z)).sum(0)

    current = loss(a, b)
    for _ in range(NEWTON_STEPS):
        z = scores * a + b
        p = 1 / (1 + np.exp(z))  # the modelled probability of the class
        d1 = t - p  # dloss/dz
        d2 = np.maximum(p * (1 - p), 1e-12)
        ga, gb = (d1 * scores).sum(0), d1.sum(0)
        haa, hab, hbb = (d2 * scores * scores).sum(0) + 1e-12, (d2 * scores).sum(0), d2.sum(0)
        det = haa * hbb - hab * hab
        da, db = -(hbb * ga - hab * gb) / det, -(haa * gb - hab * ga) / det
        step = np.ones(len(classes))
        for _ in range(20):  # halve each class's step until its loss does not rise
            trial = loss(a + step * da, b + step * db)
            worse = trial > current + 1e-10
            if not worse.any():
                break
            step = np.where(worse, step / 2, step)
        a, b, current = a + step * da, b + step * db, np.minimum(trial, current)
        if np.all(np.abs(step * da) < 1e-7) and np.all(np.abs(step * db) < 1e-7):
            break
    return np.column_stack([a, b])


def _probabilities(scores: np.ndarray, ab: np.ndarray) -> np.ndarray:
    p = 1 / (1 + np.exp(np.clip(scores * ab[:, 0] + ab[:, 1], -50, 50)))
    total = p.sum(1, keepdims=True)
    return np.divide(p, total, out=np.full_like(p, 1 / p.shape[1]), where=total > 0)


class CalibratedSVM(ClassifierMixin, BaseEstimator):
    """`fit` / `predict_proba` like any scikit-learn classifier (so it sits in a Pipeline)."""

    def __init__(self, cs: Sequence[float] = (0.3, 1.0), folds: int = 3, seed: int = 0):
        self.cs, self.folds, self.seed = cs, folds, seed

    def fit(self, x: sparse.spmatrix, y: Sequence[str]) -> CalibratedSVM:
        x, y = sparse.csr_matrix(x), np.asarray(y)
        self.classes_ = np.unique(y)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # more iterations change little
            self.c_ = self._choose_c(x, y)
            scores, self.models_ = _fold_scores(x, y, self.c_, self.folds, self.seed)
        self.platt_ = platt(scores, y, self.classes_)
        return self

    def _choose_c(self, x: sparse.csr_matrix, y: np.ndarray) -> float:
        if len(self.cs) == 1:
            return float(self.cs[0])
        rows = np.arange(len(y))
        if len(y) > SELECT_ROWS:  # a stratified sample keeps every class in the choice
            keep, _ = next(
                StratifiedKFold(
                    max(2, round(len(y) / SELECT_ROWS)), shuffle=True, random_state=self.seed
                ).split(rows, y)
            )
            rows = keep if len(keep) <= SELECT_ROWS else keep[:SELECT_ROWS]
        xs, ys = x[rows], y[rows]
        if np.min(np.unique(ys, return_counts=True)[1]) < self.folds:
            return float(self.cs[-1])
        best, best_f1 = float(self.cs[-1]), -1.0
        for c in self.cs:
            scores, _ = _fold_scores(xs, ys, c, self.folds, self.seed)
            f1 = f1_score(ys, np.unique(ys)[scores.argmax(1)], average="macro")
            if f1 > best_f1 + 1e-9:
                best, best_f1 = float(c), f1
        return best

    def _scores(self, model: LinearSVC, x: sparse.spmatrix) -> np.ndarray:
        s = model.decision_function(x)
        if s.ndim == 1:
            s = np.column_stack([-s, s])
        return s

    def predict_proba(self, x: sparse.spmatrix) -> np.ndarray:
        """Each fold model's calibrated probabilities, averaged (the ensemble)."""
        return np.mean([_probabilities(self._scores(m, x), self.platt_) for m in self.models_], 0)

    def predict(self, x: sparse.spmatrix) -> np.ndarray:
        return self.classes_[self.predict_proba(x).argmax(1)]
