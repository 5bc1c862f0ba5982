"""Apply-mode safety under flapping metrics: whatever sequence of recommendations and
confidences arrives, the scale decisions never leave [min, max], never act below the
confidence threshold, never move more than maxStep, and never act twice inside the
stabilisation window. Property-based over random sequences (hypothesis)."""

import copy
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ala.planner import Plan
from ala_operator.refit import scale_decision
from ala_operator.spec import parse_spec

pytestmark = pytest.mark.faults

T0 = datetime(2026, 11, 24, tzinfo=timezone.utc)

steps = st.lists(st.tuples(
    st.sampled_from(["ok", "ok", "ok", "insufficient_data", "infeasible"]),  # outcome
    st.integers(0, 500),                                                        # recommended target
    st.floats(0.0, 1.0, allow_nan=False),                                       # confidence
    st.integers(1, 120),                                                        # seconds to the next refit
), min_size=1, max_size=60)


@settings(max_examples=300, deadline=None)
@given(steps=steps, low=st.integers(0, 5), span=st.integers(0, 40), max_step=st.integers(1, 6),
       window=st.integers(0, 600), threshold=st.floats(0.0, 1.0), start=st.integers(0, 60))
def test_decisions_stay_inside_every_guard(examples, steps, low, span, max_step, window, threshold, start):
    raw = copy.deepcopy(examples["sglang-llama-70b-apply"]["spec"])
    raw["policy"].update(minReplicas=low, maxReplicas=max(low, 1) + span, maxStep=max_step,
                         stabilizationWindowSeconds=window, minConfidence=threshold)
    spec = parse_spec(raw)
    high = spec.policy.max_replicas
    current, now, last_scaled = start, T0, None
    for outcome, target, confidence, gap in steps:
        plan = Plan(outcome, {}, 1000.0, batch_size=32 if outcome == "ok" else None,
                    replicas={"target": target} if outcome == "ok" else None,
                    confidence=confidence if outcome == "ok" else None)
        replicas, why = scale_decision(spec, plan, current, last_scaled, now)
        if replicas is not None:
            assert outcome == "ok" and confidence >= threshold, why
            assert low <= replicas <= high, (replicas, low, high)
            inside = min(max(current, low), high)
            assert abs(replicas - current) <= max_step or replicas == inside, (current, replicas, why)
            assert last_scaled is None or (now - last_scaled).total_seconds() >= window, why
            assert replicas != current
            current, last_scaled = replicas, now
        now += timedelta(seconds=gap)


def test_recommend_mode_never_decides(examples):
    spec = parse_spec(examples["vllm-llama-8b"]["spec"])
    plan = Plan("ok", {}, 1000.0, batch_size=32, replicas={"target": 9}, confidence=1.0)
    assert scale_decision(spec, plan, 1, None, T0)[0] is None
