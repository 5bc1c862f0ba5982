"""The predictive policy's inputs through a real Prometheus: days of a gateway's token counter
(a daily cycle, then bursts) backfilled with promtool, read by the operator's own queries
(``observe.demand_history``), and turned into the demand a refit sizes for."""

import math
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ala_operator.devstack.livebench import _backfilled
from ala_operator.devstack.localstack import PrometheusServer
from ala_operator.forecast import planned_demand
from ala_operator.observe import demand_history
from ala_operator.prometheus import PrometheusClient
from ala_operator.spec import parse_spec

DAY = 86400


def _rate(t: np.ndarray, start: float) -> np.ndarray:
    """20,000 tokens/s on average, +-50% over the day (peak at 12:00), and in the last three
    hours a 30 s burst at three times the level every two minutes."""
    base = 20000 * (1 + 0.5 * np.sin(2 * math.pi * (t / DAY - 0.25)))
    bursty = (t > start + 4 * DAY - 3 * 3600) & ((t % 120) < 30)
    return np.where(bursty, 3 * base, base)


def test_days_of_demand_are_read_back_and_forecast(require_prometheus, examples):
    # Four days ending at 11:00 UTC of a day within the last two days (TSDB blocks are 2 h aligned).
    now_s = math.floor(datetime.now(timezone.utc).timestamp() / DAY) * DAY - DAY + 11 * 3600
    start = now_s - 4 * DAY
    t = start + 30.0 * np.arange(1, int(4 * DAY / 30) + 1)
    counter = np.cumsum(_rate(t, start) * 30.0)
    lines = ["# TYPE gateway_output_tokens counter", "# HELP gateway_output_tokens tokens asked for"]
    lines += [f'gateway_output_tokens_total{{service="llm"}} {v:.1f} {ts:.0f}' for ts, v in zip(t, counter)]
    raw = dict(examples["vllm-llama-8b"]["spec"])
    raw["demand"] = {"query": 'sum(rate(gateway_output_tokens_total{service="llm"}[1m]))'}
    raw["policy"] = {"forecast": {"model": "Seasonal", "historyDays": 3, "horizonSeconds": 900}}
    raw["prometheus"] = {**raw["prometheus"], "stepSeconds": 30}
    work = Path(tempfile.mkdtemp(prefix="ala-forecast-"))
    with PrometheusServer([], blocks=_backfilled(lines, work), retention="30d") as prom:
        spec = parse_spec(raw)
        client = PrometheusClient(prom.url, timeout_s=30)
        history, fine = demand_history(client, spec, now_s)
    # 10-minute means over three days, as the counter says them.
    assert 400 <= len(history) <= 433
    times = np.array([h[0] for h in history])
    truth = np.array([_rate(np.arange(x - 600, x, 1.0), start).mean() for x in times])
    values = np.array([h[1] for h in history])
    calm = times < start + 4 * DAY - 3 * 3600
    assert np.median(np.abs(values[calm] / truth[calm] - 1)) < 0.02
    # The fine series sees the bursts the 10-minute means smooth away.
    tail = np.array([v for _, v in fine])
    assert len(fine) >= 300 and tail.max() / np.median(tail) > 2
    planned = planned_demand(None, history, fine, now_s, 900, 0.95, 5.0, 0.1)
    ahead = np.arange(now_s, now_s + 900, 10.0)
    next_peak = (20000 * (1 + 0.5 * np.sin(2 * math.pi * (ahead / DAY - 0.25)))).max()  # the cycle alone
    # The last hour ran above the profile (its bursts): the level carries that into the forecast.
    assert planned.forecast.method == "seasonal" and planned.forecast.level > 1.2
    assert planned.forecast.point > 0.9 * next_peak
    assert planned.burst_measured and planned.burst > 1.1 and planned.demand > 1.5 * next_peak
