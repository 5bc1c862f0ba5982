"""kopf handlers: thin wrappers that parse, fetch, compute with pure functions, publish.

``check_spec`` validates on create, update and resume. ``refit`` is the timer's body; its
Kubernetes calls go through a ``Cluster`` (registration with kopf and the real adapter
are the next step, with the integration tier).
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timezone
from typing import Any, Protocol

import kopf

from .constants import COND_FITTED, COND_METRICS, COND_SPEC_VALID, GROUP, PLURAL, VERSION
from .prometheus import GarbageAnswer, PrometheusQueryError, PrometheusUnavailable, build_queries
from .refit import live_points, live_table, recommend, scale_decision, scorecard
from .spec import SpecError, parse_spec
from .status import annotations, plan_conditions, recommendation, set_condition, timestamp


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL, field="spec")
def check_spec(spec: kopf.Spec, meta: kopf.Meta, status: kopf.Status, patch: kopf.Patch,
               logger: logging.Logger | kopf.Logger, now: datetime | None = None, **_: Any) -> dict:
    """Set ``SpecValid`` (with the field and reason when invalid); nothing else changes."""
    now = now or datetime.now(timezone.utc)
    generation = meta.get("generation")
    conditions = list((status or {}).get("conditions") or [])
    try:
        parse_spec(dict(spec))
    except SpecError as exc:
        patch.status["conditions"] = set_condition(conditions, COND_SPEC_VALID, False, exc.reason, str(exc),
                                                   now, generation)
        patch.status["observedGeneration"] = generation
        logger.warning("spec rejected: %s (%s)", exc, exc.reason)
        return {"valid": False, "reason": exc.reason}
    patch.status["conditions"] = set_condition(conditions, COND_SPEC_VALID, True, "Valid", "spec accepted",
                                               now, generation)
    patch.status["observedGeneration"] = generation
    return {"valid": True}


class Cluster(Protocol):
    """The Kubernetes calls the refit needs (a real adapter or a test double)."""

    def get_scale(self, namespace: str, api_version: str, kind: str, name: str) -> tuple[int, int]:
        """(desired replicas, ready replicas) of the target."""

    def set_scale(self, namespace: str, api_version: str, kind: str, name: str, replicas: int) -> None:
        """Write the target's desired replicas through its scale subresource."""

    def annotate(self, namespace: str, api_version: str, kind: str, name: str,
                 annotations: dict[str, str | None]) -> None:
        """Merge annotations into the target (None removes a key)."""


def refit(spec: kopf.Spec, meta: kopf.Meta, status: kopf.Status, patch: kopf.Patch,
          logger: logging.Logger | kopf.Logger, memo: Any, now: datetime | None = None, **_: Any) -> dict:
    """Fetch live metrics, refit, plan, publish; scale only in Apply mode.

    ``memo`` carries the shared state set at start: ``model`` (a fitted ALA), ``metrics``
    (OperatorMetrics), ``cluster`` (Cluster) and ``prometheus(spec, namespace)`` returning
    a PrometheusClient. Failures leave the last recommendation in place and say why in a
    condition; the next tick retries.
    """
    now = now or datetime.now(timezone.utc)
    namespace, name, generation = meta.get("namespace", ""), meta.get("name", ""), meta.get("generation")
    status = dict(status or {})
    conditions = list(status.get("conditions") or [])
    try:
        parsed = parse_spec(dict(spec))
    except SpecError:
        return {"skipped": "invalid spec"}  # check_spec owns SpecValid
    last = status.get("lastRefitTime")
    if last and (now - _parse_time(last)).total_seconds() < parsed.refit_interval_s:
        return {"skipped": "interval"}
    started = time.perf_counter()
    target = (namespace, parsed.target_api_version, parsed.target_kind, parsed.target_name)
    try:
        desired, ready = memo.cluster.get_scale(*target)
        client = memo.prometheus(parsed, namespace)
        queries = build_queries(parsed.deployment.engine, parsed.prometheus.selector,
                                dict(parsed.prometheus.queries))
        window = max(parsed.refit_interval_s * 5, 300)
        start = now.timestamp() - window
        throughput = _series(client.range(queries["throughput"], start, now.timestamp(), 30))
        batch = _series(client.range(queries["batch"], start, now.timestamp(), 30))
        demand = client.scalar(parsed.demand_query) if parsed.demand_query else None
    except (PrometheusUnavailable, PrometheusQueryError, GarbageAnswer) as exc:
        reason = type(exc).__name__
        memo.metrics.query_failures.labels(reason).inc()
        patch.status["conditions"] = set_condition(conditions, COND_METRICS, False, reason, str(exc), now,
                                                   generation)
        logger.warning("metrics unavailable for %s/%s: %s", namespace, name, exc)
        return {"metrics": False, "reason": reason}
    warmup_until = _parse_time(status["lastScaleTime"]).timestamp() + parsed.warmup_s \
        if status.get("lastScaleTime") else 0.0
    points = live_points(throughput, batch, ready, warmup_until)
    conditions = set_condition(conditions, COND_METRICS, True, "Scraped",
                               f"{len(points)} live point(s) from the last {window}s", now, generation)
    score = status.get("scorecard")
    if len(points) >= 2:
        # Score the prediction made before the newest point was known.
        before = memo.model.predict_interval(parsed.deployment.query([points[-1].batch]),
                                             parsed.policy.confidence_level, live=live_table(parsed, points[:-1]))
        row = before.iloc[0]
        score = scorecard(score, row["point"], row["lower"], row["upper"], points[-1].throughput)
    result = recommend(memo.model, parsed, demand, points)
    conditions = set_condition(conditions, COND_FITTED, True, "Refitted",
                               f"prior updated with {len(points)} live point(s)", now, generation)
    conditions = plan_conditions(conditions, result, parsed.min_confidence, now, generation)
    patch.status["recommendation"] = recommendation(result, now)
    patch.status["scorecard"] = score
    patch.status["lastRefitTime"] = timestamp(now)
    patch.status["observedGeneration"] = generation
    ann = annotations(result, now)
    patch.metadata.setdefault("annotations", {}).update(ann)
    memo.cluster.annotate(*target, ann)
    replicas, why = scale_decision(parsed, result, desired, _parse_time(status["lastScaleTime"])
                                   if status.get("lastScaleTime") else None, now)
    if replicas is not None:
        memo.cluster.set_scale(*target, replicas)
        patch.status["lastScaleTime"] = timestamp(now)
        logger.info("scaled %s/%s %s: %s", namespace, parsed.target_name, desired, why)
    patch.status["conditions"] = conditions
    elapsed = time.perf_counter() - started
    memo.metrics.refit_seconds.observe(elapsed)
    memo.metrics.publish(namespace, name, result, score, points[-1].throughput if points else None)
    logger.info("refit %s/%s n=%d replicas=%s batch=%s conf=%s in %.0f ms (%s)", namespace, name, len(points),
                (result.replicas or {}).get("target"), result.batch_size,
                None if result.confidence is None else round(result.confidence, 2), 1000 * elapsed, why)
    return {"metrics": True, "outcome": result.outcome, "scaled_to": replicas}


def _series(result: list[tuple[dict, list[tuple[float, float]]]]) -> list[tuple[float, float]]:
    """The single series a summed query returns (empty when there is no traffic yet)."""
    if len(result) > 1:
        raise GarbageAnswer(f"expected one summed series, got {len(result)}; sum the query")
    return result[0][1] if result else []


def _parse_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
