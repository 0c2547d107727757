"""The second opinion: the first excursion beyond the learnt range is news, once a side."""

from __future__ import annotations

import numpy as np

from baton.detect import kernel as k
from baton.detect.metrics import DetectorConfig, SeriesState

STEP = 300.0
ONLY_RANGE = DetectorConfig(rare_weight=0.0, shift_weight=0.0, score_scale=1e9)


def test_leaving_the_learnt_range_is_news_once_per_side() -> None:
    state = SeriesState(ONLY_RANGE)
    n = 2000
    wave = 50 + 40 * np.sin(2 * np.pi * (np.arange(n) % 96) / 96)  # 10..90
    assert not (state.update(np.arange(n) * STEP, wave).component == k.C_BEYOND).any()
    # 95 is beyond 90, but within the 10 % margin; 120 is well beyond; then below
    later = np.r_[[95.0], np.full(60, 50.0), [120.0], np.full(60, 50.0), [130.0], [-20.0]]
    scored = state.update((n + np.arange(len(later))) * STEP, later)
    hits = list(np.flatnonzero(scored.component == k.C_BEYOND))
    assert hits == [61, 123]  # the second excursion above is not news; below is
    assert scored.score[61] == ONLY_RANGE.range_weight
    assert scored.finding(61).component == "beyond the learnt range"


def test_an_alarm_holds_the_next_ones_back_and_the_opinion_can_be_off() -> None:
    state = SeriesState(ONLY_RANGE)
    state.update(np.arange(1000) * STEP, np.linspace(0, 1, 1000))
    scored = state.update((1000 + np.arange(3)) * STEP, np.array([5.0, 50.0, -50.0]))
    assert list(scored.score) == [0.7, 0.0, 0.0]  # "below" came inside the 50-point hold
    off = SeriesState(DetectorConfig(range_weight=0.0))
    off.update(np.arange(1000) * STEP, np.linspace(0, 1, 1000))
    out = off.update(np.array([1000 * STEP]), np.array([5.0]))
    assert out.component[0] != k.C_BEYOND
