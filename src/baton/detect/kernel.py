"""The per-point arithmetic of the metric detector, compiled with numba.

Everything a series needs lives in a few fixed-size arrays (``SeriesState``), so each
point costs O(1) work (the value histogram is renormalised once every few thousand
points) and a series never grows. The same function serves a batch of one point (the
streaming path) and a whole file (the bench), so both paths give the same scores.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# models whose prediction errors are tracked; the best recent one gives "expected"
M_LAST, M_LEVEL, M_DAILY, M_WEEKLY = 0, 1, 2, 3
N_MODELS = 4
MODEL_NAMES = ("last value", "level", "daily season", "weekly season")
C_NONE, C_DEVIATION, C_RARE, C_SHIFT, C_BEYOND = 0, 1, 2, 3, 4
COMPONENT_NAMES = ("none", "deviation", "rare value", "level shift", "beyond the learnt range")

# layout of the scalar state vector
(
    S_N,
    S_LAST,
    S_TLAST,
    S_DT,
    S_LEVEL,
    S_FAST,
    S_SLOW,
    S_SLOWDEV,
    S_LO,
    S_HI,
    S_WIDTH,
    S_HTOTAL,
    S_HINC,
    S_SMEAN,
    S_SVAR,
    S_SHORT,
    S_PEAK,
    S_QUIET,
    S_ERR,  # N_MODELS entries from here
) = range(19)
N_SCALARS = S_ERR + N_MODELS

# layout of the parameter vector (see DetectorConfig)
(
    P_LEARN,
    P_A_LEVEL,
    P_A_FAST,
    P_A_SLOW,
    P_A_ERR,
    P_A_SLOT,
    P_BINS,
    P_A_HIST,
    P_W_RARE,
    P_W_SHIFT,
    P_A_SURPRISE,
    P_A_SHORT,
    P_PEAK_DECAY,
    P_SCALE,
    P_SLOT_SECONDS,
    P_FIRE,
    P_QUIET,
) = range(17)
N_PARAMS = 17

DAY = 86400.0
WEEK = 7 * DAY


@njit(cache=True)
def _slot(t: float, period: float, width: float, n: int) -> int:
    k = math.floor((t % period) / width)
    return min(max(k, 0), n - 1)


@njit(cache=True)
def step(
    ts: np.ndarray,
    xs: np.ndarray,
    p: np.ndarray,
    st: np.ndarray,
    daily: np.ndarray,
    weekly: np.ndarray,
    hist: np.ndarray,
    out_score: np.ndarray,
    out_expected: np.ndarray,
    out_scale: np.ndarray,
    out_model: np.ndarray,
    out_component: np.ndarray,
    out_deviation: np.ndarray,
) -> None:
    learn = p[P_LEARN]
    bins = hist.shape[0]
    n_daily = daily.shape[1]
    n_weekly = weekly.shape[1]
    for i in range(xs.shape[0]):
        x = xs[i]
        t = ts[i]
        out_score[i] = 0.0
        out_expected[i] = x
        out_scale[i] = 0.0
        out_model[i] = -1
        out_component[i] = C_NONE
        out_deviation[i] = 0.0
        if not (math.isfinite(x) and math.isfinite(t)):
            continue  # a gap: nothing learned, nothing scored
        n = st[S_N]
        if n == 0.0:
            st[S_LAST] = x
            st[S_TLAST] = t
            st[S_DT] = 0.0
            st[S_LEVEL] = x
            st[S_FAST] = x
            st[S_SLOW] = x
            st[S_SLOWDEV] = 0.0
            st[S_LO] = x
            st[S_HI] = x
            st[S_N] = 1.0
            continue
        gap = t - st[S_TLAST]
        if gap < 0.0:
            continue  # out of order: a late point cannot be placed in the history
        if gap > 0.0 and (st[S_DT] == 0.0 or gap < st[S_DT]):
            st[S_DT] = gap  # the cadence: smallest spacing seen
        # the slot width is fixed once the learning period ends
        width = max(st[S_DT], p[P_SLOT_SECONDS]) if n < learn else st[S_WIDTH]
        seasonal = width > 0.0 and width * 4.0 <= DAY
        kd = _slot(t, DAY, width, n_daily) if seasonal else 0
        kw = _slot(t, WEEK, width, n_weekly) if seasonal else 0

        # --- predictions and their recent error scales
        preds = np.empty(N_MODELS)
        ready = np.zeros(N_MODELS, dtype=np.bool_)
        preds[M_LAST] = st[S_LAST]
        ready[M_LAST] = True
        preds[M_LEVEL] = st[S_LEVEL]
        ready[M_LEVEL] = True
        if seasonal and daily[1, kd] >= 2.0:
            preds[M_DAILY] = daily[0, kd]
            ready[M_DAILY] = True
        if seasonal and weekly[1, kw] >= 2.0:
            preds[M_WEEKLY] = weekly[0, kw]
            ready[M_WEEKLY] = True
        best = M_LAST
        for m in range(N_MODELS):
            if ready[m] and st[S_ERR + m] < st[S_ERR + best]:
                best = m
        floor = 1e-9 + 1e-4 * abs(st[S_SLOW]) + 0.02 * st[S_SLOWDEV]
        scale = st[S_ERR + best] + floor
        dev = abs(x - preds[best]) / scale
        # level shift: fast mean against the slow mean, in slow deviations
        shift = abs(st[S_FAST] - st[S_SLOW]) / (st[S_SLOWDEV] + floor)

        # --- rarity of the value's bin
        rare = 0.0
        if n >= learn and st[S_WIDTH] > 0.0:
            span = st[S_HI] - st[S_LO]
            bw = max(span, floor) / (bins - 8)
            b = math.floor((x - st[S_LO]) / bw) + 4
            b = min(max(b, 0), bins - 1)
            prob = (hist[b] + 0.5 * st[S_HINC]) / (st[S_HTOTAL] + 0.5 * st[S_HINC] * bins)
            rare = -math.log(prob) - math.log(bins)  # surprise beyond a uniform spread
            if rare < 0.0:
                rare = 0.0
        else:
            b = -1

        # --- the point's surprise and which component gave it
        surprise = dev
        comp = C_DEVIATION
        if p[P_W_RARE] * rare > surprise:
            surprise = p[P_W_RARE] * rare
            comp = C_RARE
        if p[P_W_SHIFT] * shift > surprise:
            surprise = p[P_W_SHIFT] * shift
            comp = C_SHIFT

        # --- normalise against this series' own usual surprise (its likelihood)
        if n >= 2.0:
            st[S_SHORT] += p[P_A_SHORT] * (surprise - st[S_SHORT])
        else:
            st[S_SHORT] = surprise
        sd = math.sqrt(st[S_SVAR]) + 1e-6
        z = (st[S_SHORT] - st[S_SMEAN]) / sd
        # the surprise's own statistics start once the error scales have warmed up
        warm = n - 0.5 * learn
        if warm >= 1.0:
            a_s = max(p[P_A_SURPRISE], 1.0 / warm)
            capped = min(st[S_SHORT], st[S_SMEAN] + 4.0 * sd) if n > learn else st[S_SHORT]
            if warm == 1.0:
                st[S_SMEAN] = capped
            d = capped - st[S_SMEAN]
            st[S_SMEAN] += a_s * d
            st[S_SVAR] = (1.0 - a_s) * (st[S_SVAR] + a_s * d * d)

        score = 0.0
        if n >= learn and z > 0.0:
            score = z / (z + p[P_SCALE])
            # report a rise only: repeats of an alarm already raised are quiet
            if score <= st[S_PEAK] or st[S_QUIET] > 0.0:
                score = 0.0
        st[S_PEAK] = max(st[S_PEAK] * p[P_PEAK_DECAY], score)
        if st[S_QUIET] > 0.0:
            st[S_QUIET] -= 1.0
        elif score >= p[P_FIRE]:
            st[S_QUIET] = p[P_QUIET]  # an alarm was raised: hold the next ones back
        out_score[i] = score
        out_expected[i] = preds[best]
        out_scale[i] = scale
        out_model[i] = best
        out_component[i] = comp
        out_deviation[i] = dev if comp == C_DEVIATION else (rare if comp == C_RARE else shift)

        # --- learn from the point (winsorised, so an anomaly does not teach itself)
        for m in range(N_MODELS):
            if ready[m]:
                e = abs(x - preds[m])
                if n > learn:
                    e = min(e, 6.0 * (st[S_ERR + m] + floor))
                if st[S_ERR + m] == 0.0 and m >= M_DAILY:
                    st[S_ERR + m] = st[S_ERR + M_LEVEL]
                st[S_ERR + m] += max(p[P_A_ERR], 1.0 / n) * (e - st[S_ERR + m])
        if seasonal:
            a_slot = p[P_A_SLOT]
            if daily[1, kd] == 0.0:
                daily[0, kd] = x
            else:
                daily[0, kd] += a_slot * (x - daily[0, kd])
            daily[1, kd] += 1.0
            if weekly[1, kw] == 0.0:
                weekly[0, kw] = x
            else:
                weekly[0, kw] += a_slot * (x - weekly[0, kw])
            weekly[1, kw] += 1.0
        st[S_LEVEL] += p[P_A_LEVEL] * (x - st[S_LEVEL])
        st[S_FAST] += p[P_A_FAST] * (x - st[S_FAST])
        dslow = x - st[S_SLOW]
        a_slow = max(p[P_A_SLOW], 1.0 / (n + 1.0))
        st[S_SLOW] += a_slow * dslow
        st[S_SLOWDEV] += a_slow * (abs(dslow) - st[S_SLOWDEV])
        if n < learn:
            st[S_LO] = min(st[S_LO], x)
            st[S_HI] = max(st[S_HI], x)
            st[S_WIDTH] = width
        elif b >= 0:
            # lazily decayed histogram: the increment grows instead of every bin shrinking
            st[S_HINC] /= p[P_A_HIST]
            hist[b] += st[S_HINC]
            st[S_HTOTAL] += st[S_HINC]
            if st[S_HINC] > 1e12:
                for j in range(bins):
                    hist[j] /= st[S_HINC]
                st[S_HTOTAL] /= st[S_HINC]
                st[S_HINC] = 1.0
        st[S_LAST] = x
        st[S_TLAST] = t
        st[S_N] = n + 1.0
