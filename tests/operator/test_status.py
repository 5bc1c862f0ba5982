from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from ala.planner import Deployment, Objectives, Policy, choose
from ala_operator.constants import ANNOTATION_BATCH, ANNOTATION_REPLICAS
from ala_operator.status import annotations, plan_conditions, recommendation, set_condition

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=timezone.utc)
DEP = Deployment("meta-llama/Llama-3.1-8B-Instruct", "H100", output_tokens=256)


def _plan(lower_scale=1.0):
    bb = np.array([1.0, 8, 32, 64])
    lower = np.minimum(100 * bb, 3200.0) * lower_scale
    return choose(bb, 1.25 * np.minimum(100 * bb, 3200.0), lower, 1.5 * np.minimum(100 * bb, 3200.0),
                  np.full(4, 0.7), DEP, 32000.0, Objectives(), Policy(headroom=0.0), 2.0, "given")


def test_transition_time_moves_only_when_status_flips():
    c = set_condition(None, "SpecValid", True, "Valid", "ok", NOW, 1)
    later = NOW + timedelta(minutes=5)
    same = set_condition(c, "SpecValid", True, "Valid", "still ok", later, 2)
    assert same[0]["lastTransitionTime"] == "2026-11-24T12:00:00Z" and same[0]["observedGeneration"] == 2
    flipped = set_condition(same, "SpecValid", False, "UnknownModel", "spec.model: no", later, 3)
    assert flipped[0]["lastTransitionTime"] == "2026-11-24T12:05:00Z" and flipped[0]["status"] == "False"
    with pytest.raises(ValueError):
        set_condition(c, "Happy", True, "X", "", NOW, 1)


def test_conditions_keep_others_and_a_stable_order():
    c = set_condition(None, "RecommendationProvided", True, "Recommended", "", NOW, 1)
    c = set_condition(c, "SpecValid", True, "Valid", "", NOW, 1)
    assert [x["type"] for x in c] == ["SpecValid", "RecommendationProvided"]


def test_recommendation_has_the_vpa_shape():
    rec = recommendation(_plan(), NOW)
    assert rec["replicas"] == {"target": 10, "lowerBound": 7, "upperBound": 13, "uncappedTarget": 10}
    assert rec["batchSize"] == 32 and rec["confidence"] == 0.7
    assert rec["throughputPerReplica"]["lower"] == 3200.0 and rec["cost"]["priceSource"] == "given"


def test_insufficient_data_is_a_condition_not_a_default():
    plan = _plan(lower_scale=0.1)
    assert plan.outcome == "insufficient_data"
    rec = recommendation(plan, NOW)
    assert rec["replicas"] is None
    cond = plan_conditions(None, plan, 0.5, NOW, 1)
    assert cond[0]["reason"] == "InsufficientData" and cond[0]["status"] == "False"
    assert annotations(plan, NOW)[ANNOTATION_REPLICAS] is None


def test_low_confidence_condition_and_annotations():
    cond = plan_conditions(None, _plan(), 0.8, NOW, 4)
    low = next(c for c in cond if c["type"] == "LowConfidence")
    assert low["status"] == "True" and low["reason"] == "BelowThreshold"
    ann = annotations(_plan(), NOW)
    assert ann[ANNOTATION_REPLICAS] == "10" and ann[ANNOTATION_BATCH] == "32"


def test_a_plan_without_a_recommendation_removes_the_last_one():
    """Written as a merge patch (RFC 7386, as the operator writes status), a non-ok plan
    leaves none of an earlier recommendation's numbers behind."""
    from ala_operator.devstack.emulator import merge_patch
    from ala_operator.status import RECOMMENDATION_FIELDS

    earlier = recommendation(_plan(), NOW)
    assert earlier["replicas"] and earlier["batchSize"]
    infeasible = _plan(lower_scale=0.1)
    assert infeasible.outcome != "ok"
    now = recommendation(infeasible, NOW)
    merged = merge_patch({"recommendation": earlier}, {"recommendation": now})
    # What is left is this plan's own answer and nothing of the earlier one's.
    assert merged["recommendation"] == {k: v for k, v in now.items() if v is not None}
    assert "replicas" not in merged["recommendation"] and now["replicas"] is None
    assert set(RECOMMENDATION_FIELDS) <= set(now)


def test_a_deployment_that_does_not_fit_says_so_in_its_condition():
    from datetime import datetime, timezone

    from ala.planner import Plan
    from ala_operator.status import plan_conditions, recommendation

    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    plan = Plan(outcome="infeasible", deployment={}, demand_tokens_per_s=1.0, batch_limited_by="memory",
                reasons=["141 GB of weights do not fit the 70 GB usable on 1x H100; 4x H100 would hold it"],
                memory={"weights_gb": 141.1, "usable_gb": 70.0, "kv_gb_per_sequence": 0.4, "max_batch": 0,
                        "min_accelerators": 4, "tokens_assumed": False})
    cond = plan_conditions([], plan, 0.5, now, 1)[0]
    assert cond["status"] == "False" and cond["reason"] == "DoesNotFitMemory" and "4x H100" in cond["message"]
    rec = recommendation(plan, now)
    assert rec["memory"]["minAccelerators"] == 4 and rec["batchSize"] is None and rec["replicas"] is None
