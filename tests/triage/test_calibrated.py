"""The calibrated SVM: Platt scaling that recovers a known sigmoid, probabilities that
mean what they say on held-out data, two classes as well as many, and a C chosen among
the offered values."""

from __future__ import annotations

import numpy as np
from scipy import sparse

from baton.triage.calibrated import CalibratedSVM, platt


def test_platt_recovers_the_sigmoid_that_made_the_labels():
    rng = np.random.default_rng(0)
    scores = rng.normal(0, 2, size=(20_000, 1))
    true_a, true_b = -1.5, 0.4  # P(class) = 1 / (1 + exp(a*s + b))
    p = 1 / (1 + np.exp(true_a * scores[:, 0] + true_b))
    y = np.where(rng.random(len(p)) < p, "yes", "no")
    [[a, b]] = platt(scores, y, np.array(["yes"]))
    assert abs(a - true_a) < 0.1 and abs(b - true_b) < 0.1


def _noisy(n: int, classes: int, seed: int) -> tuple[sparse.csr_matrix, np.ndarray]:
    """Bag-of-features rows: each class has its own features, 25 % of labels flipped, so
    a model cannot be sure of everything and its confidence has something to be honest about."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    x = rng.random((n, classes * 5)) < 0.05
    for i, c in enumerate(y):
        x[i, c * 5 + rng.integers(0, 5, 2)] = True
    flip = rng.random(n) < 0.25
    y = np.where(flip, rng.integers(0, classes, n), y)
    return sparse.csr_matrix(x.astype(np.float64)), np.array([f"c{c}" for c in y])


def test_confidence_matches_the_hit_rate_on_unseen_rows():
    x, y = _noisy(4_000, 4, seed=1)
    model = CalibratedSVM(cs=(0.3, 1.0), seed=0).fit(x[:3_000], y[:3_000])
    proba = model.predict_proba(x[3_000:])
    assert np.allclose(proba.sum(1), 1.0)
    confidence = proba.max(1)
    hits = model.classes_[proba.argmax(1)] == y[3_000:]
    assert abs(confidence.mean() - hits.mean()) < 0.05  # calibrated on average
    sure = confidence >= 0.7
    assert sure.any() and hits[sure].mean() >= 0.7  # the bar means what it says
    assert model.c_ in (0.3, 1.0)


def test_two_classes_work_like_many():
    x, y = _noisy(600, 2, seed=2)
    model = CalibratedSVM(cs=(1.0,)).fit(x, y)
    proba = model.predict_proba(x[:50])
    assert proba.shape == (50, 2) and np.allclose(proba.sum(1), 1.0)
    assert set(model.predict(x[:50])) <= {"c0", "c1"}
