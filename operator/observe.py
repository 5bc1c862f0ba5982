"""The fetch half of a refit: the engine's raw per-pod samples (or the override queries'
series) and the demand from Prometheus, with the target's replicas (read by the handler), as
``refit.Observations``. Only I/O and reshaping happen here; the decisions are ``refit.step``'s."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from .engines import ENGINES
from .livepoints import per_pod
from .prometheus import GarbageAnswer, PrometheusClient, build_queries, demand_queries, raw_selectors
from .refit import Observations
from .spec import LLMDeploymentSpec

#: The shortest range a refit reads (seconds); longer when the refit interval is long.
MIN_WINDOW_S = 300


def window_s(spec: LLMDeploymentSpec) -> float:
    """Seconds of history one refit reads: five refit intervals, at least ``MIN_WINDOW_S``."""
    return max(spec.refit_interval_s * 5, MIN_WINDOW_S)


def fetch(client: PrometheusClient, spec: LLMDeploymentSpec, now: datetime, desired: int,
          ready: int, template: str | None = None) -> Observations:
    """What the engine's metrics say over the window, and the demand.

    By default the raw samples of every pod's token counter and running batch (paired per
    pod by ``refit.step``); with throughput/batch/replicas overridden, the fleet-wide series
    of those queries. Raises the client's errors (unreachable, refused query, garbage), and
    GarbageAnswer when the token counter matches nothing or a summed query returns several
    series.
    """
    end = now.timestamp()
    start = end - window_s(spec)
    demand = client.scalar(spec.demand_query) if spec.demand_query else \
        engine_demand(client, spec, end) if spec.demand_from_engine else None
    history, fine = demand_history(client, spec, end) if spec.forecast is not None else (None, None)
    if "throughput" in spec.prometheus.queries:
        return replace(_fetch_fleet(client, spec, start, end, desired, ready, demand, template),
                       history=history, fine=fine)
    engine = spec.deployment.engine
    m = ENGINES[engine]
    selectors = raw_selectors(engine, spec.prometheus.selector)
    seconds = end - start
    tokens, on_completion = client.samples(selectors["tokens"], seconds, end), m.generated_on_completion
    if not tokens and "fallback_tokens" in selectors:
        tokens, on_completion = client.samples(selectors["fallback_tokens"], seconds, end), True
    if not tokens:
        raise GarbageAnswer(f"the token counter {m.generated} matched no series: check prometheus.selector and that "
                            f"the engine exports its metrics (on {m.metrics_path})")
    running = client.samples(selectors["running"], seconds, end)
    lag = 0.0
    if on_completion:
        lag = LAG_LATENCIES * mean_latency(client.samples(selectors["latency_sum"], seconds, end),
                                           client.samples(selectors["latency_count"], seconds, end))
    return Observations(desired=desired, ready=ready, demand=demand, window_start=start,
                        tokens_by_pod=per_pod(tokens, m.split_labels, m.copy_labels),
                        running_by_pod=per_pod(running, m.split_labels, m.copy_labels), lag_s=lag,
                        template=template, history=history, fine=fine)


#: The predictive policy reads its demand history as means over slots of this length...
HISTORY_STEP_S = 600
#: ...and a fine series over this many seconds, at the spec's step (the burst headroom and
#: the scale-down floor).
FINE_SPAN_S = 3 * 3600


def history_queries(spec: LLMDeploymentSpec) -> tuple[str, str]:
    """PromQL for the demand's history (10-minute means) and its fine series (one short-window
    rate per step), in output tokens/s. With ``demand.fromEngine`` both are the engine's
    arrivals times ``outputTokens`` (the queue is a state, not a demand to learn a season
    from); with ``demand.query`` the history averages the query over each slot, and the fine
    series is the query itself, so its own rate window bounds the bursts it can see."""
    if spec.demand_query:
        q = spec.demand_query
        return f"avg_over_time(({q})[{HISTORY_STEP_S}s:{spec.prometheus.step_s}s])", q
    out = float(spec.deployment.output_tokens)
    engine, selector = spec.deployment.engine, spec.prometheus.selector
    slot = demand_queries(engine, selector, HISTORY_STEP_S)["arrivals"]
    short = demand_queries(engine, selector, max(2 * spec.prometheus.step_s, 30))["arrivals"]
    return f"clamp_min({slot}, 0) * {out:g}", f"clamp_min({short}, 0) * {out:g}"


def demand_history(client: PrometheusClient, spec: LLMDeploymentSpec, end: float):
    """(history, fine) for ``forecast.planned_demand``: ``historyDays`` of 10-minute means and
    the last ``FINE_SPAN_S`` at the spec's step, each one summed series of (unix s, tokens/s)."""
    history_q, fine_q = history_queries(spec)
    days = spec.forecast.history_days * 86400
    history = _one_series(client.range(history_q, end - days, end, HISTORY_STEP_S))
    fine = _one_series(client.range(fine_q, end - FINE_SPAN_S, end, spec.prometheus.step_s))
    return history, fine


def engine_demand(client: PrometheusClient, spec: LLMDeploymentSpec, at: float) -> float:
    """Output tokens/s the deployment is asked for: requests arriving (over the rate window)
    plus those waiting, drained within ``DRAIN_INTERVALS`` refit intervals (at least
    ``DRAIN_MIN_S``), times the
    workload's output tokens per request. Served tokens would hide what a saturated
    deployment turns away; arrivals and the queue do not."""
    queries = demand_queries(spec.deployment.engine, spec.prometheus.selector, spec.prometheus.rate_window_s)
    arrivals = sum(v for _, v in _signed(client, queries["arrivals"], at))
    waiting = sum(v for _, v in client.instant(queries["waiting"], at))
    drain_s = max(DRAIN_INTERVALS * spec.refit_interval_s, DRAIN_MIN_S)
    return max(arrivals, 0.0) * float(spec.deployment.output_tokens) \
        + waiting / drain_s * float(spec.deployment.output_tokens)


def _signed(client: PrometheusClient, query: str, at: float) -> list[tuple[dict, float]]:
    """An instant query whose value may be negative (a queue draining): ``clamp_min`` keeps
    the answer checkable, as the sum of arrivals cannot be below zero."""
    return client.instant(f"clamp_min({query}, 0)", at)


#: The queue a refit sees is to be served within this many refit intervals, and not faster
#: than ``DRAIN_MIN_S``: a queue built while the deployment was short is not a demand to
#: size for (in the demo, draining it in 20 s asked for five times the replicas needed).
DRAIN_INTERVALS = 2
DRAIN_MIN_S = 120.0
#: An engine that counts a request's tokens when it finishes is believed only where its batch
#: held steady for this many mean request latencies before (most requests finish within).
LAG_LATENCIES = 2.0
#: The latency assumed when the engine exports no latency histogram (seconds).
DEFAULT_LATENCY_S = 60.0


def mean_latency(sums, counts) -> float:
    """Mean request latency over the window from a histogram's raw ``_sum`` and ``_count``
    samples (all pods; a series that reset is left out)."""
    def grown(series) -> dict:
        out = {}
        for labels, samples in series:
            if len(samples) >= 2 and samples[-1][1] >= samples[0][1]:
                key = tuple(sorted((k, v) for k, v in labels.items() if k != "__name__"))
                out[key] = samples[-1][1] - samples[0][1]
        return out
    s, c = grown(sums), grown(counts)
    total_s = sum(v for k, v in s.items() if k in c)
    total_c = sum(v for k, v in c.items() if k in s)
    return total_s / total_c if total_c > 0 else DEFAULT_LATENCY_S


def _fetch_fleet(client, spec, start, end, desired, ready, demand, template) -> Observations:
    """The fleet-wide override queries over the window."""
    queries = build_queries(spec.deployment.engine, spec.prometheus.selector, dict(spec.prometheus.queries),
                            window=f"{spec.prometheus.rate_window_s}s")
    step = spec.prometheus.step_s
    throughput = _one_series(client.range(queries["throughput"], start, end, step))
    if not throughput:
        raise GarbageAnswer("the throughput query matched no series: check prometheus.selector and that the "
                            "engine exports its metrics")
    batch = _one_series(client.range(queries["batch"], start, end, step))
    serving = _one_series(client.range(queries["replicas"], start, end, step)) if queries.get("replicas") else None
    return Observations(desired=desired, ready=ready, throughput=throughput, batch=batch, serving=serving,
                        demand=demand, window_start=start, template=template)


def _one_series(result: list[tuple[dict, list[tuple[float, float]]]]) -> list[tuple[float, float]]:
    """The single series a summed query returns (empty when there is no traffic yet)."""
    if len(result) > 1:
        raise GarbageAnswer(f"expected one summed series, got {len(result)}; sum the query")
    return result[0][1] if result else []
