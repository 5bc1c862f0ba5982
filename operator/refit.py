"""One refit as a pure function: ``step(model, spec, observations, score, last_scaled, now)``
turns what was observed into a ``Decision`` (live points, scorecard, plan, replicas to set).

The operator's handler and the trace replay both call ``step``, so a replay measures the
operator's own decisions. Nothing here fetches, writes or keeps state: handlers fetch the
``Observations`` and publish the ``Decision``; the actuator carries out the scale.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from ala.memo import BoundedMemo
from ala.planner import Demand, Plan, batch_grid, plan

from .forecast import planned_demand
from .livepoints import Interval, accumulate, evidence_points, intervals, pool, regime_key
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
    seconds: float | None = None  # of believed intervals behind it (accumulated evidence)


def live_points(throughput: Sequence[tuple[float, float]], batch: Sequence[tuple[float, float]],
                ready_replicas: int, warmup_until: float,
                replicas: Sequence[tuple[float, float]] | None = None) -> list[Observation]:
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
    if all(p.seconds is not None for p in points):
        table["evidence_s"] = [p.seconds for p in points]
    return table


#: Predicted curves kept for reuse (one per deployment and evidence signature).
PREDICTIONS_KEPT = 4096
#: The evidence signature: batch to 1%, throughput to this share, seconds to a power of two.
SIGNATURE_THROUGHPUT = 0.01
_PREDICTIONS = BoundedMemo(PREDICTIONS_KEPT)


def evidence_signature(points: Sequence[Observation]) -> tuple:
    """What the curve's prediction depends on in the evidence, coarsened: evidence that only
    aged or grew within the same doubling of its seconds (its weight goes with the square
    root of its seconds), and whose throughputs moved within the same 1% step, predicts the
    same curve to within about that; live points are rarely closer than a few percent to
    the truth (docs/operator.md)."""
    return tuple(sorted((round(math.log(p.batch), 2), round(math.log(p.throughput) / SIGNATURE_THROUGHPUT),
                         int(math.log2(max(p.seconds or 1.0, 1.0)))) for p in points))


def predicted_curve(model, spec: LLMDeploymentSpec, points: Sequence[Observation]) -> pd.DataFrame:
    """``model.predict_interval`` over the planner's batch grid with the evidence as live
    points, reused while the evidence signature and the model are the same: a refit whose
    evidence merely accumulated costs a plan's arithmetic, not a prediction."""
    grid = batch_grid(spec.policy.max_batch)

    def compute(_positions):
        out = model.predict_interval(spec.deployment.query(grid), spec.policy.confidence_level,
                                     live=live_table(spec, list(points)) if points else None)
        return [(model, out)]

    if spec.model_facts is not None or spec.accelerator_facts is not None:
        return compute([0])[0][1]  # a view of the model made for this refit: nothing to reuse
    key = (id(model), spec.deployment, spec.policy.confidence_level, spec.policy.max_batch,
           evidence_signature(points))
    kept_model, out = _PREDICTIONS.get_many([key], compute)[0]
    if kept_model is not model:  # an id reused by another model: never trust it
        kept_model, out = compute([0])[0]
    return out


def predicted_at(model, spec: LLMDeploymentSpec, points: Sequence[Observation], batch: float) -> dict:
    """Point, lower and upper at one batch: read off ``predicted_curve`` (log-log between
    its grid's batches), or predicted where the batch lies outside the grid."""
    grid = batch_grid(spec.policy.max_batch)
    if not grid[0] <= batch <= grid[-1]:
        row = model.predict_interval(spec.deployment.query([float(batch)]), spec.policy.confidence_level,
                                     live=live_table(spec, list(points)) if points else None).iloc[0]
        return {c: float(row[c]) for c in ("point", "lower", "upper")}
    curve = predicted_curve(model, spec, points)
    return {c: float(np.exp(np.interp(math.log(batch), np.log(grid), np.log(curve[c].to_numpy()))))
            for c in ("point", "lower", "upper")}


def recommend(model, spec: LLMDeploymentSpec, demand_tokens_per_s: float | None,
              points: list[Observation], headroom_included: bool = False) -> Plan:
    """The plan for one deployment, its curve updated with the live points (through
    ``live=``: the shared model is read, never written). ``headroom_included``: the demand
    carries its headroom already (the predictive policy's burst headroom)."""
    if demand_tokens_per_s is not None:
        demand = Demand(output_tokens_per_s=demand_tokens_per_s)
    else:
        demand = Demand(spec.demand_tokens_per_s, spec.demand_requests_per_s)
    policy = replace(spec.policy, headroom=0.0) if headroom_included else spec.policy
    return plan(model, spec.deployment, demand, spec.objectives, policy, alternatives=False,
                live=live_table(spec, points) if points else None,
                predicted=predicted_curve(model, spec, points))


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
    if result.outcome not in ("ok", "no_demand") or not result.replicas:
        return None, f"no recommendation ({result.outcome})"
    if result.outcome == "ok" and result.confidence < spec.min_confidence:
        return None, f"confidence {result.confidence:.2f} below minConfidence {spec.min_confidence:.2f}"
    target = result.replicas["target"]
    low = spec.policy.min_replicas
    high = spec.policy.max_replicas if spec.policy.max_replicas is not None else math.inf
    target = int(min(max(target, low), high))
    if target == current:
        return None, f"already at {current} replicas"
    if result.outcome == "no_demand":
        # Said as such: down to minReplicas because nothing arrives (no throughput to trust).
        if last_scaled is not None and (now - last_scaled).total_seconds() < spec.stabilization_window_s:
            return None, f"no demand; within the {spec.stabilization_window_s}s stabilisation window"
        step = max(-spec.max_step, target - current)
        return current + step, f"no demand: scale {current} -> {current + step} towards minReplicas {target}"
    if last_scaled is not None and (now - last_scaled).total_seconds() < spec.stabilization_window_s:
        return None, f"within the {spec.stabilization_window_s}s stabilisation window of the last change"
    step = max(-spec.max_step, min(spec.max_step, target - current))
    return int(min(max(current + step, low), high)), f"scale {current} -> {current + step} towards {target}"


@dataclass(frozen=True)
class Observations:
    """What one refit knows of the world, fetched before ``step``.

    ``throughput``, ``batch`` and ``serving`` are (unix seconds, value) series, fleet-wide:
    generated tokens/s, running requests, replicas serving (``serving`` None when not
    measured). ``window_start`` is where the queried range began (a series that starts
    later began inside it: a new deployment or a restarted exporter). ``demand`` is the
    demand query's answer in output tokens/s (None: the spec's demand). ``metrics_ok``
    False means the metrics could not be read and the series are empty on purpose.

    ``tokens_by_pod`` / ``running_by_pod`` (the default, without query overrides): each pod's
    raw token counter and running batch by timestamp, ranks already combined; ``lag_s`` is
    how far an engine that counts tokens when requests finish lags its batch (0: counted as
    decoded). ``template`` fingerprints the target's pod template (engine images): a new one
    is a new regime.
    """

    desired: int
    ready: int
    throughput: Sequence[tuple[float, float]] = ()
    batch: Sequence[tuple[float, float]] = ()
    serving: Sequence[tuple[float, float]] | None = None
    demand: float | None = None
    window_start: float | None = None
    metrics_ok: bool = True
    tokens_by_pod: Mapping[str, Mapping[float, float]] | None = None
    running_by_pod: Mapping[str, Mapping[float, float]] | None = None
    lag_s: float = 0.0
    template: str | None = None
    #: The predictive policy's inputs: demand history (10-minute means over days) and a fine
    #: demand series (one short-window rate per step over the last hours), both (unix s, tokens/s).
    history: Sequence[tuple[float, float]] | None = None
    fine: Sequence[tuple[float, float]] | None = None
    #: The engine's batch limit in the target's pod template (None: not found or not read),
    #: and whether the target is rolling out.
    batch_limit: int | None = None
    rolling_out: bool = False


@dataclass(frozen=True)
class Decision:
    """What ``step`` decided: the live points it used, the scorecard, the plan, and the
    replicas to set on the target (None: leave it) with the reason."""

    points: list[Observation]
    score: dict | None
    plan: Plan
    scale_to: int | None
    why: str
    evidence: dict | None = None
    evidence_reset: str | None = None
    fresh_s: float = 0.0
    curve: dict | None = None
    forecast: dict | None = None
    set_batch: int | None = None
    batch_why: str | None = None


def regime(spec: LLMDeploymentSpec, template: str | None) -> str:
    """What the deployment's curve depends on, fingerprinted: evidence of another regime
    (another model, accelerator, engine, image, precision or token lengths) is dropped."""
    return regime_key(asdict(spec.deployment), template)


def believed_intervals(spec: LLMDeploymentSpec, obs: Observations, warmup_until: float) -> list[Interval]:
    """This refit's believed intervals: per pod from raw samples (the default), else one per
    sample of the fleet-wide override queries (``live_points``)."""
    if obs.tokens_by_pod is not None:
        return intervals(obs.tokens_by_pod, obs.running_by_pod or {}, obs.window_start or 0.0,
                         warmup_s=spec.prometheus.rate_window_s, lag_s=obs.lag_s, warmup_until=warmup_until)
    points = live_points(obs.throughput, obs.batch, obs.ready, warmup_until, obs.serving)
    return [Interval("fleet", p.at - spec.prometheus.step_s, p.at, p.batch, p.throughput) for p in points]


def score_fresh(model, spec: LLMDeploymentSpec, kept: list[Observation], fresh: list[Interval],
                previous: Mapping[str, Any] | None) -> dict | None:
    """The scorecard with this refit's new evidence (its heaviest batch bin) scored against
    the prediction made from the evidence kept before it (the prior alone at first)."""
    bins = pool(fresh)
    if not bins:
        return dict(previous) if previous else None
    batch, observed, _, end, _ = max(bins.values(), key=lambda v: v[2])
    if end <= float((previous or {}).get("lastPointTime", 0)):
        return dict(previous) if previous else None
    row = predicted_at(model, spec, kept, batch)  # from the previous refit's curve, usually
    score = scorecard(previous, row["point"], row["lower"], row["upper"], observed)
    score["lastPointTime"] = end
    return score


def gather(spec: LLMDeploymentSpec, obs: Observations, evidence: Mapping[str, Any] | None,
           last_scaled: datetime | None, now: datetime):
    """This refit's believed intervals, the live points kept before them, and the evidence
    with them merged (``livepoints.EvidenceUpdate``).

    Samples within ``spec.warmup_s`` of the last scale, and (fleet-wide queries) within one
    rate window of a series that began inside the queried range, are left out: they mix
    replicas that were not yet serving into the rate.
    """
    warmup_until = last_scaled.timestamp() + spec.warmup_s if last_scaled is not None else 0.0
    if obs.throughput and obs.window_start is not None \
            and obs.throughput[0][0] > obs.window_start + spec.prometheus.step_s:
        warmup_until = max(warmup_until, obs.throughput[0][0] + spec.prometheus.rate_window_s)
    key = regime(spec, obs.template)
    fresh = believed_intervals(spec, obs, warmup_until) if obs.metrics_ok else []
    kept = [Observation(at, b, t, w) for at, b, t, w in evidence_points(evidence)] \
        if evidence and evidence.get("regime") == key else []
    return fresh, kept, accumulate(evidence, fresh, key, now.timestamp())


def step(model, spec: LLMDeploymentSpec, observations: Observations, score: Mapping[str, Any] | None,
         last_scaled: datetime | None, now: datetime, evidence: Mapping[str, Any] | None = None,
         curve: Mapping[str, Any] | None = None, last_batch_change: datetime | None = None) -> Decision:
    """One refit: believed intervals, accumulated evidence, scorecard, plan, scale. The live points are the deployment's accumulated
    evidence (``evidence``, from the status, with this refit's intervals merged), so what a
    deployment taught survives the window, a metrics outage and a restart.
    """
    if spec.model_facts is not None or spec.accelerator_facts is not None:
        # The resource's own facts: a view of the shared model, which stays untouched.
        model = model.with_catalog(model.catalog_.extend(accelerators=spec.accelerator_facts, models=spec.model_facts))
    fresh, kept, update = gather(spec, observations, evidence, last_scaled, now)
    points = [Observation(at, b, t, w) for at, b, t, w in evidence_points(update.evidence)]
    new_score = score_fresh(model, spec, kept, fresh, score)
    demand, forecast = observations.demand, None
    if spec.forecast is not None:
        wait_s = (spec.objectives.max_ttft_ms or 0.0) / 1000.0
        planned = planned_demand(demand, observations.history or (), observations.fine or (), now.timestamp(),
                                 spec.forecast.horizon_s, spec.forecast.quantile, wait_s, spec.policy.headroom)
        demand, forecast = planned.demand, planned.as_status(spec.forecast.horizon_s, spec.forecast.quantile)
    result = recommend(model, spec, demand, points, headroom_included=forecast is not None)
    replicas, why = scale_decision(spec, result, observations.desired, last_scaled, now)
    set_batch, batch_why = batch_decision(model, spec, result, points, observations, last_batch_change, now)
    return Decision(points, new_score, result, replicas, why, update.evidence, update.reset, update.added_s,
                    own_curve(model, spec, points, curve), forecast, set_batch, batch_why)


#: A batch change needs a plan this confident...
BATCH_MIN_CONFIDENCE = 0.8
#: ...and this many seconds of the deployment's own evidence behind its curve.
BATCH_MIN_EVIDENCE_S = 600.0


def batch_decision(model, spec: LLMDeploymentSpec, result: Plan, points: list[Observation], obs: Observations,
                   last_change: datetime | None, now: datetime) -> tuple[int | None, str | None]:
    """The engine batch limit to set in the pod template, or None, with the reason (None
    when ``policy.applyBatch`` is off).

    Only in Apply mode, with a plan of at least ``BATCH_MIN_CONFIDENCE`` backed by
    ``BATCH_MIN_EVIDENCE_S`` of the deployment's own evidence (a rollout replaces every pod:
    the prior alone is not reason enough), never while the target rolls out, at most once per
    ``batchWindowSeconds``, and only when the plan's batch is predicted to serve at least
    ``applyBatchMinGain`` more per replica than the limit in force, or the limit in force is
    predicted to miss the inter-token latency objective (both at the point prediction).
    """
    if not spec.apply_batch:
        return None, None
    if spec.mode != "Apply":
        return None, "Recommend mode: the batch limit is never set"
    if result.outcome != "ok" or not result.batch_size:
        return None, f"no recommendation ({result.outcome})"
    if result.confidence < max(spec.min_confidence, BATCH_MIN_CONFIDENCE):
        return None, f"confidence {result.confidence:.2f} below {max(spec.min_confidence, BATCH_MIN_CONFIDENCE):.2f}"
    evidence_s = sum(p.seconds or 0.0 for p in points)
    if evidence_s < BATCH_MIN_EVIDENCE_S:
        return None, f"{evidence_s:.0f} s of the deployment's own evidence, below {BATCH_MIN_EVIDENCE_S:.0f} s"
    current, new = obs.batch_limit, int(result.batch_size)
    if current is None:
        return None, "the engine's batch limit was not found in the target's pod template"
    if new == current:
        return None, f"the batch limit is already {current}"
    if obs.rolling_out:
        return None, "the target is rolling out"
    if last_change is not None and (now - last_change).total_seconds() < spec.batch_window_s:
        return None, f"within the {spec.batch_window_s}s batch window of the last change"
    row = predicted_at(model, spec, points, float(current))
    now_itl_ms = 1000.0 * current / float(row["point"]) if row["point"] > 0 else math.inf
    limit = spec.objectives.max_itl_ms
    if limit is not None and now_itl_ms > limit:
        return new, f"batch limit {current} -> {new}: at {current} the inter-token latency ({now_itl_ms:.1f} ms) " \
                    f"misses {limit:g} ms"
    gain = float(result.throughput_per_replica["value"]) / float(row["point"]) - 1 if row["point"] > 0 else math.inf
    if gain < spec.apply_batch_min_gain:
        return None, f"batch {new} would gain {gain:+.1%} per replica over {current}, below applyBatchMinGain " \
                     f"{spec.apply_batch_min_gain:.0%}"
    return new, f"batch limit {current} -> {new}: {gain:+.1%} throughput per replica"


#: The own curve is fitted again when the evidence behind it grew by this share, or its
#: points changed in number (a fit costs about a prediction and a half).
REFIT_CURVE_GROWTH = 0.1


def own_curve(model, spec: LLMDeploymentSpec, points: list[Observation],
              previous: Mapping[str, Any] | None = None) -> dict | None:
    """The deployment's own analytical curve ``c - a exp(-b batch)``: fitted to its curve as
    the evidence updated the learned prior, over batches up to the policy's limit (None
    without evidence); ``previous`` (the last one published) is kept while the evidence
    behind it has not grown by ``REFIT_CURVE_GROWTH`` nor changed its points."""
    if not points:
        return None
    seconds = sum(p.seconds or 0.0 for p in points)
    if previous and previous.get("livePoints") == len(points) \
            and abs(seconds - float(previous.get("evidenceSeconds") or 0.0)) < REFIT_CURVE_GROWTH * seconds:
        return dict(previous)
    row = model.curve_parameters(spec.deployment.query([1.0]), live=live_table(spec, points),
                                 max_batch=float(spec.policy.max_batch)).iloc[0]
    return {"a": round(float(row["a"]), 3), "b": round(float(row["b"]), 6), "c": round(float(row["c"]), 3),
            "fitMAPE": round(float(row["fit_mape"]), 4), "livePoints": len(points),
            "evidenceSeconds": round(sum(p.seconds or 0.0 for p in points), 1)}
