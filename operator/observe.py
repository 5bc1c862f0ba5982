"""The fetch half of a refit: the engine's series and the demand from Prometheus, with the
target's replicas (read by the handler), as ``refit.Observations``. Only I/O happens here;
the decisions are ``refit.step``'s."""

from __future__ import annotations

from datetime import datetime

from .prometheus import GarbageAnswer, PrometheusClient, build_queries
from .refit import Observations
from .spec import LLMDeploymentSpec

#: The shortest range a refit reads (seconds); longer when the refit interval is long.
MIN_WINDOW_S = 300


def window_s(spec: LLMDeploymentSpec) -> float:
    """Seconds of history one refit reads: five refit intervals, at least ``MIN_WINDOW_S``."""
    return max(spec.refit_interval_s * 5, MIN_WINDOW_S)


def fetch(client: PrometheusClient, spec: LLMDeploymentSpec, now: datetime, desired: int,
          ready: int) -> Observations:
    """Throughput, running batch and serving replicas over the window, and the demand.

    Raises the client's errors (unreachable, refused query, garbage), and GarbageAnswer
    when the throughput query matches nothing or a summed query returns several series.
    """
    queries = build_queries(spec.deployment.engine, spec.prometheus.selector, dict(spec.prometheus.queries),
                            window=f"{spec.prometheus.rate_window_s}s")
    end = now.timestamp()
    start, step = end - window_s(spec), spec.prometheus.step_s
    throughput = _one_series(client.range(queries["throughput"], start, end, step))
    if not throughput:
        raise GarbageAnswer("the throughput query matched no series: check prometheus.selector and that the "
                            "engine exports its metrics")
    batch = _one_series(client.range(queries["batch"], start, end, step))
    serving = _one_series(client.range(queries["replicas"], start, end, step)) if queries.get("replicas") else None
    demand = client.scalar(spec.demand_query) if spec.demand_query else None
    return Observations(desired=desired, ready=ready, throughput=throughput, batch=batch, serving=serving,
                        demand=demand, window_start=start)


def _one_series(result: list[tuple[dict, list[tuple[float, float]]]]) -> list[tuple[float, float]]:
    """The single series a summed query returns (empty when there is no traffic yet)."""
    if len(result) > 1:
        raise GarbageAnswer(f"expected one summed series, got {len(result)}; sum the query")
    return result[0][1] if result else []
