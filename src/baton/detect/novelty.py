"""Novelty: the first visit to a band of values never seen since the learning period.

The learning period's range (its first ``learn`` values) is cut into ``bands`` bands,
plus one below it and one above; the bands the period visited are known. A later value
in a band never visited raises a novelty of 1 once (then that band is known), and the
next ``quiet`` points are held back. This catches what the deviation test lets pass
because the series' usual surprise is high (a bursty series moving to a level it never
had), without the anomaly likelihood's smoothing delay. It began as a contextual
detector in the manner of CAD OSE (sequences of bands, a bit table of sequences seen);
at the threshold NAB chooses only the first visit of a band counted, so this is that
part alone. State is fixed: the visited bands, the learning period's values (replayed
once its range is known) and a few scalars; O(1) work per point.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# scalar state layout
N_SEEN, N_LO, N_HI, N_QUIET, N_TLAST, N_HOLD = range(6)
N_NOVELTY_SCALARS = 6


@njit(cache=True)
def _band(x: float, lo: float, hi: float, bands: int) -> int:
    """1..bands inside the learning period's range; 0 below it, bands + 1 above."""
    if x < lo:
        return 0
    if x > hi:
        return bands + 1
    return min(math.floor((x - lo) / max(hi - lo, 1e-9) * bands), bands - 1) + 1


@njit(cache=True)
def step(
    ts: np.ndarray,
    xs: np.ndarray,
    learn: int,
    quiet: int,
    weight: float,
    fire: float,
    hold: int,
    st: np.ndarray,
    visited: np.ndarray,
    replay: np.ndarray,
    score: np.ndarray,
    won: np.ndarray,
) -> None:
    """Merge this opinion into ``score`` (the deviation kernel's; ``won`` marks where it
    is the larger), then hold every alarm (``score >= fire``) back for ``hold`` points."""
    bands = visited.shape[0] - 2
    for i in range(xs.shape[0]):
        won[i] = False
        novelty = _novelty(ts[i], xs[i], learn, quiet, bands, st, visited, replay) * weight
        if novelty > score[i]:
            score[i], won[i] = novelty, True
        if st[N_HOLD] > 0:
            st[N_HOLD] -= 1
            score[i], won[i] = 0.0, False
        elif score[i] >= fire:
            st[N_HOLD] = hold


@njit(cache=True)
def _novelty(
    t: float,
    x: float,
    learn: int,
    quiet: int,
    bands: int,
    st: np.ndarray,
    visited: np.ndarray,
    replay: np.ndarray,
) -> float:
    """1.0 at the first visit of a band (outside the quiet period), else 0.0."""
    if not (math.isfinite(x) and math.isfinite(t)):
        return 0.0
    seen = int(st[N_SEEN])
    if seen > 0 and t < st[N_TLAST]:
        return 0.0  # out of order, as the deviation kernel does
    st[N_TLAST] = t
    st[N_SEEN] = seen + 1
    if seen < learn:
        replay[seen] = x
        st[N_LO] = x if seen == 0 else min(st[N_LO], x)
        st[N_HI] = x if seen == 0 else max(st[N_HI], x)
        if seen == learn - 1:  # the range is known: mark the bands the period visited
            for r in range(learn):
                visited[_band(replay[r], st[N_LO], st[N_HI], bands)] = True
        return 0.0
    b = _band(x, st[N_LO], st[N_HI], bands)
    novelty = 0.0 if visited[b] else 1.0
    visited[b] = True
    if st[N_QUIET] > 0:
        st[N_QUIET] -= 1
        novelty = 0.0
    elif novelty > 0.0:
        st[N_QUIET] = quiet
    return novelty
