"""Streaming anomaly detection for metric series: one configuration for every series.

Each point is compared with the best of four predictions (the last value, a moving level,
the same time of day and the same time of week), chosen by whichever has erred least
lately; its deviation in units of that model's recent error, the rarity of its value
among the values seen, and a shift of the short-term mean away from the long-term one
give its surprise. The surprise is judged against the series' own usual surprise, so one
threshold fits quiet and noisy series alike, and only a rise is reported: an alarm that
has been raised stays quiet until the series has settled. Nothing is scored during the
learning period (``DetectorConfig.learn`` points).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from baton.detect import extremes as ex
from baton.detect import kernel as k


@dataclass(frozen=True)
class DetectorConfig:
    """The single configuration. Rates are per point; ``learn`` is the learning period."""

    learn: int = 150
    level_rate: float = 0.03
    fast_rate: float = 0.3
    slow_rate: float = 0.002
    error_rate: float = 0.005
    slot_rate: float = 0.3
    bins: int = 40
    histogram_decay: float = 0.9995
    rare_weight: float = 1.2
    shift_weight: float = 1.0
    surprise_rate: float = 0.0005
    short_rate: float = 0.2
    peak_decay: float = 0.99
    score_scale: float = 4.0
    slot_seconds: float = 900.0
    fire_level: float = 0.6
    quiet_points: int = 100
    threshold: float = 0.5  # is_anomaly in the CLI output; NAB chooses its own
    # the first excursion beyond the learnt range (extremes.py)
    range_learn: int = 1000
    range_span_s: float = 86_400.0  # and over at least a day (a whole daily cycle)
    range_margin: float = 0.1  # beyond the range by this share of it
    range_weight: float = 0.7  # its score; 0 turns it off
    hold_points: int = 50  # after an alarm of either opinion, the next ones are held back

    def vector(self) -> np.ndarray:
        p = np.zeros(k.N_PARAMS)
        p[k.P_LEARN] = self.learn
        p[k.P_A_LEVEL] = self.level_rate
        p[k.P_A_FAST] = self.fast_rate
        p[k.P_A_SLOW] = self.slow_rate
        p[k.P_A_ERR] = self.error_rate
        p[k.P_A_SLOT] = self.slot_rate
        p[k.P_BINS] = self.bins
        p[k.P_A_HIST] = self.histogram_decay
        p[k.P_W_RARE] = self.rare_weight
        p[k.P_W_SHIFT] = self.shift_weight
        p[k.P_A_SURPRISE] = self.surprise_rate
        p[k.P_A_SHORT] = self.short_rate
        p[k.P_PEAK_DECAY] = self.peak_decay
        p[k.P_SCALE] = self.score_scale
        p[k.P_SLOT_SECONDS] = self.slot_seconds
        p[k.P_FIRE] = self.fire_level
        p[k.P_QUIET] = self.quiet_points
        return p

    @classmethod
    def with_overrides(cls, **values: Any) -> DetectorConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown detector settings: {', '.join(sorted(unknown))}")
        return cls(**values)


@dataclass
class Finding:
    """Why a point scored as it did."""

    score: float
    expected: float
    low: float
    high: float
    deviation: float
    component: str
    model: str

    def explain(self) -> str:
        return (
            f"score {self.score:.2f}: {self.component} "
            f"(expected {self.low:.4g}..{self.high:.4g} from the {self.model}, "
            f"deviation {self.deviation:.1f})"
        )


@dataclass
class Scored:
    """Per-point outputs of one batch (arrays aligned with the input)."""

    score: np.ndarray
    expected: np.ndarray
    scale: np.ndarray
    model: np.ndarray
    component: np.ndarray
    deviation: np.ndarray

    def finding(self, i: int) -> Finding:
        model = int(self.model[i])
        half = 3.0 * float(self.scale[i])
        return Finding(
            score=float(self.score[i]),
            expected=float(self.expected[i]),
            low=float(self.expected[i]) - half,
            high=float(self.expected[i]) + half,
            deviation=float(self.deviation[i]),
            component=k.COMPONENT_NAMES[int(self.component[i])],
            model=k.MODEL_NAMES[model] if model >= 0 else "learning period",
        )


@dataclass
class SeriesState:
    """Everything one series remembers: fixed size, whatever its length."""

    config: DetectorConfig = field(default_factory=DetectorConfig)

    def __post_init__(self) -> None:
        day = int(k.DAY // self.config.slot_seconds)
        self.params = self.config.vector()
        self.scalars = np.zeros(k.N_SCALARS)
        self.scalars[k.S_HINC] = 1.0
        self.daily = np.zeros((2, day))
        self.weekly = np.zeros((2, 7 * day))
        self.hist = np.zeros(self.config.bins)
        self.extremes = np.zeros(ex.N_EXTREME_SCALARS)

    def arrays(self) -> dict[str, np.ndarray]:
        """The state to keep across a restart (the parameters come from the config)."""
        return {
            "scalars": self.scalars,
            "daily": self.daily,
            "weekly": self.weekly,
            "hist": self.hist,
            "extremes": self.extremes,
        }

    @classmethod
    def from_arrays(cls, config: DetectorConfig, arrays: dict[str, np.ndarray]) -> SeriesState:
        """A state saved by ``arrays`` under the same configuration."""
        state = cls(config)
        for name, mine in state.arrays().items():
            saved = np.asarray(arrays[name], dtype=mine.dtype)
            if saved.shape != mine.shape:
                raise ValueError(f"saved {name} has shape {saved.shape}, expected {mine.shape}")
            mine[...] = saved
        return state

    @property
    def points(self) -> int:
        return int(self.scalars[k.S_N])

    @property
    def learning(self) -> bool:
        return self.points < self.config.learn

    def update(self, timestamps: np.ndarray, values: np.ndarray) -> Scored:
        """Score a batch. A point stamped before its predecessor is scored 0 and not learned."""
        ts = np.ascontiguousarray(timestamps, dtype=np.float64)
        xs = np.ascontiguousarray(values, dtype=np.float64)
        if ts.shape != xs.shape or ts.ndim != 1:
            raise ValueError("timestamps and values must be 1-d arrays of the same length")
        n = len(xs)
        out = Scored(
            np.empty(n),
            np.empty(n),
            np.empty(n),
            np.empty(n, dtype=np.int64),
            np.empty(n, dtype=np.int64),
            np.empty(n),
        )
        k.step(
            ts,
            xs,
            self.params,
            self.scalars,
            self.daily,
            self.weekly,
            self.hist,
            out.score,
            out.expected,
            out.scale,
            out.model,
            out.component,
            out.deviation,
        )
        cfg = self.config
        won = np.empty(n, dtype=np.bool_)
        ex.step(
            ts,
            xs,
            cfg.range_learn,
            cfg.range_span_s,
            cfg.range_margin,
            cfg.range_weight,
            cfg.fire_level,
            cfg.hold_points,
            self.extremes,
            out.score,
            won,
        )
        out.component[won] = k.C_BEYOND
        if won.any():  # how far past the learnt range, in widths of that range
            lo, hi = self.extremes[ex.E_LO], self.extremes[ex.E_HI]
            past = np.maximum(xs[won] - hi, lo - xs[won])
            out.deviation[won] = past / max(hi - lo, 1e-9)
        return out


def score_series(
    timestamps: np.ndarray, values: np.ndarray, config: DetectorConfig | None = None
) -> Scored:
    """Score a whole series as if it had been streamed point by point."""
    return SeriesState(config or DetectorConfig()).update(timestamps, values)
