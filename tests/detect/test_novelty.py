"""Value-band novelty: the first visit to a band never seen is news, once."""

from __future__ import annotations

import numpy as np

from baton.detect import kernel as k
from baton.detect.metrics import DetectorConfig, SeriesState

STEP = 300.0
ONLY_NOVELTY = DetectorConfig(rare_weight=0.0, shift_weight=0.0, score_scale=1e9)


def test_a_value_in_a_band_never_visited_is_novel_once() -> None:
    state = SeriesState(ONLY_NOVELTY)
    n = 2000
    two_levels = np.where(np.arange(n) % 50 < 25, 10.0, 90.0)  # a square wave
    quiet = state.update(np.arange(n) * STEP, two_levels)
    assert not (quiet.component == k.C_NOVEL).any()  # only the two familiar bands
    # 50 lies inside the range the square wave spans, in a band it never visited
    later = np.r_[[50.0], np.full(100, 10.0), [50.0], np.full(10, 90.0)]
    scored = state.update((n + np.arange(len(later))) * STEP, later)
    hits = np.flatnonzero(scored.component == k.C_NOVEL)
    assert list(hits) == [0]  # the second visit is not news
    assert scored.score[0] == ONLY_NOVELTY.novelty_weight
    assert scored.finding(0).component == "new value band"


def test_nothing_is_novel_in_the_learning_period_and_state_is_fixed() -> None:
    state = SeriesState(ONLY_NOVELTY)
    rising = np.arange(900.0)  # every value new, but all inside the learning period
    assert not (state.update(np.arange(900) * STEP, rising).component == k.C_NOVEL).any()
    off = SeriesState(DetectorConfig(novelty_weight=0.0))
    for s in (state, off):
        before = sum(a.nbytes for a in s.arrays().values())
        values = np.r_[np.zeros(1000), np.arange(5000.0)]  # new bands all along
        scored = s.update(np.arange(6000) * STEP, values)
        assert sum(a.nbytes for a in s.arrays().values()) == before < 40_000
        assert (scored.component == k.C_NOVEL).any() == (s is state)  # weight 0: never
