"""The demand a predictive policy sizes for: a seasonal forecast of the deployment's own
demand history, burst headroom from its sub-minute peaks, and a scale-down floor.

Pure functions: ``observe`` fetches the two series from Prometheus, ``refit.step`` calls
``planned_demand``. Nothing here reads a clock or keeps state.

The forecast (``seasonal``): a slot's demand is the median of the same slot on the
previous days (up to a week back), blended half and half with the same slot a week before
once a week of history exists (weekdays and weekends differ), scaled by the recent level
(the last hour's demand against what the same method said of it). Its uncertainty is
measured, not assumed: the method is run on its own history (every slot forecast from
the slots before it, over the same horizon) and the ``quantile`` of the log ratio of the
horizon's real peak to its forecast peak multiplies the forecast. Without a day of
history the recent level stands in for the seasonal profile, with its own back-tested
quantile.

Why by hand rather than a forecasting library: the model is a few medians over aligned
slots, run on every refit of every resource and on every step of a 14-day replay; the
libraries that fit daily plus weekly seasonality (statsmodels' MSTL, Prophet) fit a model
per call in tens of milliseconds to seconds, need more history than a fresh deployment
has, and would add a heavy dependency for what the back-tested quantile already gives.

Burst headroom: requests arriving faster than the fleet serves them wait in the queue, so a
burst of length ``w`` is absorbed when the fleet serves it within ``w`` plus the time the
objectives let a request wait for its first token. The headroom is the largest, over
window lengths from one sample to 32, of the ``BURST_QUANTILE`` of (demand over ``w``)
/ (the 10-minute mean around it) times ``w / (w + wait)``: at least 1.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np

DAY_S = 86400.0
WEEK_S = 7 * DAY_S
#: History is read in slots of this length (seconds): 10-minute means.
SLOT_S = 600.0
#: The recent level is the last hour against the forecast of it.
LEVEL_S = 3600.0
#: The recent level scales the seasonal profile by at most this factor either way.
LEVEL_CLIP = 4.0
#: Daily lags used (the previous week of days).
MAX_DAYS = 7
#: Back-tests needed before the measured quantile is used (else the horizon's recent peak).
MIN_BACKTESTS = 24
#: The back-test runs over at most this much recent history (seconds).
BACKTEST_S = 7 * DAY_S
#: Sub-minute peaks: this quantile of the ratio to the 10-minute mean.
BURST_QUANTILE = 0.99
#: Window lengths tried, in samples of the fine series.
BURST_WINDOWS = (1, 2, 4, 8, 32)
#: Burst headroom needs this much fine series (seconds) before it is believed.
MIN_BURST_S = 1200.0
#: Bursts seen this long ago (seconds) still hold the scale-down floor.
BURST_MEMORY_S = 3600.0
#: Burst headroom is capped (a few isolated spikes should not buy a fleet several times over).
MAX_BURST = 3.0

Series = Sequence[tuple[float, float]]


@dataclass(frozen=True)
class Forecast:
    """Demand (output tokens/s) over the coming horizon, at the quantile."""

    value: float            # the forecast peak over the horizon times the back-tested quantile
    point: float            # the forecast peak over the horizon (median)
    level: float            # the recent level's factor on the seasonal profile
    multiplier: float       # exp(quantile of the back-tested log error)
    method: str             # "seasonal" (a day or more of history) or "recent"
    history_s: float
    backtests: int


def _arrays(series: Series) -> tuple[np.ndarray, np.ndarray]:
    """A (unix s, value) series as two arrays, samples with a non-finite part left out."""
    t = np.array([p[0] for p in series], float).reshape(-1)
    v = np.array([p[1] for p in series], float).reshape(-1)
    ok = np.isfinite(t) & np.isfinite(v)
    return t[ok], v[ok]


def slots(history: Series, now: float, slot_s: float = SLOT_S) -> tuple[np.ndarray, np.ndarray]:
    """History as slot means on a grid ending at ``now``: (slot end times, values; NaN where
    nothing was recorded, e.g. a collection gap or before the deployment existed)."""
    t, v = _arrays(history)
    ok = (v >= 0) & (t <= now)
    t, v = t[ok], v[ok]
    if t.size == 0:
        return np.zeros(0), np.zeros(0)
    n = int(math.floor((now - t.min()) / slot_s)) + 1
    index = np.clip(((now - t) // slot_s).astype(int), 0, n - 1)  # 0 = the slot ending now
    sums = np.bincount(index, weights=v, minlength=n)
    counts = np.bincount(index, minlength=n)
    values = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)[::-1]
    ends = now - slot_s * np.arange(n)[::-1]
    return ends, values


def _profile(values: np.ndarray, per_day: int, per_week: int, targets: np.ndarray) -> np.ndarray:
    """Seasonal estimate at slot indices ``targets`` (may lie beyond the end): the median of
    the same slot on up to ``MAX_DAYS`` previous days, half-blended with a week before."""
    n = values.size
    daily = []
    for k in range(1, MAX_DAYS + 1):
        idx = targets - k * per_day
        daily.append(np.where((idx >= 0) & (idx < n), values[np.clip(idx, 0, n - 1)], np.nan))
    daily = np.array(daily)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slots: NaN, as meant
        est = np.nanmedian(daily, axis=0)
    idx = targets - per_week
    weekly = np.where((idx >= 0) & (idx < n), values[np.clip(idx, 0, n - 1)], np.nan)
    return np.where(np.isfinite(weekly) & np.isfinite(est), 0.5 * est + 0.5 * weekly, est)


def _level(values: np.ndarray, profile: np.ndarray, end: int, per_level: int) -> float:
    """The recent level: demand over the ``per_level`` slots before ``end`` against the
    profile's estimate of them (1 when either is unknown)."""
    lo = max(0, end - per_level)
    seen, est = values[lo:end], profile[lo:end]
    ok = np.isfinite(seen) & np.isfinite(est)
    if not ok.any() or est[ok].sum() <= 0:
        return 1.0
    return float(np.clip(seen[ok].sum() / est[ok].sum(), 1 / LEVEL_CLIP, LEVEL_CLIP))


def seasonal(history: Series, now: float, horizon_s: float, quantile: float,
             slot_s: float = SLOT_S) -> Forecast | None:
    """Forecast the peak slot demand over ``[now, now + horizon_s]`` at ``quantile``; None
    without any history."""
    return _seasonal(*slots(history, now, slot_s), horizon_s, quantile, slot_s)


def _seasonal(ends: np.ndarray, values: np.ndarray, horizon_s: float, quantile: float,
              slot_s: float = SLOT_S) -> Forecast | None:
    """``seasonal`` on history already in slots (``slots``)."""
    if not 0 < quantile < 1:
        raise ValueError(f"quantile must lie strictly between 0 and 1, got {quantile}")
    known = np.isfinite(values)
    if not known.any():
        return None
    n = values.size
    span = float(ends[-1] - ends[np.flatnonzero(known)[0]] + slot_s)
    per_day, per_week = int(round(DAY_S / slot_s)), int(round(WEEK_S / slot_s))
    per_level = max(1, int(round(LEVEL_S / slot_s)))
    ahead = max(1, int(math.ceil(horizon_s / slot_s)))
    if span >= DAY_S + LEVEL_S:
        method = "seasonal"
        profile = _profile(values, per_day, per_week, np.arange(n + ahead))
    else:
        method = "recent"
        profile = None
    # The point forecast for the coming slots.
    future = np.arange(n, n + ahead)
    if method == "seasonal":
        level = _level(values, profile[:n], n, per_level)
        coming = profile[future] * level
        point = float(np.nanmax(coming)) if np.isfinite(coming).any() else np.nan
    else:
        level = 1.0
        point = np.nan
    recent = values[max(0, n - per_level):]
    recent_level = float(np.nanmean(recent)) if np.isfinite(recent).any() else 0.0
    if not np.isfinite(point):
        method, point = "recent", recent_level
    # Back-test the same method over the history: forecast made at slot j for slots j..j+ahead-1.
    errors = _backtest(values, profile, method, per_level, ahead, int(BACKTEST_S / slot_s))
    if errors.size >= MIN_BACKTESTS:
        multiplier = float(np.exp(max(0.0, np.quantile(errors, quantile))))
    else:
        # Too little to measure: at least the horizon's worth of recent peak.
        peak = float(np.nanmax(recent)) if np.isfinite(recent).any() else point
        multiplier = max(1.0, peak / point) if point > 0 else 1.0
    return Forecast(point * multiplier, point, level, multiplier, method, span, int(errors.size))


def _backtest(values: np.ndarray, profile: np.ndarray | None, method: str, per_level: int, ahead: int,
              limit: int) -> np.ndarray:
    """Log ratios of the real peak over each horizon to the forecast peak, for forecasts made
    at each slot of the most recent ``limit`` slots whose horizon has passed."""
    n = values.size
    starts = np.arange(max(per_level, n - ahead - limit), n - ahead + 1)
    if starts.size == 0:
        return np.zeros(0)
    known = np.isfinite(values)
    csum = np.concatenate([[0.0], np.cumsum(np.where(known, values, 0.0))])
    ccount = np.concatenate([[0], np.cumsum(known)])
    lo = starts - per_level
    seen, count = csum[starts] - csum[lo], ccount[starts] - ccount[lo]
    windows = np.lib.stride_tricks.sliding_window_view(np.where(known, values, -np.inf), ahead)[starts]
    peak = windows.max(axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if method == "seasonal":
            both = known & np.isfinite(profile[:values.size])
            pcsum = np.concatenate([[0.0], np.cumsum(np.where(both, profile[:n], 0.0))])
            seen_both = np.concatenate([[0.0], np.cumsum(np.where(both, values, 0.0))])
            est = pcsum[starts] - pcsum[lo]
            level = np.where(est > 0, np.clip((seen_both[starts] - seen_both[lo]) / np.where(est > 0, est, 1.0),
                                              1 / LEVEL_CLIP, LEVEL_CLIP), 1.0)
            ahead_profile = np.lib.stride_tricks.sliding_window_view(
                np.where(np.isfinite(profile), profile, -np.inf), ahead)[starts]
            guess = ahead_profile.max(axis=1) * level
        else:
            guess = np.where(count > 0, seen / np.maximum(count, 1), np.nan)
        ok = np.isfinite(peak) & np.isfinite(guess) & (peak > 0) & (guess > 0)
        return np.log(peak[ok] / guess[ok])


def burst_headroom(fine: Series, wait_s: float) -> float | None:
    """Headroom for sub-minute bursts from a fine demand series (one rate per sample), or
    None with less than ``MIN_BURST_S`` of it (see the module docstring)."""
    t, v = _arrays(fine)
    t, v = t[v >= 0], v[v >= 0]
    if t.size < 3 or t[-1] - t[0] < MIN_BURST_S:
        return None
    step = float(np.median(np.diff(t)))
    if step <= 0:
        return None
    around = max(1, int(round(SLOT_S / step)))
    kernel = np.ones(around) / around
    mean = np.convolve(v, kernel, mode="same")
    # Near the edges the centred mean is short of samples: scale by the samples it covered.
    cover = np.convolve(np.ones_like(v), kernel, mode="same")
    mean = mean / np.maximum(cover, 1e-9)
    best = 1.0
    for w in BURST_WINDOWS:
        if w > t.size:
            break
        rolled = np.convolve(v, np.ones(w) / w, mode="valid")
        base = mean[w - 1:]
        keep = base > 0
        if keep.sum() < 10:
            continue
        ratio = float(np.quantile(rolled[keep] / base[keep], BURST_QUANTILE))
        length = w * step
        best = max(best, ratio * length / (length + max(wait_s, 0.0)))
    return float(min(best, MAX_BURST))


@dataclass(frozen=True)
class Planned:
    """What the predictive policy sizes for, and which term decided it."""

    demand: float
    decided_by: str         # "forecast", "floor" (the recent peak, held for a horizon) or "current"
    forecast: Forecast | None
    floor: float
    burst: float
    burst_measured: bool

    def as_status(self, horizon_s: float, quantile: float) -> dict:
        f = self.forecast
        out = {"model": "Seasonal", "plannedTokensPerSecond": round(self.demand, 3), "decidedBy": self.decided_by,
               "burstHeadroom": round(self.burst, 4), "burstMeasured": self.burst_measured,
               "floorTokensPerSecond": round(self.floor, 3), "horizonSeconds": int(horizon_s),
               "quantile": quantile}
        if f is not None:
            out.update(method=f.method, forecastTokensPerSecond=round(f.value, 3),
                       pointTokensPerSecond=round(f.point, 3), level=round(f.level, 4),
                       quantileMultiplier=round(f.multiplier, 4), historySeconds=round(f.history_s),
                       backtests=f.backtests)
        return out


def absorbable_peak(fine: Series, since: float, wait_s: float, quantile: float = 1.0) -> float:
    """The capacity (tokens/s) that would have served the bursts of the fine series after
    ``since`` within the wait, all but the busiest ``1 - quantile`` of its windows: the
    largest, over window lengths of ``BURST_WINDOWS`` samples, of that quantile of the
    windows' rates times ``w / (w + wait)``."""
    t, v = _arrays(fine)
    t, v = t[t > since], np.maximum(v[t > since], 0.0)
    if t.size < 2:
        return float(v.max()) if v.size else 0.0
    step = float(np.median(np.diff(t)))
    best = 0.0
    for w in BURST_WINDOWS:
        if w > v.size:
            break
        length = w * step
        rates = np.convolve(v, np.ones(w) / w, mode="valid")
        best = max(best, float(np.quantile(rates, quantile)) * length / (length + wait_s))
    return best


def planned_demand(current: float | None, history: Series, fine: Series, now: float, horizon_s: float,
                   quantile: float, wait_s: float, min_headroom: float = 0.0) -> Planned:
    """The demand to size for, headroom included: the largest of

    - ``forecast``: the seasonal forecast's peak over the coming horizon at the quantile,
      times the burst headroom (at least ``1 + min_headroom``);
    - ``floor``: what scale-down must keep. Bursts last seconds and a new replica takes a
      cold start, so capacity for a burst cannot be added when it arrives: the fleet keeps
      what would have absorbed the bursts of the last ``BURST_MEMORY_S`` (a burst seen in
      the last hour is expected again) but the busiest ``1 - quantile`` of its windows, and
      the last horizon's 10-minute peak with headroom;
    - ``current``: the demand measured now (a recent peak already).
    """
    ends, values = slots(history, now)
    forecast = _seasonal(ends, values, horizon_s, quantile)
    measured = burst_headroom(fine, wait_s)
    burst = max(1.0 + min_headroom, 1.0 if measured is None else measured)
    recent = values[ends > now - horizon_s - SLOT_S] if values.size else values
    held = float(np.nanmax(recent)) if recent.size and np.isfinite(recent).any() else 0.0
    floor = max(held * burst, absorbable_peak(fine, now - BURST_MEMORY_S, wait_s, quantile) if fine else 0.0)
    terms = {"forecast": (forecast.value if forecast is not None else 0.0) * burst, "floor": floor,
             "current": float(current or 0.0)}
    decided = max(terms, key=terms.get)
    return Planned(terms[decided], decided, forecast, floor, burst, measured is not None)
