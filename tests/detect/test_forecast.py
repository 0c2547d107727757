"""Capacity forecasts on a series made here: a disk filling with a daily rhythm."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from baton.cli import app
from baton.detect import events
from baton.detect.forecast import backtest, crossing, forecast, hourly

DAY = 86400.0


def filling_disk(days: float = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Percent used: +2 per day, a daily swing of 3, noise; 5-minute points."""
    rng = np.random.default_rng(seed)
    ts = 1.7e9 + 300.0 * np.arange(int(days * 288))
    day = (ts - ts[0]) / DAY
    return ts, 50 + 2 * day + 3 * np.sin(2 * np.pi * day) + rng.normal(0, 0.3, len(ts))


def test_crossing_time_and_interval_bracket_the_truth() -> None:
    ts, xs = filling_disk()
    fc = forecast(ts, xs, horizon_hours=24 * 14)
    cross = crossing(fc, 80.0, float(ts[-1]))
    # the trend reaches 80 at day 15, i.e. ~5 days after the last point (the swing adds ±1)
    assert cross.expected is not None and 3.5 * DAY < cross.expected < 6.5 * DAY
    assert cross.earliest is not None and cross.earliest <= cross.expected
    assert cross.latest is None or cross.latest >= cross.expected
    assert "crosses 80" in cross.describe()
    never = crossing(fc, 500.0, float(ts[-1]))
    assert never.expected is None and "no crossing" in never.describe()


def test_forecast_event_only_within_the_horizon() -> None:
    ts, xs = filling_disk()
    cross = crossing(forecast(ts, xs, 24 * 14), 80.0, float(ts[-1]))
    at = datetime(2026, 1, 1, tzinfo=UTC)
    labels = {"service": "db", "instance": "db-1"}
    event = events.capacity_forecast("disk_used_pct", labels, at, cross, horizon_s=7 * DAY)
    assert event is not None and "db-1" in event.annotations["summary"]
    assert events.capacity_forecast("disk_used_pct", labels, at, cross, horizon_s=DAY) is None


def test_hourly_fills_gaps_and_backtest_beats_naive_on_a_trend() -> None:
    ts, xs = filling_disk(days=12)
    keep = np.ones(len(ts), dtype=bool)
    keep[1000:1100] = False  # an 8-hour gap
    hours, series = hourly(ts[keep], xs[keep])
    assert np.all(np.diff(hours) == 3600) and np.isfinite(series).all()
    result = backtest(series)
    assert result is not None and result.mase_model < result.mase_seasonal_naive
    assert 0.5 <= result.coverage <= 1.0


def test_cli_forecast(tmp_path: Path) -> None:
    ts, xs = filling_disk()
    path = tmp_path / "disk.csv"
    path.write_text("timestamp,value\n" + "\n".join(f"{t:.0f},{x:.3f}" for t, x in zip(ts, xs)))
    result = CliRunner().invoke(app, ["forecast", str(path), "--threshold", "80", "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert 3.5 * DAY < figures["expected_s"] < 6.5 * DAY
    short = tmp_path / "short.csv"
    short.write_text("timestamp,value\n1700000000,1\n1700000300,2\n")
    result = CliRunner().invoke(app, ["forecast", str(short), "--threshold", "80"])
    assert result.exit_code == 2 and "hours of data" in result.output
