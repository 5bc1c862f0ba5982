"""Status and annotations, built by pure functions from a plan and the previous status.

Conditions follow Kubernetes conventions: ``type``, ``status`` ("True"/"False"/
"Unknown"), ``reason``, ``message``, ``lastTransitionTime`` (moves only when ``status``
flips) and ``observedGeneration``.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Mapping

from ala.planner import Plan

from .constants import (ANNOTATION_BATCH, ANNOTATION_CONFIDENCE, ANNOTATION_REPLICAS, ANNOTATION_UPDATED,
                        COND_LOW_CONFIDENCE, COND_RECOMMENDATION, CONDITION_TYPES)


def timestamp(now: datetime) -> str:
    return now.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def set_condition(conditions: list[Mapping[str, Any]] | None, type_: str, status: bool | None, reason: str,
                  message: str, now: datetime, generation: int | None) -> list[dict]:
    """A new condition list with ``type_`` set; the others are kept as they were."""
    if type_ not in CONDITION_TYPES:
        raise ValueError(f"unknown condition type {type_!r}")
    text = "Unknown" if status is None else ("True" if status else "False")
    out, found = [], False
    for cond in conditions or []:
        if cond.get("type") != type_:
            out.append(dict(cond))
            continue
        found = True
        flipped = cond.get("status") != text
        out.append({"type": type_, "status": text, "reason": reason, "message": message[:1024],
                    "lastTransitionTime": timestamp(now) if flipped else cond.get("lastTransitionTime", timestamp(now)),
                    "observedGeneration": generation})
    if not found:
        out.append({"type": type_, "status": text, "reason": reason, "message": message[:1024],
                    "lastTransitionTime": timestamp(now), "observedGeneration": generation})
    order = {t: i for i, t in enumerate(CONDITION_TYPES)}
    return sorted(out, key=lambda c: order.get(c["type"], len(order)))


#: The fields of ``status.recommendation`` a plan may or may not give.
RECOMMENDATION_FIELDS = ("replicas", "batchSize", "batchLimitedBy", "confidence", "throughputPerReplica",
                         "interTokenLatencyMs", "replicasClippedBy", "cost", "memory", "modelFacts")


def recommendation(plan: Plan, now: datetime) -> dict:
    """``status.recommendation`` in the VerticalPodAutoscaler's shape, from a plan.

    Every field is present; those the plan does not give are None, so that written as a
    merge patch they remove the previous value: after an infeasible plan no replicas or
    batch size of an earlier one stays behind as if it were current.
    """
    rec: dict[str, Any] = {"outcome": plan.outcome, "reasons": list(plan.reasons), "time": timestamp(now),
                           **dict.fromkeys(RECOMMENDATION_FIELDS)}
    if plan.replicas:
        rec["replicas"] = {"target": plan.replicas["target"], "lowerBound": plan.replicas["lower_bound"],
                           "upperBound": plan.replicas["upper_bound"], "uncappedTarget": plan.replicas["uncapped"]}
    if plan.batch_size is not None:
        tp = plan.throughput_per_replica
        rec.update(batchSize=plan.batch_size, batchLimitedBy=plan.batch_limited_by,
                   confidence=round(float(plan.confidence), 4),
                   throughputPerReplica={"value": round(tp["value"], 3), "lower": round(tp["lower"], 3),
                                         "upper": round(tp["upper"], 3), "confidenceLevel": tp["confidence_level"]},
                   interTokenLatencyMs=round(plan.latency["itl_ms"], 3))
    if plan.replicas_clipped_by:
        rec["replicasClippedBy"] = plan.replicas_clipped_by
    if plan.evidence and plan.evidence.get("model_facts"):
        rec["modelFacts"] = plan.evidence["model_facts"]  # which route found the model's size
    if plan.memory:
        m = plan.memory
        rec["memory"] = {"weightsGB": round(m["weights_gb"], 3), "usableGB": round(m["usable_gb"], 3),
                         "kvCacheMaxBatch": m["max_batch"], "minAccelerators": m["min_accelerators"]}
    if plan.cost and plan.cost.get("per_million_output_tokens") is not None:
        rec["cost"] = {"perHour": round(plan.cost["per_hour"], 4),
                       "perMillionOutputTokens": round(plan.cost["per_million_output_tokens"], 6),
                       "priceSource": plan.cost["price_source"]}
    return rec


def plan_conditions(conditions: list | None, plan: Plan, min_confidence: float, now: datetime,
                    generation: int | None) -> list[dict]:
    """``RecommendationProvided`` and ``LowConfidence`` from a plan's outcome."""
    if plan.outcome == "no_demand":
        conditions = set_condition(conditions, COND_RECOMMENDATION, True, "NoDemand",
                                   f"no demand: {plan.replicas['target']} replica(s) (minReplicas)", now, generation)
        return set_condition(conditions, COND_LOW_CONFIDENCE, False, "NoDemand",
                             "zero demand needs no throughput estimate", now, generation)
    if plan.outcome == "ok":
        conditions = set_condition(conditions, COND_RECOMMENDATION, True, "Recommended",
                                   f"{plan.replicas['target']} replicas at batch {plan.batch_size}", now, generation)
        low = plan.confidence < min_confidence
        return set_condition(conditions, COND_LOW_CONFIDENCE, low, "BelowThreshold" if low else "AboveThreshold",
                             f"confidence {plan.confidence:.2f} against threshold {min_confidence:.2f}", now, generation)
    reason = {"insufficient_data": "InsufficientData", "infeasible": "ObjectivesUnattainable"}.get(plan.outcome,
                                                                                                 "NoRecommendation")
    if plan.outcome == "infeasible" and plan.batch_limited_by == "memory":
        reason = "DoesNotFitMemory"  # weights or one sequence's KV cache exceed the replica's memory
    return set_condition(conditions, COND_RECOMMENDATION, False, reason, "; ".join(plan.reasons), now, generation)


def annotations(plan: Plan, now: datetime) -> dict[str, str | None]:
    """Annotations for the resource and its target; None removes a stale one."""
    if plan.outcome not in ("ok", "no_demand"):
        return {ANNOTATION_REPLICAS: None, ANNOTATION_BATCH: None, ANNOTATION_CONFIDENCE: None,
                ANNOTATION_UPDATED: timestamp(now)}
    return {ANNOTATION_REPLICAS: str(plan.replicas["target"]), ANNOTATION_BATCH: str(plan.batch_size),
            ANNOTATION_CONFIDENCE: f"{plan.confidence:.3f}", ANNOTATION_UPDATED: timestamp(now)}
