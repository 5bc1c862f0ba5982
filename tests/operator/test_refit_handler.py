"""The refit timer's body, called as a function with a kopf.Patch.

Kubernetes is a test double recording calls (unit tier); Prometheus is real HTTP on
loopback replaying recorded answers (see conftest); the model is the session's real fit.
"""

import copy
import math
import logging
from datetime import datetime, timezone
from types import SimpleNamespace

import kopf
import pytest

from ala_operator.handlers import refit
from ala_operator.kube import ClusterError
from ala_operator.metrics import OperatorMetrics
from ala_operator.prometheus import PrometheusClient

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=timezone.utc)
LOG = logging.getLogger("test")
META = {"namespace": "llm", "name": "llama", "generation": 2}


class FakeCluster:
    def __init__(self, desired=3, ready=3):
        self.desired, self.ready, self.calls = desired, ready, []

    def get_scale(self, *target):
        return self.desired, self.ready

    def set_scale(self, *args):
        self.calls.append(("set_scale", args))

    def annotate(self, *args):
        self.calls.append(("annotate", args))

    def patch_status(self, *args, resource_version=None):
        self.calls.append(("patch_status", args))
        return None


def _matrix(values):
    t0 = NOW.timestamp() - 300
    return {"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": {}, "values": [[t0 + 30 * i, str(v)] for i, v in enumerate(values)]}]}}


def _raw(tokens_per_s, batch, pods=1, samples=21, scrape_s=15, end=NOW):
    """Answers to the two raw-sample queries (token counter, running batch) of ``pods`` pods
    each serving ``tokens_per_s`` at ``batch``, scraped every ``scrape_s`` over the window."""
    t0 = end.timestamp() - scrape_s * (samples - 1)

    def matrix(value):
        return (200, {"status": "success", "data": {"resultType": "matrix", "result": [
            {"metric": {"__name__": "x", "namespace": "llm", "pod": f"p{i}"},
             "values": [[t0 + scrape_s * k, str(value(k))] for k in range(samples)]} for i in range(pods)]}})
    return [matrix(lambda k: 1e6 + tokens_per_s * scrape_s * k), matrix(lambda k: batch)]


def _memo(small_model, prom, cluster):
    return SimpleNamespace(model=small_model, metrics=OperatorMetrics(), cluster=cluster,
                           prometheus=lambda spec, ns: PrometheusClient(prom.url, retries=0))


def test_recommend_mode_publishes_and_never_scales(small_model, prom, examples):
    prom.answers["/api/v1/query"] = _raw(9300, 63)
    cluster = FakeCluster()
    patch = kopf.Patch()
    out = refit(spec=examples["vllm-llama-8b"]["spec"], meta=META, status={}, patch=patch, logger=LOG,
                memo=_memo(small_model, prom, cluster), now=NOW)
    assert out["metrics"] and out["outcome"] == "ok" and out["scaled_to"] is None
    status = patch["status"]
    assert status["recommendation"]["replicas"]["target"] >= 1
    assert {c["type"]: c["status"] for c in status["conditions"]}["MetricsAvailable"] == "True"
    assert status["scorecard"]["samples"] == 1 and status["lastRefitTime"] == "2026-11-24T12:00:00Z"
    assert [c[0] for c in cluster.calls] == ["annotate"]
    assert patch["metadata"]["annotations"]["ala.io/recommended-replicas"] == str(
        status["recommendation"]["replicas"]["target"])


def test_annotations_are_written_only_when_the_answer_changes(small_model, prom, examples):
    prom.answers["/api/v1/query"] = _raw(9300, 63)
    cluster = FakeCluster()
    first = kopf.Patch()
    refit(spec=examples["vllm-llama-8b"]["spec"], meta=META, status={}, patch=first, logger=LOG,
          memo=_memo(small_model, prom, cluster), now=NOW)
    written = dict(first["metadata"]["annotations"])
    assert [c[0] for c in cluster.calls] == ["annotate"]
    prom.answers["/api/v1/query"] = _raw(9300, 63)
    again = kopf.Patch()
    later = NOW.replace(minute=5)
    refit(spec=examples["vllm-llama-8b"]["spec"], meta={**META, "annotations": written},
          status={**first["status"]}, patch=again, logger=LOG, memo=_memo(small_model, prom, cluster), now=later)
    assert again["status"]["lastRefitTime"] == "2026-11-24T12:05:00Z"  # it did refit ...
    assert [c[0] for c in cluster.calls] == ["annotate"] and "annotations" not in (again.get("metadata") or {})


def test_apply_mode_scales_by_at_most_max_step(small_model, prom, examples):
    spec = copy.deepcopy(examples["sglang-llama-70b-apply"]["spec"])
    spec["policy"]["minConfidence"] = 0.0
    prom.answers["/api/v1/query"] = _raw(750, 20, pods=2)
    cluster = FakeCluster(desired=2, ready=2)
    patch = kopf.Patch()
    out = refit(spec=spec, meta=META, status={}, patch=patch, logger=LOG, memo=_memo(small_model, prom, cluster),
                now=NOW)
    target = patch["status"]["recommendation"]["replicas"]["target"]
    assert target > 4  # 20 req/s x 512 tokens needs far more than two replicas of 4x H100
    assert out["scaled_to"] == 4 and ("set_scale", ("llm", "apps/v1", "Deployment", "llama-70b-sglang", 4)) in cluster.calls
    assert patch["status"]["lastScaleTime"] == "2026-11-24T12:00:00Z"
    order = [c[0] for c in cluster.calls]
    assert order.index("patch_status") < order.index("set_scale"), "the scale must be recorded before it is made"
    assert cluster.calls[order.index("patch_status")][1] == (
        "llm", "llama", {"lastScaleTime": "2026-11-24T12:00:00Z",
                         "lastScale": {"from": 2, "to": 4, "time": "2026-11-24T12:00:00Z"}})


def test_a_failed_scale_puts_the_record_back(small_model, prom, examples):
    spec = copy.deepcopy(examples["sglang-llama-70b-apply"]["spec"])
    spec["policy"]["minConfidence"] = 0.0
    prom.answers["/api/v1/query"] = _raw(750, 20, pods=2)

    class Refusing(FakeCluster):
        def set_scale(self, *args):
            raise ClusterError("scale of Deployment llm/llama-70b-sglang: 503 Service Unavailable", status=503)

    earlier = {"lastScaleTime": "2026-11-24T10:00:00Z", "lastScale": {"from": 1, "to": 2,
                                                                      "time": "2026-11-24T10:00:00Z"}}
    patch = kopf.Patch()
    out = refit(spec=spec, meta=META, status=earlier, patch=patch, logger=LOG,
                memo=_memo(small_model, prom, Refusing(desired=2, ready=2)), now=NOW)
    assert out["scaled_to"] is None
    assert patch["status"]["lastScaleTime"] == earlier["lastScaleTime"]
    assert patch["status"]["lastScale"] == earlier["lastScale"]


def test_prometheus_down_keeps_the_last_recommendation(small_model, examples):
    cluster = FakeCluster()
    memo = SimpleNamespace(model=small_model, metrics=OperatorMetrics(), cluster=cluster,
                           prometheus=lambda spec, ns: PrometheusClient("http://127.0.0.1:9", retries=0))
    previous = {"recommendation": {"replicas": {"target": 7}}}
    patch = kopf.Patch()
    out = refit(spec=examples["vllm-llama-8b"]["spec"], meta=META, status=previous, patch=patch, logger=LOG,
                memo=memo, now=NOW)
    assert out == {"metrics": False, "reason": "PrometheusUnavailable"}
    cond = {c["type"]: c for c in patch["status"]["conditions"]}["MetricsAvailable"]
    assert cond["status"] == "False" and cond["reason"] == "PrometheusUnavailable"
    assert "recommendation" not in patch["status"] and cluster.calls == []


VALID = [{"type": "SpecValid", "status": "True", "reason": "Valid", "message": "spec accepted",
          "lastTransitionTime": "2026-11-24T11:00:00Z", "observedGeneration": 2}]


def test_waits_for_the_refit_interval(small_model, prom, examples):
    patch = kopf.Patch()
    out = refit(spec=examples["vllm-llama-8b"]["spec"], meta=META,
                status={"lastRefitTime": "2026-11-24T11:59:30Z", "conditions": VALID}, patch=patch, logger=LOG,
                memo=_memo(small_model, prom, FakeCluster()), now=NOW)
    assert out == {"skipped": "interval"} and not patch


def test_a_failed_refit_waits_out_the_interval_and_a_spec_edit_does_not(small_model, examples):
    """A metrics outage is retried once per refit interval, not at every timer tick (six
    status writes a minute per resource); an edited spec is acted on at the next tick."""
    memo = SimpleNamespace(model=small_model, metrics=OperatorMetrics(), cluster=FakeCluster(),
                           prometheus=lambda spec, ns: PrometheusClient("http://127.0.0.1:9", retries=0))
    status = {"recommendation": {"replicas": {"target": 7}}, "lastRefitTime": "2026-11-24T11:50:00Z",
              "observedGeneration": 2}
    patch = kopf.Patch()
    out = refit(spec=examples["vllm-llama-8b"]["spec"], meta=META, status=status, patch=patch, logger=LOG,
                memo=memo, now=NOW)
    assert out["metrics"] is False
    assert patch["status"]["lastAttemptTime"] == "2026-11-24T12:00:00Z" and patch["status"]["refitGeneration"] == 2
    after = {**status, **patch["status"]}
    ten_s_later = NOW.replace(second=10)
    assert refit(spec=examples["vllm-llama-8b"]["spec"], meta=META, status=after, patch=kopf.Patch(), logger=LOG,
                 memo=memo, now=ten_s_later) == {"skipped": "interval"}
    edited = refit(spec=examples["vllm-llama-8b"]["spec"], meta={**META, "generation": 3}, status=after,
                   patch=kopf.Patch(), logger=LOG, memo=memo, now=ten_s_later)
    assert edited != {"skipped": "interval"}
    # After the interval the failed refit is tried again.
    assert refit(spec=examples["vllm-llama-8b"]["spec"], meta=META, status=after, patch=kopf.Patch(), logger=LOG,
                 memo=memo, now=NOW.replace(minute=1, second=1)) != {"skipped": "interval"}


def test_no_series_is_garbage_and_keeps_the_last_recommendation(small_model, prom, examples):
    prom.answers["/api/v1/query"] = [(200, {"status": "success", "data": {"resultType": "matrix",
                                                                           "result": []}})]
    patch = kopf.Patch()
    out = refit(spec=examples["vllm-llama-8b"]["spec"], meta=META, status={"recommendation": {"batchSize": 8}},
                patch=patch, logger=LOG, memo=_memo(small_model, prom, FakeCluster()), now=NOW)
    assert out == {"metrics": False, "reason": "GarbageAnswer"}
    cond = {c["type"]: c for c in patch["status"]["conditions"]}["MetricsAvailable"]
    assert "matched no series" in cond["message"] and "recommendation" not in patch["status"]


def test_first_refit_without_metrics_recommends_from_the_prior_and_says_so(small_model, examples):
    cluster = FakeCluster()
    memo = SimpleNamespace(model=small_model, metrics=OperatorMetrics(), cluster=cluster,
                           prometheus=lambda spec, ns: PrometheusClient("http://127.0.0.1:9", retries=0))
    patch = kopf.Patch()
    out = refit(spec=examples["vllm-llama-8b"]["spec"], meta=META, status={}, patch=patch, logger=LOG, memo=memo,
                now=NOW)
    assert out["metrics"] is False and out["outcome"] == "ok"
    status = patch["status"]
    assert status["recommendation"]["livePoints"] == 0 and status["recommendation"]["replicas"]["target"] >= 1
    conditions = {c["type"]: c["status"] for c in status["conditions"]}
    assert conditions["MetricsAvailable"] == "False" and conditions["RecommendationProvided"] == "True"


class ConfigMaps(FakeCluster):
    def __init__(self, maps, **kw):
        super().__init__(**kw)
        self.maps = maps

    def config_map(self, namespace, name):
        self.calls.append(("config_map", (namespace, name)))
        if name not in self.maps:
            from ala_operator.kube import TargetNotFound
            raise TargetNotFound(f"GET ConfigMap {namespace}/{name}: 404 Not Found", 404)
        return self.maps[name]


def test_a_house_model_is_sized_from_its_config_map(small_model, prom, examples):
    """A fine-tune the catalog has never heard of: its config.json in a ConfigMap gives the
    facts; the plan says where they came from and holds the weights in memory."""
    import json

    config = {"hidden_size": 8192, "num_hidden_layers": 80, "vocab_size": 128256, "num_attention_heads": 64,
              "num_key_value_heads": 8, "intermediate_size": 28672}
    spec = copy.deepcopy(examples["vllm-llama-8b"]["spec"])
    spec["model"] = "acme/house-70b-sft"
    spec["modelFacts"] = {"configMapRef": {"name": "house-70b"}}
    spec["demand"] = {"tokensPerSecond": 2000}
    cluster = ConfigMaps({})
    patch = kopf.Patch()
    out = refit(spec=spec, meta=META, status={}, patch=patch, logger=LOG, memo=_memo(small_model, prom, cluster),
                now=NOW)
    assert out["reason"] == "ConfigMapNotFound"
    cond = {c["type"]: c for c in patch["status"]["conditions"]}["SpecValid"]
    assert cond["status"] == "False" and "house-70b" in cond["message"] and "recommendation" not in patch["status"]
    cluster.maps["house-70b"] = {"config.json": json.dumps(config)}
    prom.answers["/api/v1/query"] = [(200, _matrix([]))]
    patch = kopf.Patch()
    refit(spec=spec, meta=META, status={}, patch=patch, logger=LOG, memo=_memo(small_model, prom, cluster), now=NOW)
    rec = patch["status"]["recommendation"]
    assert rec["modelFacts"] == "given: ConfigMap house-70b key config.json"
    # 70.6B parameters in bf16 do not fit one H100: the plan says so instead of sizing 8B.
    assert rec["outcome"] == "infeasible" and rec["memory"]["minAccelerators"] >= 2
    assert small_model.catalog_.models["model"].eq("acme/house-70b-sft").sum() == 0  # shared model untouched


def test_inline_facts_reach_the_plan(small_model, prom, examples):
    spec = copy.deepcopy(examples["vllm-llama-8b"]["spec"])
    spec["model"] = "acme/house-model"
    spec["modelFacts"] = {"parametersB": 8, "layers": 32, "kvHeads": 8, "headDim": 128}
    spec["demand"] = {"tokensPerSecond": 2000}
    prom.answers["/api/v1/query"] = [(200, _matrix([]))]
    patch = kopf.Patch()
    refit(spec=spec, meta=META, status={}, patch=patch, logger=LOG, memo=_memo(small_model, prom, FakeCluster()),
          now=NOW)
    rec = patch["status"]["recommendation"]
    assert rec["modelFacts"] == "given: spec.modelFacts" and rec["outcome"] in ("ok", "low_confidence")
    assert rec["replicas"]["target"] >= 1


class Versioned(FakeCluster):
    """A target whose pod template names the engine's image."""

    def __init__(self, image, **kw):
        super().__init__(**kw)
        self.image = image

    def workload(self, *target):
        return self.desired, self.ready, f"engine={self.image}"


def test_evidence_survives_restarts_and_outages_and_an_engine_upgrade_resets_it(small_model, prom, examples):
    from datetime import timedelta
    spec = examples["vllm-llama-8b"]["spec"]
    cluster = Versioned("vllm/vllm-openai:v0.9.0")
    first = kopf.Patch()
    prom.answers["/api/v1/query"] = _raw(9300, 63)
    refit(spec=spec, meta=META, status={}, patch=first, logger=LOG, memo=_memo(small_model, prom, cluster), now=NOW)
    evidence = first["status"]["liveEvidence"]
    seconds = sum(b[2] for b in evidence["bins"].values())
    assert seconds == 300 and first["status"]["recommendation"]["livePoints"] == 1
    own = first["status"]["recommendation"]["ownCurve"]  # c - a exp(-b batch), through the evidence
    assert own["evidenceSeconds"] == 300 and own["c"] > own["a"] > 0 and own["b"] > 0
    at_63 = own["c"] - own["a"] * math.exp(-own["b"] * 63)
    assert abs(at_63 / 9300 - 1) < 0.15
    fitted = {c["type"]: c for c in first["status"]["conditions"]}["ModelFitted"]
    assert fitted["status"] == "True" and "accumulated evidence" in fitted["message"]

    # A restarted operator (a new memo) reads the evidence from the status; Prometheus is down.
    later = NOW + timedelta(minutes=5)
    status = dict(first["status"])
    down = SimpleNamespace(model=small_model, metrics=OperatorMetrics(), cluster=cluster,
                           prometheus=lambda spec, ns: PrometheusClient("http://127.0.0.1:9", retries=0))
    patch = kopf.Patch()
    refit(spec=spec, meta=META, status=status, patch=patch, logger=LOG, memo=down, now=later)
    assert "liveEvidence" not in patch["status"]  # nothing stored is lost: the status keeps it
    # Up again: the next window adds to it (the overlap with the first is not counted twice).
    prom.answers["/api/v1/query"] = _raw(9300, 63, end=later)
    patch = kopf.Patch()
    refit(spec=spec, meta=META, status=status, patch=patch, logger=LOG, memo=_memo(small_model, prom, cluster),
          now=later)
    grown = patch["status"]["liveEvidence"]
    assert sum(b[2] for b in grown["bins"].values()) == pytest.approx(600, rel=0.01)
    assert grown["regime"] == evidence["regime"]

    # An engine upgrade is a new regime: the evidence starts again.
    cluster.image = "vllm/vllm-openai:v0.10.1"
    status = {**status, **patch["status"]}
    prom.answers["/api/v1/query"] = _raw(12000, 63, end=later + timedelta(minutes=5))
    patch = kopf.Patch()
    refit(spec=spec, meta=META, status=status, patch=patch, logger=LOG, memo=_memo(small_model, prom, cluster),
          now=later + timedelta(minutes=5))
    reset = patch["status"]["liveEvidence"]
    assert reset["regime"] != evidence["regime"]
    assert [round(b[1]) for b in reset["bins"].values()] == [12000]
    fitted = {c["type"]: c for c in patch["status"]["conditions"]}["ModelFitted"]
    assert "evidence reset: regime changed" in fitted["message"]


def test_zero_demand_is_said_and_a_prior_only_fit_is_not_called_refitted(small_model, examples):
    spec = copy.deepcopy(examples["vllm-llama-8b"]["spec"])
    spec["demand"] = {"tokensPerSecond": 0}
    memo = SimpleNamespace(model=small_model, metrics=OperatorMetrics(), cluster=FakeCluster(),
                           prometheus=lambda spec, ns: PrometheusClient("http://127.0.0.1:9", retries=0))
    patch = kopf.Patch()
    refit(spec=spec, meta=META, status={}, patch=patch, logger=LOG, memo=memo, now=NOW)
    rec, conditions = patch["status"]["recommendation"], {c["type"]: c for c in patch["status"]["conditions"]}
    assert rec["outcome"] == "no_demand" and rec["replicas"]["target"] == 1
    assert conditions["RecommendationProvided"]["reason"] == "NoDemand"
    assert conditions["ModelFitted"]["status"] == "False" and conditions["ModelFitted"]["reason"] == "PriorOnly"


class Knobbed(FakeCluster):
    """A target whose pod template sets the engine's batch limit."""

    def __init__(self, limit, rolling=False):
        super().__init__(2, 2)
        self.limit, self.rolling = limit, rolling

    def engine_batch(self, *target):
        return self.limit, self.rolling

    def set_engine_batch(self, *args):
        self.calls.append(("set_engine_batch", args))
        before, self.limit = self.limit, args[-1]
        return before


def test_apply_batch_sets_the_engines_limit_once_the_evidence_stands(small_model, prom, examples):
    from datetime import timedelta
    spec = copy.deepcopy(examples["vllm-llama-8b"]["spec"])
    spec["policy"] = {**spec.get("policy", {}), "mode": "Apply", "applyBatch": True, "minConfidence": 0.0}
    cluster = Knobbed(8)
    status = {}
    for minute in (0, 5, 10):
        prom.answers["/api/v1/query"] = _raw(9300, 63, end=NOW + timedelta(minutes=minute))
        patch = kopf.Patch()
        refit(spec=spec, meta=META, status=status, patch=patch, logger=LOG, memo=_memo(small_model, prom, cluster),
              now=NOW + timedelta(minutes=minute))
        status = {**status, **patch["status"]}
        if any(c[0] == "set_engine_batch" for c in cluster.calls):
            break
    # 300 s of evidence after the first refit: too little for a rollout; enough after the next.
    first_decision = [c for c in cluster.calls if c[0] == "set_engine_batch"]
    assert first_decision and minute > 0
    _, (namespace, api, kind, name, engine, value) = first_decision[0]
    assert (namespace, kind, engine) == ("llm", "Deployment", "vllm") and value == status["recommendation"]["batchSize"]
    assert status["lastBatchChange"]["from"] == 8 and status["lastBatchChange"]["to"] == value
    assert "throughput per replica" in status["lastBatchChange"]["why"] or "misses" in status["lastBatchChange"]["why"]
    # Within the batch window, and while the target rolls out, nothing more is changed.
    cluster.rolling = True
    prom.answers["/api/v1/query"] = _raw(9300, 63, end=NOW + timedelta(minutes=minute + 5))
    patch = kopf.Patch()
    refit(spec=spec, meta=META, status=status, patch=patch, logger=LOG, memo=_memo(small_model, prom, cluster),
          now=NOW + timedelta(minutes=minute + 5))
    assert len([c for c in cluster.calls if c[0] == "set_engine_batch"]) == 1
    assert "batchLimit" in patch["status"]["recommendation"]
