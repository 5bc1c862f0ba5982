"""Handlers called as plain functions with a real kopf.Patch."""

import copy
import logging
from datetime import datetime, timezone

import kopf

from ala_operator.handlers import check_spec

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=timezone.utc)
LOG = logging.getLogger("test")


def test_valid_spec_sets_condition_and_generation(examples):
    patch = kopf.Patch()
    out = check_spec(spec=examples["vllm-llama-8b"]["spec"], meta={"generation": 3}, status={}, patch=patch,
                     logger=LOG, now=NOW)
    assert out == {"valid": True}
    (cond,) = patch["status"]["conditions"]
    assert (cond["type"], cond["status"], cond["observedGeneration"]) == ("SpecValid", "True", 3)
    assert patch["status"]["observedGeneration"] == 3


def test_invalid_spec_names_the_field_and_keeps_the_rest(examples):
    spec = copy.deepcopy(examples["vllm-llama-8b"]["spec"])
    spec["hardware"]["accelerator"] = "TPU-v9"
    previous = {"recommendation": {"replicas": {"target": 7}},
                "conditions": [{"type": "RecommendationProvided", "status": "True", "reason": "Recommended",
                                "message": "", "lastTransitionTime": "2026-11-24T11:00:00Z", "observedGeneration": 2}]}
    patch = kopf.Patch()
    out = check_spec(spec=spec, meta={"generation": 4}, status=previous, patch=patch, logger=LOG, now=NOW)
    assert out == {"valid": False, "reason": "UnknownAccelerator"}
    conditions = {c["type"]: c for c in patch["status"]["conditions"]}
    assert conditions["SpecValid"]["status"] == "False"
    assert conditions["SpecValid"]["message"].startswith("spec.hardware.accelerator:")
    assert conditions["RecommendationProvided"]["lastTransitionTime"] == "2026-11-24T11:00:00Z"
    assert "recommendation" not in patch["status"]  # the last good recommendation stays
