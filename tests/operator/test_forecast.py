"""The predictive policy's demand: seasonal forecast, its back-tested quantile, burst headroom
and the scale-down floor (pure functions, on synthetic series and on a real 14-day shape)."""

import math

import numpy as np
import pandas as pd
import pytest

from ala_operator.devstack.replay import TRACES
from ala_operator.forecast import (DAY_S, SLOT_S, absorbable_peak, burst_headroom, planned_demand, seasonal,
                                   slots)


def _daily(days: float, level=1000.0, amplitude=0.5, noise=0.0, seed=0, start=0.0):
    """10-minute means of a daily cycle (peak at 12:00), optionally noisy."""
    rng = np.random.default_rng(seed)
    t = start + SLOT_S * np.arange(1, int(days * DAY_S / SLOT_S) + 1)
    v = level * (1 + amplitude * np.sin(2 * math.pi * (t / DAY_S - 0.25)))
    v = v * np.exp(noise * rng.standard_normal(t.size))
    return list(zip(t.tolist(), v.tolist()))


def test_slots_mark_collection_gaps_as_unknown():
    history = [(600.0, 10.0), (1200.0, 20.0), (3000.0, 40.0)]
    ends, values = slots(history, 3000.0)
    assert ends.tolist() == [600.0, 1200.0, 1800.0, 2400.0, 3000.0]
    assert values[0] == 10 and values[1] == 20 and np.isnan(values[2]) and np.isnan(values[3])
    assert seasonal([], 0.0, 900, 0.95) is None
    with pytest.raises(ValueError, match="quantile"):
        seasonal(history, 3000.0, 900, 1.0)


def test_a_daily_cycle_is_forecast_from_the_previous_days():
    history = _daily(3, noise=0.02)
    now = history[-1][0]
    # Six hours later on day four, from three days of history: the profile, not the recent level.
    later = now + 6 * 3600
    f = seasonal(history + [(t + 3 * DAY_S, v) for t, v in history if t + 3 * DAY_S <= later], later, 900, 0.95)
    truth = 1000 * (1 + 0.5 * np.sin(2 * math.pi * ((later + np.arange(1, 3) * SLOT_S) / DAY_S - 0.25))).max()
    assert f.method == "seasonal" and abs(f.point / truth - 1) < 0.06
    assert 1.0 <= f.multiplier < 1.15 and f.backtests >= 24  # measured on its own history


def test_the_recent_level_scales_the_profile():
    history = _daily(3)
    now = history[-1][0]
    doubled = history + [(now + k * SLOT_S, 2 * v) for k, (_, v) in enumerate(history[:12], start=1)]
    f = seasonal(doubled, now + 12 * SLOT_S, 900, 0.9)
    assert f.level == pytest.approx(2.0, rel=0.05)


def test_without_a_day_of_history_the_recent_level_stands_in():
    f = seasonal(_daily(0.5), 0.5 * DAY_S, 900, 0.95)
    assert f.method == "recent" and f.value >= f.point > 0


def test_the_quantile_covers_what_it_says_on_a_real_14_day_shape():
    # ServeGen m-small: 14 days of a production service, forecast 15 minutes ahead at each
    # hour from day two on; the back-tested 95% quantile should cover about 95%.
    shape = pd.read_csv(TRACES / "servegen_m-small_10min.csv")
    t = (shape["window_start_s"] + SLOT_S).to_numpy()
    v = shape["req_per_s"].to_numpy()
    history = [(a, b) for a, b in zip(t, v) if b > 0]
    covered = []
    for i in range(int(DAY_S / SLOT_S) + 6, len(t) - 2, 6):
        real = v[i + 1:i + 3].max()
        if real <= 0:
            continue
        f = seasonal([h for h in history if h[0] <= t[i]], t[i], 900, 0.95)
        covered.append(real <= f.value)
    assert 0.88 <= np.mean(covered) <= 0.99


def test_burst_headroom_is_one_for_steady_demand_and_grows_with_bursts():
    t = np.arange(0, 3600, 10.0)
    steady = list(zip(t, np.full(t.size, 500.0)))
    assert burst_headroom(steady, 5.0) == pytest.approx(1.0)
    spiky = np.full(t.size, 500.0)
    spiky[::12] = 2000.0  # a 10 s burst at 4x every two minutes
    b = burst_headroom(list(zip(t, spiky)), 0.0)
    assert b > 2.0
    # Waiting up to a minute absorbs most of a 10 s burst.
    assert burst_headroom(list(zip(t, spiky)), 60.0) < b
    assert burst_headroom(steady[:5], 5.0) is None  # too short to say


def test_absorbable_peak_keeps_capacity_for_the_bursts_it_saw():
    t = np.arange(0, 3600, 10.0)
    v = np.full(t.size, 100.0)
    v[100] = 3000.0
    assert absorbable_peak(list(zip(t, v)), 0.0, 0.0) == pytest.approx(3000.0)
    assert absorbable_peak(list(zip(t, v)), 0.0, 10.0) == pytest.approx(1500.0)  # 10 s waits halve it
    assert absorbable_peak(list(zip(t, v)), 1010.0, 0.0) == pytest.approx(100.0)  # forgotten after it


def test_planned_demand_says_which_term_decided():
    history = _daily(2)
    now = history[-1][0]
    t = now - 3600 + np.arange(1, 361) * 10.0
    fine = list(zip(t, np.full(t.size, 900.0)))
    quiet = planned_demand(100.0, history, fine, now, 900, 0.95, 5.0, 0.1)
    assert quiet.decided_by == "floor" and quiet.demand >= 900 * 0.97  # the fine series says 900 now
    assert quiet.burst >= 1.1  # at least 1 + the policy's headroom
    loud = planned_demand(50_000.0, history, fine, now, 900, 0.95, 5.0, 0.1)
    assert loud.decided_by == "current" and loud.demand == 50_000.0
    status = quiet.as_status(900, 0.95)
    assert status["decidedBy"] == quiet.decided_by and status["method"] == "seasonal"
