"""Capacity forecasts: where a series is heading, with an interval, and when it crosses a line.

Raw points are averaged into hourly buckets first (capacity moves over hours and days, and
hourly data keeps a daily season at 24 steps, which exponential smoothing handles well).
The model is statsforecast's AutoETS with a daily season when at least three days are
there, chosen per series by information criterion; its prediction interval gives the
interval on the crossing time: the crossing is no earlier than the upper bound's and no
later than the lower bound's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

HOUR = 3600.0
SEASON = 24  # hours in a day


@dataclass
class Forecast:
    start: float  # epoch seconds of the first forecast hour
    step: float
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray
    level: int


@dataclass
class Crossing:
    """When the series is expected to pass ``threshold`` (seconds from the last point)."""

    threshold: float
    expected: float | None  # None: not within the horizon
    earliest: float | None
    latest: float | None  # None: maybe never within the horizon
    level: int

    def describe(self, unit: float = 86400.0, name: str = "days") -> str:
        if self.earliest is None:
            return f"no crossing of {self.threshold:g} expected within the horizon"
        low = f"{self.earliest / unit:.1f}"
        if self.expected is None:
            return (
                f"may cross {self.threshold:g} from {low} {name} on ({self.level} % interval);"
                " the forecast itself stays short of it within the horizon"
            )
        high = "beyond the horizon" if self.latest is None else f"{self.latest / unit:.1f}"
        mid = f"{self.expected / unit:.1f}"
        return f"crosses {self.threshold:g} in {mid} {name} ({low}-{high}, {self.level} %)"


def hourly(timestamps: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hourly means; an empty hour takes the previous hour's mean (a gap, not a zero)."""
    keep = np.isfinite(timestamps) & np.isfinite(values)
    ts, xs = timestamps[keep], values[keep]
    if len(ts) == 0:
        raise ValueError("no finite points to forecast from")
    bucket = np.floor(ts / HOUR).astype(np.int64)
    first = int(bucket.min())
    idx = bucket - first
    sums = np.bincount(idx, weights=xs)
    counts = np.bincount(idx)
    out = np.empty(len(sums))
    last = float(xs[0])
    for i, (total, n) in enumerate(zip(sums, counts, strict=True)):
        last = total / n if n else last
        out[i] = last
    return first * HOUR + HOUR * np.arange(len(out)), out


def fit_forecast(series: np.ndarray, horizon: int, level: int = 90) -> tuple[np.ndarray, ...]:
    """Mean, low and high for ``horizon`` steps after an evenly spaced ``series``."""
    from statsforecast.models import AutoETS

    season = SEASON if len(series) >= 3 * SEASON else 1
    model = AutoETS(season_length=season)
    out = model.forecast(y=np.asarray(series, dtype=np.float64), h=horizon, level=[level])
    return out["mean"], out[f"lo-{level}"], out[f"hi-{level}"]


def forecast(
    timestamps: np.ndarray, values: np.ndarray, horizon_hours: int, level: int = 90
) -> Forecast:
    hours, series = hourly(timestamps, values)
    if len(series) < 2 * SEASON:
        raise ValueError(f"need at least {2 * SEASON} hours of data to forecast")
    mean, low, high = fit_forecast(series, horizon_hours, level)
    return Forecast(float(hours[-1] + HOUR), HOUR, mean, low, high, level)


def crossing(fc: Forecast, threshold: float, last_time: float, rising: bool = True) -> Crossing:
    def first(path: np.ndarray) -> float | None:
        hit = np.flatnonzero(path >= threshold if rising else path <= threshold)
        return None if hit.size == 0 else fc.start + fc.step * int(hit[0]) - last_time

    optimistic, pessimistic = (fc.high, fc.low) if rising else (fc.low, fc.high)
    return Crossing(threshold, first(fc.mean), first(optimistic), first(pessimistic), fc.level)


@dataclass
class Backtest:
    mase_model: float
    mase_seasonal_naive: float
    coverage: float
    forecasts: int


def backtest(
    series: np.ndarray, horizon: int = SEASON, origins: int = 5, level: int = 90
) -> Backtest | None:
    """Rolling origin over the last half of an hourly series; None if it is too short."""
    n = len(series)
    if n < 4 * SEASON + horizon:
        return None
    first = max(3 * SEASON, n // 2)
    cuts = np.linspace(first, n - horizon, origins).astype(int)
    err_model, err_naive, covered, total = [], [], 0, 0
    for cut in np.unique(cuts):
        train, test = series[:cut], series[cut : cut + horizon]
        scale = float(np.mean(np.abs(train[SEASON:] - train[:-SEASON])))
        if not math.isfinite(scale) or scale == 0.0:
            continue
        mean, low, high = fit_forecast(train, horizon, level)
        naive = np.resize(train[-SEASON:], horizon)
        err_model.append(float(np.mean(np.abs(test - mean))) / scale)
        err_naive.append(float(np.mean(np.abs(test - naive))) / scale)
        covered += int(((test >= low) & (test <= high)).sum())
        total += len(test)
    if not total:
        return None
    return Backtest(
        float(np.mean(err_model)), float(np.mean(err_naive)), covered / total, len(err_model)
    )
