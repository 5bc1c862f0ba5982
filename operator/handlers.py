"""kopf handlers: thin wrappers that parse, fetch, compute with pure functions, publish.

``check_spec`` validates on create, update and resume; ``refit`` is the timer's body
(``refit_timer`` writes its patch); ``retarget`` and ``cleanup`` remove what the operator
put on a target it no longer watches (and, on deletion, its metric series). ``register``
adds them to a kopf registry (the ``ala-operator`` command does this at start).
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

import kopf

from .constants import (ANNOTATION_BATCH, ANNOTATION_CONFIDENCE, ANNOTATION_REPLICAS, ANNOTATION_UPDATED,
                        COND_FITTED, COND_METRICS, COND_RECOMMENDATION, COND_SPEC_VALID, GROUP, PLURAL, VERSION)
from .actuator import actuate
from .credentials import CredentialsRefused
from .kube import ClusterError, StaleWrite, TargetNotFound
from .observe import fetch, window_s
from .prometheus import GarbageAnswer, PrometheusQueryError, PrometheusUnavailable
from .refit import Observations, step
from .shared import Shared
from .spec import SpecError, parse_spec
from .status import annotations, plan_conditions, recommendation, set_condition, timestamp


def register(registry: kopf.OperatorRegistry, timer_seconds: float = 10.0) -> kopf.OperatorRegistry:
    """Add the handlers to ``registry``; the timer ticks every ``timer_seconds`` and the
    refit itself honours each resource's ``policy.refitIntervalSeconds``."""
    resource = (GROUP, VERSION, PLURAL)
    spec_handler = _silent(check_spec)
    for on in (kopf.on.resume, kopf.on.create):
        on(*resource, registry=registry)(spec_handler)
    kopf.on.update(*resource, field="spec", registry=registry)(spec_handler)
    kopf.on.update(*resource, field="spec.targetRef", registry=registry)(_silent(retarget))
    kopf.timer(*resource, interval=timer_seconds, initial_delay=1.0, registry=registry)(_silent(refit_timer))
    kopf.on.delete(*resource, registry=registry)(_silent(cleanup))
    return registry


def _silent(handler):
    """The handler without its return value: kopf would store it in ``status.<handler>``
    (clutter in what users read, and one more status patch that can fail)."""
    @functools.wraps(handler)
    def wrapper(**kwargs: Any) -> None:
        handler(**kwargs)
    return wrapper


def check_spec(spec: kopf.Spec, meta: kopf.Meta, logger: logging.Logger | kopf.Logger,
               body: kopf.Body | None = None, **_: Any) -> dict:
    """On create, update and resume: say at once, in the log and an Event, whether the
    spec is valid. It writes no status: ``SpecValid`` and ``observedGeneration`` are the
    refit timer's (one writer, its writes conditional on the resourceVersion it read), so
    a refit that began before an edit can never put back a stale condition."""
    try:
        parse_spec(dict(spec))
    except SpecError as exc:
        logger.warning("spec rejected: %s (%s)", exc, exc.reason)
        _event(body, "Warning", exc.reason, str(exc), True)
        return {"valid": False, "reason": exc.reason}
    return {"valid": True}


def _config_map_reader(cluster, namespace: str):
    """``read_config_map`` for ``parse_spec``: a ConfigMap that cannot be read is a spec
    problem the user can fix (``SpecValid=False``), never a crash."""
    def read(name: str) -> dict[str, str]:
        try:
            return cluster.config_map(namespace, name)
        except TargetNotFound as exc:
            raise SpecError("modelFacts.configMapRef.name", "ConfigMapNotFound", str(exc)) from None
        except ClusterError as exc:
            raise SpecError("modelFacts.configMapRef.name", "ConfigMapUnreadable", str(exc)) from None
    return read


def refit(spec: kopf.Spec, meta: kopf.Meta, status: kopf.Status, patch: kopf.Patch,
          logger: logging.Logger | kopf.Logger, memo: Shared, body: kopf.Body | None = None,
          now: datetime | None = None, **_: Any) -> dict:
    """Validate, fetch, decide (``refit.step``), publish, actuate; scale only in Apply mode.

    The only writer of status: ``SpecValid`` and ``observedGeneration`` too. An invalid spec
    sets ``SpecValid=False`` (once per generation) and stops there. Failures leave the last
    recommendation in place and say why in a condition; the next attempt comes a refit
    interval later (at once after a spec edit). With a ``body``, changes that matter are
    also posted as Events.
    """
    now = now or datetime.now(timezone.utc)
    namespace, name, generation = meta.get("namespace", ""), meta.get("name", ""), meta.get("generation")
    status = dict(status or {})
    before = list(status.get("conditions") or [])
    try:
        parsed = parse_spec(dict(spec))
        changed = _spec_changed(status, generation)
        if not changed and _too_soon(status, parsed.refit_interval_s, now):
            conditions = set_condition(before, COND_SPEC_VALID, True, "Valid", "spec accepted", now, generation)
            if conditions != before:
                patch.status["conditions"] = conditions
            return {"skipped": "interval"}
        if parsed.model_config_ref is not None:  # read at each refit, not at each timer tick
            parsed = parse_spec(dict(spec), read_config_map=_config_map_reader(memo.cluster, namespace))
    except SpecError as exc:
        conditions = set_condition(before, COND_SPEC_VALID, False, exc.reason, str(exc), now, generation)
        if conditions != before or status.get("observedGeneration") != generation:
            patch.status["conditions"] = conditions
            patch.status["observedGeneration"] = generation
        return {"skipped": "invalid spec", "reason": exc.reason}
    conditions = set_condition(before, COND_SPEC_VALID, True, "Valid", "spec accepted", now, generation)
    # Every attempt is recorded, failed or not: a failure waits out the interval like a
    # success (not a retry every timer tick), and the generation it acted on is known.
    patch.status["lastAttemptTime"] = timestamp(now)
    patch.status["refitGeneration"] = generation
    started = time.perf_counter()
    target = (namespace, parsed.target_api_version, parsed.target_kind, parsed.target_name)

    # Fetch: the target's replicas, then the metrics.
    try:
        if hasattr(memo.cluster, "workload"):
            desired, ready, template = memo.cluster.workload(*target)
        else:
            (desired, ready), template = memo.cluster.get_scale(*target), None
    except ClusterError as exc:
        reason = "TargetNotFound" if isinstance(exc, TargetNotFound) else "TargetUnreachable"
        memo.metrics.refit_errors.labels(reason).inc()
        patch.status["conditions"] = set_condition(conditions, COND_RECOMMENDATION, False, reason, str(exc), now,
                                                   generation)
        _event(body, "Warning", reason, str(exc), _flipped(conditions, COND_RECOMMENDATION, reason))
        logger.warning("target of %s/%s: %s", namespace, name, exc)
        return {"target": False, "reason": reason}
    try:
        observations = fetch(memo.prometheus(parsed, namespace), parsed, now, desired, ready, template)
    except (PrometheusUnavailable, PrometheusQueryError, GarbageAnswer, ClusterError, CredentialsRefused) as exc:
        reason = exc.reason if isinstance(exc, CredentialsRefused) else \
            "SecretUnavailable" if isinstance(exc, ClusterError) else type(exc).__name__
        memo.metrics.query_failures.labels(reason).inc()
        conditions = set_condition(conditions, COND_METRICS, False, reason, str(exc), now, generation)
        _event(body, "Warning", "MetricsUnavailable", f"{reason}: {exc}",
               _flipped(list(status.get("conditions") or []), COND_METRICS, reason))
        logger.warning("metrics unavailable for %s/%s: %s", namespace, name, exc)
        if parsed.demand_query or parsed.demand_from_engine or (status.get("recommendation") and not changed):
            # The last good recommendation stays; the next attempt comes an interval later.
            patch.status["conditions"] = conditions
            return {"metrics": False, "reason": reason}
        # Nothing published yet, or a spec edit the last recommendation does not follow, and
        # the demand is in the spec: the prior alone still gives a recommendation for the
        # spec as it is now, its confidence saying how much that is worth.
        observations = Observations(desired=desired, ready=ready, metrics_ok=False, template=template)

    if parsed.apply_batch and parsed.mode == "Apply" and hasattr(memo.cluster, "engine_batch"):
        try:
            limit, rolling = memo.cluster.engine_batch(*target, parsed.deployment.engine)
            observations = replace(observations, batch_limit=limit, rolling_out=rolling)
        except ClusterError as exc:  # the batch stays as it is; replicas are still decided
            logger.warning("batch limit of the target of %s/%s unreadable: %s", namespace, name, exc)

    # Decide: one pure step, the same the trace replay calls.
    last_scaled = _parse_time(status["lastScaleTime"]) if status.get("lastScaleTime") else None
    last_batch = _parse_time(status["lastBatchChangeTime"]) if status.get("lastBatchChangeTime") else None
    decision = step(memo.model, parsed, observations, status.get("scorecard"), last_scaled, now,
                    evidence=status.get("liveEvidence"),
                    curve=None if changed else (status.get("recommendation") or {}).get("ownCurve"),
                    last_batch_change=last_batch)
    result, points = decision.plan, decision.points

    # Publish: status, annotations, events.
    if observations.metrics_ok:
        conditions = set_condition(conditions, COND_METRICS, True, "Scraped",
                                   f"{decision.fresh_s:.0f}s of new believed pod intervals from the last "
                                   f"{window_s(parsed):.0f}s", now, generation)
    if decision.evidence_reset:
        _event(body, "Normal", "EvidenceReset", decision.evidence_reset, True)
    if points:
        conditions = set_condition(conditions, COND_FITTED, True, "Refitted",
                                   f"curve updated with {len(points)} live point(s) of accumulated evidence"
                                   + (f" (evidence reset: {decision.evidence_reset})" if decision.evidence_reset
                                      else ""), now, generation)
    else:
        conditions = set_condition(conditions, COND_FITTED, False, "PriorOnly",
                                   "no live evidence yet: the recommendation is the learned prior's"
                                   + (f" (evidence reset: {decision.evidence_reset})" if decision.evidence_reset
                                      else ""), now, generation)
    conditions = plan_conditions(conditions, result, parsed.min_confidence, now, generation)
    rec = recommendation(result, now)
    rec["livePoints"] = len(points)
    if decision.curve is not None:
        rec["ownCurve"] = decision.curve
    if decision.forecast is not None:
        rec["forecast"] = decision.forecast
    if decision.batch_why is not None:
        rec["batchLimit"] = {"current": observations.batch_limit, "decision": decision.batch_why}
    previous = ((status.get("recommendation") or {}).get("replicas") or {}).get("target")
    patch.status["recommendation"] = rec
    patch.status["scorecard"] = decision.score
    if decision.evidence is not None:
        patch.status["liveEvidence"] = decision.evidence
    patch.status["lastRefitTime"] = timestamp(now)
    patch.status["observedGeneration"] = generation
    ann = annotations(result, now)
    if changed or _annotations_changed(meta, ann):
        # Written only when the answer changed (or the spec did, which may name a new
        # target): a new timestamp alone is not news to anyone watching the objects.
        patch.metadata.setdefault("annotations", {}).update(ann)
        try:
            memo.cluster.annotate(*target, ann)
        except ClusterError as exc:  # the recommendation still stands on the resource itself
            memo.metrics.refit_errors.labels("AnnotateFailed").inc()
            logger.warning("could not annotate the target of %s/%s: %s", namespace, name, exc)
    target_now = (rec.get("replicas") or {}).get("target")
    if target_now != previous and target_now is not None:
        _event(body, "Normal", "RecommendationChanged",
               f"{previous} -> {target_now} replicas at batch {rec.get('batchSize')}, "
               f"confidence {rec.get('confidence')}", True)

    # Actuate (Apply mode only: step decided None otherwise).
    done = actuate(memo.cluster, namespace, name, target, desired, decision.scale_to, decision.why, status, now,
                   meta.get("resourceVersion"))
    patch.status.update(done.status)
    if done.error is not None:
        memo.metrics.refit_errors.labels("StaleWrite" if isinstance(done.error, StaleWrite) else "ScaleFailed").inc()
    elif done.replicas is not None:
        _event(body, "Normal", "Scaled", f"{parsed.target_kind} {parsed.target_name}: {done.why}", True)
        logger.info("scaled %s/%s %s: %s", namespace, parsed.target_name, desired, done.why)
    if decision.set_batch is not None and done.error is None:
        try:
            before_batch = memo.cluster.set_engine_batch(*target, parsed.deployment.engine, decision.set_batch)
            patch.status["lastBatchChangeTime"] = timestamp(now)
            patch.status["lastBatchChange"] = {"from": before_batch, "to": decision.set_batch, "time": timestamp(now),
                                               "why": decision.batch_why}
            _event(body, "Normal", "BatchChanged", f"{parsed.target_kind} {parsed.target_name}: {decision.batch_why}",
                   True)
            logger.info("batch limit of %s/%s: %s", namespace, parsed.target_name, decision.batch_why)
        except ClusterError as exc:
            memo.metrics.refit_errors.labels("BatchChangeFailed").inc()
            logger.warning("could not set the batch limit of the target of %s/%s: %s", namespace, name, exc)
    patch.status["conditions"] = conditions
    elapsed = time.perf_counter() - started
    memo.metrics.refit_seconds.observe(elapsed)
    memo.metrics.publish(namespace, name, result, decision.score, points[-1].throughput if points else None,
                         desired=done.replicas if done.replicas is not None else desired, ready=ready)
    logger.info("refit %s/%s n=%d replicas=%s batch=%s conf=%s in %.0f ms (%s)", namespace, name, len(points),
                (result.replicas or {}).get("target"), result.batch_size,
                None if result.confidence is None else round(result.confidence, 2), 1000 * elapsed, done.why)
    out = {"metrics": observations.metrics_ok, "outcome": result.outcome, "scaled_to": done.replicas}
    if done.resource_version:  # the write-ahead record moved the resource on: the patch follows it
        out["resourceVersion"] = done.resource_version
    return out


def refit_timer(spec: kopf.Spec, meta: kopf.Meta, status: kopf.Status, patch: kopf.Patch,
                logger: logging.Logger | kopf.Logger, memo: Shared, body: kopf.Body | None = None,
                now: datetime | None = None, **_: Any) -> dict:
    """The timer: ``refit``, its patch written by our client rather than kopf's.

    The status write is conditional on the resourceVersion the refit read (or the one its
    own write-ahead record produced): if anything changed the resource meanwhile (a spec
    edit, above all), the write is refused and dropped, and the next tick starts again from
    the new object. kopf's timer runner stops for good when its own patch is refused (a 409
    or 422 ends the resource's timer until the operator restarts); writing the patch here
    retries server errors, and a refusal becomes a TemporaryError the next tick recovers from.
    """
    own = kopf.Patch()
    out = refit(spec=spec, meta=meta, status=status, patch=own, logger=logger, memo=memo, body=body, now=now)
    if own:
        version = out.get("resourceVersion") or meta.get("resourceVersion")
        try:
            memo.cluster.patch_resource(meta.get("namespace", ""), meta.get("name", ""), own,
                                        resource_version=version)
        except StaleWrite:
            memo.metrics.refit_errors.labels("StaleWrite").inc()
            logger.info("%s/%s changed during the refit: its status write is dropped; the next tick starts from "
                        "the new object", meta.get("namespace", ""), meta.get("name", ""))
            return {**out, "dropped": "stale"}
        except ClusterError as exc:
            memo.metrics.refit_errors.labels("StatusPatchFailed").inc()
            raise kopf.TemporaryError(f"could not write the status: {exc}", delay=5) from exc
    return out


def cleanup(spec: kopf.Spec, meta: kopf.Meta, memo: Shared, logger: logging.Logger | kopf.Logger, **_: Any) -> None:
    """The resource is being deleted: drop its metric series and the target's annotations."""
    namespace, name = meta.get("namespace", ""), meta.get("name", "")
    memo.metrics.forget(namespace, name)
    _unannotate(memo, namespace, spec.get("targetRef") or {})
    logger.info("forgot %s/%s", namespace, name)


def retarget(old: Any, new: Any, meta: kopf.Meta, memo: Shared, logger: logging.Logger | kopf.Logger,
             **_: Any) -> None:
    """``spec.targetRef`` now names another workload: the old one loses our annotations
    (they would still advertise a recommendation that is no longer about it)."""
    old, new = dict(old or {}), dict(new or {})
    if old.get("name") and (old.get("name"), old.get("kind")) != (new.get("name"), new.get("kind")):
        _unannotate(memo, meta.get("namespace", ""), old)
        logger.info("target changed from %s %s: its annotations removed", old.get("kind", "Deployment"),
                    old["name"])


def _unannotate(memo: Shared, namespace: str, target: dict) -> None:
    removed = {key: None for key in (ANNOTATION_REPLICAS, ANNOTATION_BATCH, ANNOTATION_CONFIDENCE,
                                     ANNOTATION_UPDATED)}
    if not target.get("name"):
        return
    try:
        memo.cluster.annotate(namespace, target.get("apiVersion", "apps/v1"), target.get("kind", "Deployment"),
                              target["name"], removed)
    except TargetNotFound:
        pass  # nothing left to clean on a target that is gone
    except ClusterError as exc:
        raise kopf.TemporaryError(f"could not remove the annotations of the old target: {exc}", delay=10) from exc


def _annotations_changed(meta: kopf.Meta, ann: dict[str, str | None]) -> bool:
    """Whether the recommendation annotations differ from those on the resource (the
    time aside)."""
    current = dict(meta.get("annotations") or {})
    return any(current.get(key) != value for key, value in ann.items() if key != ANNOTATION_UPDATED)


def _spec_changed(status: dict, generation: int | None) -> bool:
    """Whether the spec changed since the last refit attempt (resources refitted before
    ``refitGeneration`` existed fall back to ``observedGeneration``)."""
    return status.get("refitGeneration", status.get("observedGeneration", generation)) != generation


def _too_soon(status: dict, interval_s: float, now: datetime) -> bool:
    """Whether this refit waits: the last attempt (successful or not) was within the refit
    interval. Asked only when the spec is unchanged: a spec edit is acted on at the next tick."""
    times = [_parse_time(t) for t in (status.get("lastRefitTime"), status.get("lastAttemptTime")) if t]
    return bool(times) and (now - max(times)).total_seconds() < interval_s - 0.5


def _flipped(conditions: list, type_: str, reason: str) -> bool:
    """Whether setting ``type_`` False with ``reason`` changes it (so an Event is news)."""
    for cond in conditions:
        if cond.get("type") == type_:
            return cond.get("status") != "False" or cond.get("reason") != reason
    return True


def _event(body: kopf.Body | None, type_: str, reason: str, message: str, send: bool) -> None:
    if body is not None and send:
        kopf.event(body, type=type_, reason=reason, message=message[:1024])


def _parse_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
