"""The streaming metric detector and our NAB scorer, on small series made here."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from baton.cli import app
from baton.detect import nab
from baton.detect.metrics import DetectorConfig, SeriesState, score_series

STEP = 300.0


def seasonal(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ts = 1.4e9 + STEP * np.arange(n)
    day = np.sin(2 * np.pi * (ts % 86400) / 86400)
    return ts, 50 + 20 * day + rng.normal(0, 1, n)


def test_a_spike_is_the_highest_score_and_explained() -> None:
    ts, xs = seasonal(3000)
    xs[2500] += 25
    scored = score_series(ts, xs)
    assert int(np.argmax(scored.score)) == 2500
    assert scored.score[2500] > 0.5
    finding = scored.finding(2500)
    assert finding.low < xs[2500 - 1] < finding.high or finding.high < xs[2500]
    assert xs[2500] > finding.high
    assert finding.component in {"deviation", "rare value", "level shift"}
    assert "expected" in finding.explain()


def test_learning_period_scores_nothing_and_alarms_do_not_repeat() -> None:
    ts, xs = seasonal(3000, seed=1)
    xs[200:] += 40  # a lasting level shift right after the learning period
    scored = score_series(ts, xs)
    config = DetectorConfig()
    assert not scored.score[: config.learn].any()
    fired = np.flatnonzero(scored.score >= config.threshold)
    assert fired.size >= 1 and 200 <= fired[0] <= 205
    assert (np.diff(fired) > config.quiet_points).all()


def test_streaming_in_pieces_equals_one_batch_and_state_is_bounded() -> None:
    ts, xs = seasonal(4000, seed=2)
    whole = score_series(ts, xs).score
    state = SeriesState()
    size = state.daily.nbytes + state.weekly.nbytes + state.hist.nbytes + state.scalars.nbytes
    parts = [state.update(ts[i : i + 1], xs[i : i + 1]).score for i in range(len(xs))]
    assert np.allclose(np.concatenate(parts), whole)
    assert state.daily.nbytes + state.weekly.nbytes + state.hist.nbytes + state.scalars.nbytes == (
        size
    )


def test_gaps_nan_and_late_points_are_skipped_not_fatal() -> None:
    ts, xs = seasonal(1000, seed=3)
    xs[400] = np.nan
    xs[401] = np.inf
    ts[600] = ts[599] - 10  # late point
    scored = score_series(ts, xs)
    assert np.isfinite(scored.score).all()
    assert scored.score[400] == scored.score[401] == scored.score[600] == 0.0
    assert ((scored.score >= 0) & (scored.score <= 1)).all()


def corpus(tmp_path: Path) -> Path:
    """A two-file corpus in NAB's layout: one window each."""
    windows = {}
    for name, at in (("cat/a.csv", 1500), ("cat/b.csv", 1700)):
        ts, xs = seasonal(2000, seed=len(windows))
        xs[at] += 30
        path = tmp_path / "data" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        stamps = np.datetime_as_string(ts.astype("M8[s]")).tolist()
        rows = [f"{s.replace('T', ' ')},{v:.4f}" for s, v in zip(stamps, xs, strict=True)]
        path.write_text("timestamp,value\n" + "\n".join(rows) + "\n")
        lo, hi = stamps[at - 50].replace("T", " "), stamps[at + 50].replace("T", " ")
        windows[name] = [[f"{lo}.000000", f"{hi}.000000"]]
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "combined_windows.json").write_text(json.dumps(windows))
    return tmp_path


def test_nab_scoring_null_perfect_early_late_and_false_alarms(tmp_path: Path) -> None:
    series = nab.load_corpus(corpus(tmp_path))
    assert [s.windows for s in series] == [[(1450, 1550)], [(1650, 1750)]]

    def detections(at: dict[str, list[int]]) -> dict[str, np.ndarray]:
        out = {}
        for s in series:
            a = np.zeros(len(s.values))
            a[at.get(s.name, [])] = 1.0
            out[s.name] = a
        return out

    null = nab.score(series, {s.name: np.full(len(s.values), 0.5) for s in series})
    assert {p.normalized for p in null.values()} == {0.0}
    perfect = nab.score(series, detections({"cat/a.csv": [1450], "cat/b.csv": [1650]}))
    assert {p.normalized for p in perfect.values()} == {100.0}
    late = nab.score(series, detections({"cat/a.csv": [1540], "cat/b.csv": [1740]}))
    assert 0 < late["standard"].normalized < 100
    noisy = detections({"cat/a.csv": [1450, 1000], "cat/b.csv": [1650]})
    scored = nab.score(series, noisy)
    assert scored["standard"].false_positives == 1
    assert scored["reward_low_FP_rate"].raw < scored["standard"].raw < 2.0
    # an alarm in the probationary period (first 15 %) is not scored at all
    early = nab.score(series, detections({"cat/a.csv": [1450, 10], "cat/b.csv": [1650]}))
    assert early["standard"].normalized == 100.0


def test_cli_scores_a_file_writes_nab_results_and_benches(tmp_path: Path) -> None:
    data = corpus(tmp_path / "nab")
    runner = CliRunner()
    out = tmp_path / "out.csv"
    result = runner.invoke(
        app, ["detect", "anomalies", str(data / "data/cat/a.csv"), "--output", str(out)]
    )
    assert result.exit_code == 0, result.output
    lines = out.read_text().splitlines()
    assert lines[0] == "timestamp,value,anomaly_score,is_anomaly,explanation"
    assert len(lines) == 2001
    assert any(line.split(",")[3] == "1" for line in lines[1400:1600])

    result = runner.invoke(app, ["detect", "nab", "--data", str(data), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    written = (tmp_path / "baton/cat/baton_b.csv").read_text().splitlines()
    assert written[0] == "timestamp,value,anomaly_score,label" and len(written) == 2001

    result = runner.invoke(app, ["bench", "nab", "--data", str(data), "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["series"] == 2 and figures["standard"] > 50


def test_bad_input_is_refused_clearly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,value\n2020-01-01 00:00:00,1\n2020-01-01 00:05:00,oops\n")
    runner = CliRunner()
    result = runner.invoke(app, ["detect", "anomalies", str(bad), "-o", str(tmp_path / "o")])
    assert result.exit_code == 2 and "bad.csv:3" in result.output
    monkeypatch.delenv("BATON_DATASETS", raising=False)
    result = runner.invoke(app, ["bench", "nab", "--json"])
    assert result.exit_code == 2 and "BATON_DATASETS" in result.output


def naive_nab(series: list[nab.Series], scores: dict[str, np.ndarray], w: dict) -> float:
    """NAB's rules point by point, every threshold tried: slow and plain, to check score()."""
    best = -w["fn"] * sum(len(s.windows) for s in series)
    max_tp = 2 / (1 + np.exp(-5.0)) - 1
    sig = lambda x: -1.0 if x > 3 else 2 / (1 + np.exp(5 * x)) - 1  # noqa: E731
    for threshold in sorted({float(v) for s in series for v in scores[s.name]}):
        total = 0.0
        for s in series:
            start = nab.probation(len(s.values))
            hits = [i for i in range(start, len(s.values)) if scores[s.name][i] >= threshold]
            for lo, hi in s.windows:
                inside = [i for i in hits if lo <= i <= hi]
                width = hi - lo + 1
                total += (
                    sig(-(hi - inside[0] + 1) / width) / max_tp * w["tp"] if inside else -w["fn"]
                )
            for i in hits:
                if any(lo <= i <= hi for lo, hi in s.windows):
                    continue
                before = [(lo, hi) for lo, hi in s.windows if hi < i]
                if not before:
                    total += -1.0 * w["fp"]
                else:
                    lo, hi = before[-1]
                    total += sig(abs(hi - i) / (hi - lo)) * w["fp"]
        best = max(best, total)
    return best


def test_vectorised_sweep_matches_the_rules_point_by_point(tmp_path: Path) -> None:
    series = nab.load_corpus(corpus(tmp_path))
    rng = np.random.default_rng(7)
    scores = {}
    for s in series:
        a = np.zeros(len(s.values))
        a[rng.choice(len(a), 25, replace=False)] = rng.random(25).round(2)
        a[s.windows[0][0] + 30] = 0.9
        scores[s.name] = a
    for name, profile in nab.PROFILES.items():
        assert nab.score(series, scores)[name].raw == pytest.approx(
            naive_nab(series, scores, profile), abs=1e-3
        )
