import copy
from datetime import datetime, timedelta, timezone

import numpy as np

from ala.planner import Deployment, Objectives, Policy, choose
from ala_operator.refit import Observation, live_points, recommend, scale_decision, scorecard
from ala_operator.spec import parse_spec

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=timezone.utc)


def _spec(examples, **policy):
    spec = copy.deepcopy(examples["sglang-llama-70b-apply"]["spec"])
    spec["policy"].update(policy)
    return parse_spec(spec)


def _plan(confidence=0.9, target_scale=1.0):
    bb = np.array([1.0, 8, 32])
    lower = np.array([100.0, 800, 2000]) / target_scale
    dep = Deployment("meta-llama/Llama-3.3-70B-Instruct", "H100", 4, output_tokens=512)
    return choose(bb, lower * 1.2, lower, lower * 1.4, np.full(3, confidence), dep, 20000.0, Objectives(),
                  Policy(headroom=0.0), None, "none")


def test_live_points_pair_by_time_per_replica_and_skip_warmup():
    thpt = [(0.0, 9000.0), (30.0, 12000.0), (60.0, 0.0), (90.0, 15000.0)]
    batch = [(0.0, 60.0), (30.0, 90.0), (60.0, 0.0), (90.0, 120.0)]
    points = live_points(thpt, batch, ready_replicas=3, warmup_until=10.0)
    assert points == [Observation(30.0, 30.0, 4000.0), Observation(90.0, 40.0, 5000.0)]
    assert live_points(thpt, batch, ready_replicas=0, warmup_until=0) == []


def test_live_points_divide_by_the_replicas_serving_at_each_instant():
    # A scale-up from 1 to 3 inside the window: each sample uses its own count, and a
    # sample with no count (no series had traffic) is left out rather than guessed.
    thpt = [(0.0, 3000.0), (30.0, 9000.0), (60.0, 9000.0)]
    batch = [(0.0, 30.0), (30.0, 90.0), (60.0, 90.0)]
    serving = [(0.0, 1.0), (30.0, 3.0)]
    points = live_points(thpt, batch, ready_replicas=3, warmup_until=0.0, replicas=serving)
    assert points == [Observation(0.0, 30.0, 3000.0), Observation(30.0, 30.0, 3000.0)]


def test_scorecard_rolls():
    s = scorecard(None, 110.0, 90.0, 130.0, 100.0)
    assert s == {"ape": 0.1, "coverage": 1.0, "samples": 1}
    s = scorecard(s, 150.0, 140.0, 160.0, 100.0)
    assert s["samples"] == 2 and s["coverage"] == 0.9 and s["ape"] == 0.14


def test_recommend_mode_never_scales(examples):
    spec = _spec(examples, mode="Recommend")
    assert scale_decision(spec, _plan(), 2, None, NOW)[0] is None


def test_apply_respects_confidence_window_step_and_bounds(examples):
    spec = _spec(examples)  # minConfidence 0.6, min 2, max 16, window 600 s, maxStep 2
    plan = _plan()
    assert plan.replicas["target"] == 10
    assert scale_decision(spec, _plan(confidence=0.5), 2, None, NOW)[0] is None
    assert scale_decision(spec, plan, 2, None, NOW)[0] == 4  # at most maxStep at once
    assert scale_decision(spec, plan, 2, NOW - timedelta(seconds=60), NOW)[0] is None  # stabilising
    assert scale_decision(spec, plan, 2, NOW - timedelta(seconds=601), NOW)[0] == 4
    assert scale_decision(spec, plan, 10, None, NOW)[0] is None  # already there
    big = _plan(target_scale=4.0)  # 40 replicas wanted: capped at maxReplicas 16
    assert big.replicas["target"] == 40
    assert scale_decision(spec, big, 15, None, NOW)[0] == 16
    small = _plan(target_scale=0.1)  # 1 replica wanted: never below minReplicas 2
    assert scale_decision(spec, small, 3, None, NOW)[0] == 2


def test_recommend_uses_live_points(small_model, examples):
    spec = parse_spec(examples["vllm-llama-8b"]["spec"])
    prior = recommend(small_model, spec, None, [])
    curve = small_model.predict(spec.deployment.query([16.0, 32.0, 64.0]))
    fast = [Observation(float(i), b, 1.5 * t) for i, (b, t) in enumerate(zip([16.0, 32.0, 64.0], curve))] * 3
    after = recommend(small_model, spec, None, fast)
    assert after.outcome == prior.outcome == "ok"
    assert after.replicas["target"] < prior.replicas["target"]
    assert recommend(small_model, spec, None, []).replicas == prior.replicas  # nothing of `fast` was kept
