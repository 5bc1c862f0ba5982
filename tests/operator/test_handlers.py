"""Handlers called as plain functions with a real kopf.Patch."""

import copy
import logging
from datetime import datetime, timezone
from types import SimpleNamespace

import kopf
import pytest

from ala_operator.handlers import check_spec, retarget
from ala_operator.kube import ClusterError, TargetNotFound

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


class _Annotations:
    def __init__(self, refuse=None):
        self.calls, self.refuse = [], refuse

    def annotate(self, *args):
        if self.refuse:
            raise self.refuse
        self.calls.append(args)


def test_a_new_target_clears_the_old_ones_annotations_only():
    memo = SimpleNamespace(cluster=_Annotations())
    retarget(old={"apiVersion": "apps/v1", "kind": "Deployment", "name": "old"},
             new={"apiVersion": "apps/v1", "kind": "Deployment", "name": "new"}, meta={"namespace": "llm"}, memo=memo,
             logger=LOG)
    ((namespace, api_version, kind, name, removed),) = memo.cluster.calls
    assert (namespace, kind, name) == ("llm", "Deployment", "old")
    assert set(removed) >= {"ala.io/recommended-replicas", "ala.io/recommended-batch-size"}
    assert set(removed.values()) == {None}
    same = SimpleNamespace(cluster=_Annotations())
    retarget(old={"name": "same"}, new={"name": "same", "apiVersion": "apps/v1"}, meta={"namespace": "llm"},
             memo=same, logger=LOG)
    assert same.cluster.calls == []


def test_an_old_target_that_is_gone_is_fine_and_other_refusals_are_retried():
    gone = SimpleNamespace(cluster=_Annotations(TargetNotFound("Deployment llm/old not found", status=404)))
    retarget(old={"name": "old"}, new={"name": "new"}, meta={"namespace": "llm"}, memo=gone, logger=LOG)
    busy = SimpleNamespace(cluster=_Annotations(ClusterError("Deployment llm/old: 503", status=503)))
    with pytest.raises(kopf.TemporaryError, match="old target"):
        retarget(old={"name": "old"}, new={"name": "new"}, meta={"namespace": "llm"}, memo=busy, logger=LOG)
