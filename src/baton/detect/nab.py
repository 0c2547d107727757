"""The Numenta Anomaly Benchmark: reading its corpus and scoring detections its way.

Our own implementation of the rules NAB publishes (Lavin & Ahmad 2015): each labelled
window rewards only its best (earliest) detection with a scaled sigmoid of the position in
the window, an undetected window costs ``fn_weight``, a detection outside every window
costs ``fp_weight`` times a sigmoid of its distance past the previous window, the first
15 % of each file (at most 750 rows) is not scored, one threshold is chosen per profile
for the whole corpus, and the total is normalised so that the null detector scores 0 and
a perfect one 100.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

PROFILES: dict[str, dict[str, float]] = {
    "standard": {"tp": 1.0, "fp": 0.11, "fn": 1.0},
    "reward_low_FP_rate": {"tp": 1.0, "fp": 0.22, "fn": 1.0},
    "reward_low_FN_rate": {"tp": 1.0, "fp": 0.11, "fn": 2.0},
}
PROBATION_PERCENT = 0.15


@dataclass
class Series:
    """One NAB data file with its labelled windows (as row-index ranges, inclusive)."""

    name: str  # "<category>/<file>.csv"
    timestamps: np.ndarray  # float seconds since the epoch
    values: np.ndarray
    windows: list[tuple[int, int]]

    @property
    def category(self) -> str:
        return self.name.split("/", 1)[0]


def read_csv_series(path: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Read ``timestamp,value`` rows; returns epoch seconds, values and the raw stamps."""
    stamps: list[str] = []
    values: list[float] = []
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None or [h.strip().lower() for h in header[:2]] != ["timestamp", "value"]:
            raise ValueError(f"{path}: expected a 'timestamp,value' header")
        for lineno, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) < 2:
                raise ValueError(f"{path}:{lineno}: expected timestamp,value")
            stamps.append(row[0].strip())
            try:
                values.append(float(row[1]))
            except ValueError:
                raise ValueError(f"{path}:{lineno}: value {row[1]!r} is not a number") from None
    seconds = parse_timestamps(stamps, str(path))
    return seconds, np.asarray(values, dtype=np.float64), stamps


def parse_timestamps(stamps: list[str], where: str = "input") -> np.ndarray:
    """ISO-like stamps (``YYYY-MM-DD HH:MM:SS``, ``T`` allowed) or epoch seconds."""
    if not stamps:
        return np.empty(0, dtype=np.float64)
    try:
        return np.asarray([float(s) for s in stamps], dtype=np.float64)
    except ValueError:
        pass
    try:
        parsed = np.asarray([s.replace(" ", "T").rstrip("Z") for s in stamps], dtype="M8[us]")
    except ValueError as exc:
        raise ValueError(f"{where}: unreadable timestamp ({exc})") from None
    return parsed.astype(np.int64) / 1e6


def load_corpus(data: Path) -> list[Series]:
    """All series under ``data/data`` with windows from ``labels/combined_windows.json``."""
    labels = data / "labels" / "combined_windows.json"
    if not labels.is_file():
        raise ValueError(f"{data}: no labels/combined_windows.json (is this a NAB corpus?)")
    windows = json.loads(labels.read_text())
    corpus: list[Series] = []
    for name in sorted(windows):
        seconds, values, _ = read_csv_series(data / "data" / name)
        spans = []
        for start, end in windows[name]:
            lo, hi = parse_timestamps([start, end])
            first = int(np.searchsorted(seconds, lo, side="left"))
            last = int(np.searchsorted(seconds, hi, side="right")) - 1
            if last >= first:
                spans.append((first, last))
        corpus.append(Series(name, seconds, values, spans))
    return corpus


def probation(length: int) -> int:
    return min(math.floor(PROBATION_PERCENT * length), math.floor(PROBATION_PERCENT * 5000))


def _scaled_sigmoid(x: np.ndarray) -> np.ndarray:
    out = 2.0 / (1.0 + np.exp(np.clip(5.0 * x, -50, 50))) - 1.0
    return np.where(x > 3.0, -1.0, out)


@dataclass
class _Points:
    """The scored (post-probation) rows of one file, ready for the threshold sweep."""

    scores: np.ndarray
    window: np.ndarray  # global window id, or -1 outside every window
    tp_unweighted: np.ndarray  # sigmoid / max, used where window >= 0
    fp_unweighted: np.ndarray  # sigmoid past the previous window (or -1), where window < 0


def _points(length: int, windows: list[tuple[int, int]], scores: np.ndarray, base: int) -> _Points:
    idx = np.arange(length)
    window = np.full(length, -1, dtype=np.int64)
    tp = np.zeros(length)
    fp = np.full(length, -1.0)
    max_tp = float(_scaled_sigmoid(np.array([-1.0]))[0])
    for k, (lo, hi) in enumerate(windows):
        width = hi - lo + 1
        window[lo : hi + 1] = base + k
        tp[lo : hi + 1] = _scaled_sigmoid(-(hi - idx[lo : hi + 1] + 1) / width) / max_tp
        nxt = windows[k + 1][0] if k + 1 < len(windows) else length
        if width > 1 and hi + 1 < nxt:
            past = np.abs(hi - idx[hi + 1 : nxt]) / (width - 1)
            fp[hi + 1 : nxt] = _scaled_sigmoid(past)
        elif hi + 1 < nxt:
            fp[hi + 1 : nxt] = _scaled_sigmoid(np.full(nxt - hi - 1, 4.0))
    keep = slice(probation(length), length)
    return _Points(scores[keep], window[keep], tp[keep], fp[keep])


@dataclass
class ProfileScore:
    normalized: float
    raw: float
    threshold: float
    true_positives: int
    false_positives: int
    false_negatives: int


def score(corpus: list[Series], scores: dict[str, np.ndarray]) -> dict[str, ProfileScore]:
    """Score detector outputs (one array per series, aligned with its rows) per profile."""
    parts: list[_Points] = []
    n_windows = 0
    for series in corpus:
        s = np.clip(np.nan_to_num(scores[series.name], nan=0.0), 0.0, 1.0)
        parts.append(_points(len(series.values), series.windows, s, n_windows))
        n_windows += len(series.windows)
    s = np.concatenate([p.scores for p in parts])
    window = np.concatenate([p.window for p in parts])
    tp_u = np.concatenate([p.tp_unweighted for p in parts])
    fp_u = np.concatenate([p.fp_unweighted for p in parts])
    order = np.argsort(-s, kind="stable")
    s, window, tp_u, fp_u = s[order], window[order], tp_u[order], fp_u[order]
    # the sweep is evaluated after the last point of each run of equal scores
    ends = np.flatnonzero(np.r_[s[1:] != s[:-1], True])
    in_window = window >= 0
    results: dict[str, ProfileScore] = {}
    for name, w in PROFILES.items():
        fp_gain = np.where(in_window, 0.0, fp_u * w["fp"])
        tp_gain = np.zeros(len(s))
        if in_window.any():
            pos = np.flatnonzero(in_window)
            ids = window[pos]
            by_window = np.lexsort((pos, ids))  # group a window's rows, keep sweep order
            pos, ids = pos[by_window], ids[by_window]
            val = tp_u[pos] * w["tp"]
            starts = np.r_[True, ids[1:] != ids[:-1]]
            group = np.cumsum(starts) - 1
            # a window is worth its best detection so far in sweep order
            running = _grouped_running_max(val, group)
            prev = np.where(starts, -w["fn"], np.r_[0.0, running[:-1]])
            tp_gain[pos] = running - prev
        total = -w["fn"] * n_windows + np.cumsum(tp_gain + fp_gain)
        candidates = np.r_[-w["fn"] * n_windows, total[ends]]
        best = int(np.argmax(candidates))
        raw = float(candidates[best])
        threshold = 1.0 if best == 0 else float(s[ends[best - 1]])
        detected = s >= threshold if best else np.zeros(len(s), dtype=bool)
        hit = np.unique(window[detected & in_window])
        null = -w["fn"] * n_windows
        perfect = w["tp"] * n_windows
        results[name] = ProfileScore(
            normalized=round(100.0 * (raw - null) / (perfect - null), 2),
            raw=round(raw, 3),
            threshold=threshold,
            true_positives=len(hit),
            false_positives=int((detected & ~in_window).sum()),
            false_negatives=n_windows - len(hit),
        )
    return results


def _grouped_running_max(values: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Running maximum restarted at each group (groups contiguous), in O(n log n)."""
    shift = (np.abs(values).max() + 1.0) * 4.0
    lifted = values + group * shift  # later groups always exceed earlier ones
    return np.maximum.accumulate(lifted) - group * shift


def write_results(
    out: Path, detector: str, series: Series, stamps: list[str], scores: np.ndarray
) -> Path:
    """One NAB-format result file: ``RESULTS/<detector>/<category>/<detector>_<file>``."""
    category, file = series.name.split("/", 1)
    target = out / detector / category / f"{detector}_{file}"
    target.parent.mkdir(parents=True, exist_ok=True)
    labels = np.zeros(len(series.values), dtype=int)
    for lo, hi in series.windows:
        labels[lo : hi + 1] = 1
    with target.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["timestamp", "value", "anomaly_score", "label"])
        for row in zip(stamps, series.values, scores, labels, strict=True):
            writer.writerow([row[0], _num(row[1]), f"{row[2]:.6f}", row[3]])
    return target


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def iter_files(data: Path) -> Iterator[Path]:
    yield from sorted((data / "data").glob("*/*.csv"))
