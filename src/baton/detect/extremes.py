"""A second opinion: the first time a series goes well beyond the range it learnt.

The first ``learn`` values, spanning at least ``span_s`` seconds (a day: a range learnt
over part of a daily cycle is not the series' range), give a range [lo, hi]. Later,
the first value above ``hi + margin * (hi - lo)`` scores 1 once, and so does the first below
``lo - margin * (hi - lo)``; after that the side is known and stays quiet. It catches a
move to a level the series never had when the deviation test (``kernel.py``) is slow or
dulled by a bursty history, and it cannot repeat itself: at most two findings per series.
It is what was left of a contextual detector in the manner of CAD OSE (sequences of
value bands) once measured: on NAB only a band's first visit counted, and only bands
outside the learnt range stayed quiet enough for live use (see benchmarks.md).

The same function also merges this opinion into the deviation kernel's score and holds
every alarm of either back for ``hold`` points. State: five scalars; O(1) per point.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# scalar state layout
# E_SIDES: 1 above, 2 below, 3 both; E_TFIRST: the first point's time
E_SEEN, E_LO, E_HI, E_TLAST, E_HOLD, E_SIDES, E_TFIRST = range(7)
N_EXTREME_SCALARS = 7


@njit(cache=True)
def step(
    ts: np.ndarray,
    xs: np.ndarray,
    learn: int,
    span_s: float,
    margin: float,
    weight: float,
    fire: float,
    hold: int,
    st: np.ndarray,
    score: np.ndarray,
    won: np.ndarray,
) -> None:
    """Merge this opinion into ``score`` (``won`` marks where it is the larger), then
    hold every alarm (``score >= fire``) back for ``hold`` points."""
    for i in range(xs.shape[0]):
        won[i] = False
        found = _beyond(ts[i], xs[i], learn, span_s, margin, st) * weight
        if found > score[i]:
            score[i], won[i] = found, True
        if st[E_HOLD] > 0:
            st[E_HOLD] -= 1
            score[i], won[i] = 0.0, False
        elif score[i] >= fire:
            st[E_HOLD] = hold


@njit(cache=True)
def _beyond(t: float, x: float, learn: int, span_s: float, margin: float, st: np.ndarray) -> float:
    """1.0 the first time the value leaves the learnt range (per side), else 0.0."""
    if not (math.isfinite(x) and math.isfinite(t)):
        return 0.0
    seen = int(st[E_SEEN])
    if seen > 0 and t < st[E_TLAST]:
        return 0.0  # out of order, as the deviation kernel does
    st[E_TLAST] = t
    st[E_SEEN] = seen + 1
    if seen == 0:
        st[E_TFIRST] = t
    if seen < learn or t - st[E_TFIRST] < span_s:
        st[E_LO] = x if seen == 0 else min(st[E_LO], x)
        st[E_HI] = x if seen == 0 else max(st[E_HI], x)
        return 0.0
    span = max(st[E_HI] - st[E_LO], 1e-9)
    sides = int(st[E_SIDES])
    if x > st[E_HI] + margin * span and not sides & 1:
        st[E_SIDES] = sides | 1
        return 1.0
    if x < st[E_LO] - margin * span and not sides & 2:
        st[E_SIDES] = sides | 2
        return 1.0
    return 0.0
