"""The operator's decisions, as pure functions: live points from metrics, the refit and
plan, the live accuracy scorecard, and whether (and how far) to scale.

Handlers fetch and publish; everything here takes plain values and a ``now``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping

import pandas as pd

from ala.planner import Demand, Plan, plan

from .spec import LLMDeploymentSpec

#: Observations kept per deployment (oldest dropped first).
MAX_POINTS = 240
#: Weight of the newest observation in the rolling scorecard.
SCORE_WEIGHT = 0.1


@dataclass(frozen=True)
class Observation:
    """One live point: mean running batch per replica and generated tokens/s per replica."""

    at: float
    batch: float
    throughput: float


def live_points(throughput: list[tuple[float, float]], batch: list[tuple[float, float]],
                ready_replicas: int, warmup_until: float,
                replicas: list[tuple[float, float]] | None = None) -> list[Observation]:
    """Pair fleet-wide throughput and running-batch samples by timestamp, per replica.

    With a ``replicas`` series (replicas serving at each instant) each sample is divided
    by its own count, so a rollout or scale-up inside the window does not skew it; without
    one, by today's ready count. Samples before ``warmup_until`` and samples with no
    traffic are left out: a replica that is warming up or idle says nothing about the curve.
    """
    if ready_replicas < 1:
        return []
    by_time = dict(batch)
    serving = dict(replicas) if replicas is not None else None
    out = []
    for at, tokens in throughput:
        running = by_time.get(at)
        if running is None or at < warmup_until or tokens <= 0 or running < 0.5:
            continue
        count = ready_replicas if serving is None else serving.get(at)
        if not count or count < 1:
            continue
        out.append(Observation(at, running / count, tokens / count))
    return out


def live_table(spec: LLMDeploymentSpec, points: list[Observation]) -> pd.DataFrame:
    """Observations as live rows for ``ALA.predict_interval(..., live=...)``."""
    points = points[-MAX_POINTS:]
    table = spec.deployment.query([p.batch for p in points])
    table["throughput_tokens_per_s"] = [p.throughput for p in points]
    return table


def recommend(model, spec: LLMDeploymentSpec, demand_tokens_per_s: float | None,
              points: list[Observation]) -> Plan:
    """The plan for one deployment, its curve updated with the live points."""
    if demand_tokens_per_s is not None:
        demand = Demand(output_tokens_per_s=demand_tokens_per_s)
    else:
        demand = Demand(spec.demand_tokens_per_s, spec.demand_requests_per_s)
    model.clear_live()
    if points:
        model.update(live_table(spec, points))
    try:
        return plan(model, spec.deployment, demand, spec.objectives, spec.policy, alternatives=False)
    finally:
        model.clear_live()


def scorecard(previous: Mapping[str, Any] | None, predicted: float, lower: float, upper: float,
              observed: float) -> dict:
    """Rolling live accuracy: APE of the prediction made before the observation, and
    whether the interval covered it (exponentially weighted, newest weight 0.1)."""
    ape = abs(predicted / observed - 1)
    covered = 1.0 if lower <= observed <= upper else 0.0
    if not previous or not previous.get("samples"):
        return {"ape": round(ape, 6), "coverage": covered, "samples": 1}
    w = SCORE_WEIGHT
    return {"ape": round((1 - w) * float(previous["ape"]) + w * ape, 6),
            "coverage": round((1 - w) * float(previous["coverage"]) + w * covered, 6),
            "samples": int(previous["samples"]) + 1}


def scale_decision(spec: LLMDeploymentSpec, result: Plan, current: int, last_scaled: datetime | None,
                   now: datetime) -> tuple[int | None, str]:
    """Replicas to set on the target, or None, with the reason.

    Only in Apply mode, only with a recommendation at or above the confidence threshold,
    never within the stabilisation window of the last change, at most ``maxStep``
    replicas at once, always within min/max.
    """
    if spec.mode != "Apply":
        return None, "Recommend mode: the target is never scaled"
    if result.outcome != "ok" or not result.replicas:
        return None, f"no recommendation ({result.outcome})"
    if result.confidence < spec.min_confidence:
        return None, f"confidence {result.confidence:.2f} below minConfidence {spec.min_confidence:.2f}"
    target = result.replicas["target"]
    low = spec.policy.min_replicas
    high = spec.policy.max_replicas if spec.policy.max_replicas is not None else math.inf
    target = int(min(max(target, low), high))
    if target == current:
        return None, f"already at {current} replicas"
    if last_scaled is not None and (now - last_scaled).total_seconds() < spec.stabilization_window_s:
        return None, f"within the {spec.stabilization_window_s}s stabilisation window of the last change"
    step = max(-spec.max_step, min(spec.max_step, target - current))
    return int(min(max(current + step, low), high)), f"scale {current} -> {current + step} towards {target}"
