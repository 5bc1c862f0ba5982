"""Handlers called as plain functions with a real kopf.Patch."""

import copy
import logging
from datetime import datetime, timezone
from types import SimpleNamespace

import kopf
import pytest

from ala_operator.handlers import check_spec, refit, retarget
from ala_operator.kube import ClusterError, TargetNotFound

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=timezone.utc)
LOG = logging.getLogger("test")


def test_the_timer_sets_spec_valid_and_generation_once_per_generation(examples):
    """An invalid spec: SpecValid=False naming the field, observedGeneration, nothing else
    (the stored recommendation stays); the same spec at the next tick writes nothing."""
    spec = copy.deepcopy(examples["vllm-llama-8b"]["spec"])
    spec["hardware"]["accelerator"] = "TPU-v9"
    previous = {"recommendation": {"replicas": {"target": 7}},
                "conditions": [{"type": "RecommendationProvided", "status": "True", "reason": "Recommended",
                                "message": "", "lastTransitionTime": "2026-11-24T11:00:00Z", "observedGeneration": 2}]}
    patch = kopf.Patch()
    out = refit(spec=spec, meta={"generation": 4}, status=previous, patch=patch, logger=LOG, memo=None, now=NOW)
    assert out == {"skipped": "invalid spec", "reason": "UnknownAccelerator"}
    assert set(patch["status"]) == {"conditions", "observedGeneration"} and patch["status"]["observedGeneration"] == 4
    conditions = {c["type"]: c for c in patch["status"]["conditions"]}
    assert conditions["SpecValid"]["status"] == "False" and conditions["SpecValid"]["observedGeneration"] == 4
    assert conditions["SpecValid"]["message"].startswith("spec.hardware.accelerator:")
    assert conditions["RecommendationProvided"]["lastTransitionTime"] == "2026-11-24T11:00:00Z"
    again = kopf.Patch()
    refit(spec=spec, meta={"generation": 4}, status={**previous, **patch["status"]}, patch=again, logger=LOG,
          memo=None, now=NOW)
    assert not again, "an unchanged invalid spec is not rewritten at every tick"


def test_check_spec_only_reports(examples):
    spec = copy.deepcopy(examples["vllm-llama-8b"]["spec"])
    assert check_spec(spec=spec, meta={"generation": 3}, logger=LOG) == {"valid": True}
    spec["hardware"]["accelerator"] = "TPU-v9"
    assert check_spec(spec=spec, meta={"generation": 4}, logger=LOG) == {"valid": False,
                                                                          "reason": "UnknownAccelerator"}


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
