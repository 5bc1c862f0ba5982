"""``refit.step``, the one decision both the operator and the trace replay make.

The handler fetches Observations and publishes the Decision; the replay builds the
Observations from its simulated fleet. Here both are driven on the same input and must
decide the same: same live points, same scorecard, same plan, same scale.
"""

import logging
import pickle
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import kopf
import numpy as np
import pandas as pd
import pytest

from ala_operator import handlers, refit
from ala_operator.devstack import replay
from ala_operator.metrics import OperatorMetrics
from ala_operator.refit import Observations, step
from ala_operator.spec import parse_spec

BASE = datetime(2026, 1, 1, tzinfo=timezone.utc)


class Spy:
    """Records every call of ``refit.step`` and what it decided."""

    def __init__(self):
        self.calls = []

    def __call__(self, *args, **kwargs):
        decision = refit.step(*args, **kwargs)
        self.calls.append((args, decision))
        return decision


class SeriesClient:
    """Answers the operator's queries with given series (what Prometheus would return)."""

    def __init__(self, observations: Observations):
        self.obs = observations

    def range(self, query, start, end, step_s):
        if query.startswith("count("):
            series = self.obs.serving
        elif "avg_over_time" in query:
            series = self.obs.batch
        else:
            series = self.obs.throughput
        return [({}, list(series))]

    def scalar(self, query):
        return self.obs.demand


def _replay_input(truth_per_replica, replicas=3, running=24, seconds=420):
    """A replay's samples (t, tokens/s, running, serving) and its trace of arrivals."""
    samples = [(float(t), replicas * truth_per_replica * (1 + 0.05 * np.sin(t / 17)), float(replicas * running),
                replicas) for t in range(seconds)]
    trace = pd.DataFrame({"timestamp_s": np.arange(0, seconds, 0.5), "input_tokens": 1000.0,
                          "output_tokens": 300.0})
    return samples, trace


def test_handler_and_replay_decide_the_same(small_model):
    assert handlers.step is refit.step and replay.step is refit.step  # one function, called by both
    scenario = replay.default_scenarios()[0]
    spec_dict = replay._spec(scenario, 256, scenario.max_replicas)
    spec = parse_spec(spec_dict)
    per_replica = float(small_model.predict(spec.deployment.query([24.0]))[0]) * 0.8
    samples, trace = _replay_input(per_replica)
    now, desired = 420.0, 3
    spy_replay, spy_handler = Spy(), Spy()
    replay.step, original = spy_replay, replay.step
    try:
        fleet = SimpleNamespace(queue=[], batch=64, desired=lambda: desired, rolling_out=lambda at: False)
        state = {"score": None, "last_scaled": None, "evidence": None, "last_batch": None, "curve": None}
        replay._ala_refit(small_model, spec, samples, trace, trace["timestamp_s"].to_numpy(), now, fleet, state,
                          BASE, None)
    finally:
        replay.step = original
    (r_args, r_decision), = spy_replay.calls
    observations = r_args[2]
    assert r_decision.fresh_s >= 300 and r_decision.points

    memo = SimpleNamespace(model=small_model, metrics=OperatorMetrics(),
                           cluster=SimpleNamespace(get_scale=lambda *a: (observations.desired, observations.ready),
                                                   annotate=lambda *a: None, patch_status=lambda *a, **k: None,
                                                   set_scale=lambda *a: None, engine_batch=lambda *a: (64, False)),
                           prometheus=lambda s, ns: SeriesClient(observations))
    handlers.step, original = spy_handler, handlers.step
    try:
        patch = kopf.Patch()
        out = handlers.refit(spec=spec_dict, meta={"namespace": "llm", "name": scenario.name, "generation": 1},
                             status={}, patch=patch, logger=logging.getLogger("test"), memo=memo,
                             now=BASE + timedelta(seconds=now))
    finally:
        handlers.step = original
    (h_args, h_decision), = spy_handler.calls
    fetched = h_args[2]
    assert (fetched.throughput, fetched.batch, fetched.serving, fetched.demand, fetched.desired, fetched.ready) == (
        observations.throughput, observations.batch, observations.serving, observations.demand,
        observations.desired, observations.ready)
    assert h_decision.points == r_decision.points
    assert h_decision.score == r_decision.score
    assert (h_decision.plan.batch_size, h_decision.plan.replicas) == (r_decision.plan.batch_size,
                                                                       r_decision.plan.replicas)
    assert h_decision.scale_to == r_decision.scale_to and h_decision.why == r_decision.why
    assert (h_decision.set_batch, h_decision.batch_why) == (r_decision.set_batch, r_decision.batch_why)
    assert out["scaled_to"] == r_decision.scale_to
    assert patch["status"]["recommendation"]["batchSize"] == r_decision.plan.batch_size


def test_step_is_pure(small_model, examples):
    """Same input, same decision; the shared model is read, never written."""
    spec = parse_spec(examples["vllm-llama-8b"]["spec"])
    now = BASE + timedelta(minutes=10)
    t0 = now.timestamp() - 300
    curve = small_model.predict(spec.deployment.query([16.0, 32.0]))
    obs = Observations(desired=2, ready=2, throughput=[(t0 + 30 * i, 2 * 1.3 * curve[i % 2]) for i in range(10)],
                       batch=[(t0 + 30 * i, 2 * [16.0, 32.0][i % 2]) for i in range(10)], window_start=t0)
    before = pickle.dumps(small_model)
    first = step(small_model, spec, obs, None, None, now)
    second = step(small_model, spec, obs, None, None, now)
    assert pickle.dumps(small_model) == before
    assert first.points == second.points and first.score == second.score and len(first.points) == 2  # two batches
    assert first.plan.replicas == second.plan.replicas and first.plan.batch_size == second.plan.batch_size
    # A prior-only step (no live point) plans from the curve alone and differs: the
    # live points moved the curve up by 30%, so fewer replicas.
    prior = step(small_model, spec, Observations(desired=2, ready=2, metrics_ok=False), None, None, now)
    assert prior.points == [] and prior.plan.replicas["target"] > first.plan.replicas["target"]


def test_step_leaves_out_warm_up_and_a_series_that_began_inside_the_window(small_model, examples):
    spec = parse_spec(examples["vllm-llama-8b"]["spec"])
    now = BASE + timedelta(minutes=10)
    t0 = now.timestamp() - 300
    series = [(t0 + 30 * i, 5000.0) for i in range(10)]
    batch = [(t, 40.0) for t, _ in series]
    whole = step(small_model, spec, Observations(2, 2, series, batch, window_start=t0), None, None, now)
    assert whole.fresh_s == 300 and len(whole.points) == 1  # ten 30 s intervals, one batch bin
    scaled = now - timedelta(seconds=120)  # warm-up (120 s) lasts until now: nothing is believed
    after_scale = step(small_model, spec, Observations(2, 2, series, batch, window_start=t0), None, scaled, now)
    assert after_scale.fresh_s == 0 and after_scale.points == []
    late = step(small_model, spec, Observations(2, 2, series[4:], batch[4:], window_start=t0), None, None, now)
    assert late.fresh_s == 60  # only the samples a rate window after the series began


def test_the_own_curve_is_fitted_again_only_when_the_evidence_grew(examples):
    spec = parse_spec(examples["vllm-llama-8b"]["spec"])

    class Counting:
        calls = 0

        def curve_parameters(self, *args, **kwargs):
            Counting.calls += 1
            return pd.DataFrame({"a": [900.0], "b": [0.05], "c": [1000.0], "fit_mape": [0.01]})

    points = [refit.Observation(0.0, 16.0, 700.0, 600.0), refit.Observation(0.0, 32.0, 900.0, 600.0)]
    first = refit.own_curve(Counting(), spec, points)
    assert Counting.calls == 1 and first["evidenceSeconds"] == 1200.0 and first["livePoints"] == 2
    grown_a_little = [refit.Observation(0.0, 16.0, 700.0, 660.0), points[1]]
    assert refit.own_curve(Counting(), spec, grown_a_little, first) == first and Counting.calls == 1
    grown = [refit.Observation(0.0, 16.0, 700.0, 900.0), points[1]]
    assert refit.own_curve(Counting(), spec, grown, first)["evidenceSeconds"] == 1500.0 and Counting.calls == 2
    assert refit.own_curve(Counting(), spec, points[:1], first)["livePoints"] == 1 and Counting.calls == 3


def _apply_batch_spec(examples, **policy):
    raw = dict(examples["vllm-llama-8b"]["spec"])
    raw["policy"] = {**(raw.get("policy") or {}), "mode": "Apply", "applyBatch": True, "minConfidence": 0.0,
                     **policy}
    return parse_spec(raw)


def test_the_batch_limit_changes_only_on_enough_evidence_outside_rollouts_and_the_window(small_model, examples):
    spec = _apply_batch_spec(examples)
    now = BASE + timedelta(hours=5)
    # A curve the deployment measured for an hour at each of several batches, well above the prior.
    grid = [8.0, 16.0, 32.0, 64.0, 128.0]
    prior = small_model.predict(spec.deployment.query(grid))
    evidence = [refit.Observation(0.0, b, 1.2 * t, 3600.0) for b, t in zip(grid, prior)]
    result = refit.recommend(small_model, spec, 20000.0, evidence)
    assert result.outcome == "ok" and result.batch_size
    obs = Observations(desired=2, ready=2, batch_limit=4)

    def decide(points=evidence, o=obs, last=None, s=spec):
        return refit.batch_decision(small_model, s, result, points, o, last, now)

    new, why = decide()
    assert new == result.batch_size and "4 -> " in why
    assert decide(points=[])[0] is None and "own evidence" in decide(points=[])[1]  # the prior alone: never
    assert decide(o=Observations(2, 2, batch_limit=4, rolling_out=True)) == (None, "the target is rolling out")
    assert decide(last=now - timedelta(minutes=10))[0] is None  # within batchWindowSeconds (3600)
    assert decide(o=Observations(2, 2, batch_limit=None))[0] is None
    assert decide(o=Observations(2, 2, batch_limit=result.batch_size))[0] is None
    recommend_only = parse_spec({**examples["vllm-llama-8b"]["spec"], "policy": {"applyBatch": True}})
    assert "Recommend mode" in decide(s=recommend_only)[1]
    off = parse_spec({**examples["vllm-llama-8b"]["spec"], "policy": {"mode": "Apply"}})
    assert decide(s=off) == (None, None)
    # A small predicted gain is not worth a rollout.
    near = Observations(2, 2, batch_limit=max(1, int(result.batch_size * 0.9)))
    strict = _apply_batch_spec(examples, applyBatchMinGain=2.0)
    assert decide(o=near, s=strict)[0] is None and "applyBatchMinGain" in decide(o=near, s=strict)[1]


def test_the_predictive_step_sizes_for_the_forecast_and_says_which_term_decided(small_model, examples):
    raw = dict(examples["vllm-llama-8b"]["spec"])
    raw["demand"] = {"query": "sum(rate(requests[5m])) * 200"}
    raw["policy"] = {**(raw.get("policy") or {}), "forecast": {"model": "Seasonal", "horizonSeconds": 900}}
    spec = parse_spec(raw)
    now = BASE + timedelta(days=3, hours=11)
    # Three days of a daily cycle peaking at noon (20,000 tokens/s mean); now is 11:00.
    t = now.timestamp() - 3 * 86400 + 600 * np.arange(1, 3 * 144 + 1)
    history = [(x, 20000 * (1 + 0.5 * np.sin(2 * np.pi * (x / 86400 - 0.25)))) for x in t]
    quiet = Observations(desired=2, ready=2, demand=1000.0, metrics_ok=False, history=history, fine=[])
    decision = step(small_model, spec, quiet, None, None, now)
    assert decision.forecast["decidedBy"] in ("forecast", "floor") and decision.forecast["method"] == "seasonal"
    assert decision.plan.demand_tokens_per_s == pytest.approx(decision.forecast["plannedTokensPerSecond"])
    assert decision.plan.demand_tokens_per_s > 29000  # the coming hour's peak (about 29,800), not the 1000 now
    plain = step(small_model, parse_spec({**raw, "policy": {}}), quiet, None, None, now)
    assert plain.forecast is None and plain.plan.replicas["target"] < decision.plan.replicas["target"]
