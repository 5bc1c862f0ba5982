"""The operator end to end: recommendations converge on a held-out real curve, Apply mode
scales within bounds and never below confidence, invalid resources get a condition,
deletion leaves nothing behind.

One stack serves the whole module: the resources are created together and watched for
about two minutes (the operator refits every 10 s), then each test reads the record.
"""

import json
import math
import time
import urllib.request

import pytest

from ala_operator.constants import GROUP, PLURAL, VERSION
from ala_operator.devstack.fleet import SimulatedDeployment
from ala_operator.devstack.localstack import LocalStack

pytestmark = pytest.mark.integration

NS = "default"
BASE = f"/apis/{GROUP}/{VERSION}/namespaces/{NS}/{PLURAL}"
WATCH_S = 130
#: The starved deployment's demand, in replicas at the largest measured batch.
STARVED = 3.5


def wave(truth, replicas, low=8.0, high=48.0, period_s=90.0):
    """Demand whose per-replica batch sweeps [low, high] once per period."""
    mid, amp = (low + high) / 2, (high - low) / 2
    return lambda t: replicas * truth(mid + amp * math.sin(2 * math.pi * t / period_s))


def _spec(name, prometheus_url, **policy):
    return {
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
        "model": "meta-llama/Meta-Llama-3-8B", "hardware": {"accelerator": "H100", "acceleratorsPerReplica": 1},
        "engine": {"name": "vllm", "precision": "bfloat16"}, "workload": {"inputTokens": 1024, "outputTokens": 1024},
        "demand": {"tokensPerSecond": 6000}, "slo": {"maxInterTokenLatencyMs": 12},
        "prometheus": {"url": prometheus_url, "selector": f'service="{name}"', "rateWindowSeconds": 10,
                       "stepSeconds": 5},
        "policy": {"refitIntervalSeconds": 10, "warmupSeconds": 0, **policy},
    }


@pytest.fixture(scope="module", params=["emulator", pytest.param("realapi", marks=pytest.mark.realapi)])
def record(request, require_prometheus, held_out):
    """The stack against the emulator, and again with the real apiextensions-apiserver
    serving the LLMDeployments (core and apps still from the emulator)."""
    front = None
    if request.param == "realapi":
        from support.realapi import RealApi, require_binary
        binary = require_binary()
        front = lambda core_url: RealApi(core_url, binary)  # noqa: E731 - a one-line factory
    truth, model = held_out
    fleet = [SimulatedDeployment(NS, name, "vllm", truth, wave(truth, 2), input_tokens=1024, output_tokens=1024,
                                 startup_s=3) for name in ("watched", "applied", "cautious")]
    # Asked for 3.5 replicas' worth at the largest batch while it runs one: served tokens
    # would say one replica is enough; arrivals and the queue say otherwise.
    fleet.append(SimulatedDeployment(NS, "starved", "vllm", truth, lambda t: STARVED * truth(truth.max_batch),
                                     input_tokens=1024, output_tokens=1024, startup_s=3))
    with LocalStack(fleet, require_prometheus=True, front=front) as stack:
        for dep in fleet:
            stack.request("PATCH", f"/apis/apps/v1/namespaces/{NS}/deployments/{dep.name}/scale",
                          {"spec": {"replicas": 1 if dep.name == "starved" else 2}})
        # In a peering, as the chart's default two replicas run (here the only one, so it works).
        operator = stack.start_operator(model, peering="ala-operator", peering_lifetime=30)
        url = stack.prometheus_url
        specs = {
            "watched": _spec("watched", url),
            "applied": _spec("applied", url, mode="Apply", minReplicas=1, maxReplicas=4, maxStep=1,
                             minConfidence=0.0, stabilizationWindowSeconds=20),
            "cautious": _spec("cautious", url, mode="Apply", minReplicas=1, maxReplicas=4, minConfidence=0.99),
            "broken": dict(_spec("cautious", url), hardware={"accelerator": "TPU-v9000"}),
            "starved": dict(_spec("starved", url, mode="Apply", minReplicas=1, maxReplicas=8, maxStep=8,
                                  minConfidence=0.0, stabilizationWindowSeconds=0),
                            demand={"fromEngine": True}),
        }
        for name, spec in specs.items():
            code, body = stack.request("POST", BASE, {"apiVersion": f"{GROUP}/{VERSION}", "kind": "LLMDeployment",
                                                      "metadata": {"name": name}, "spec": spec})
            assert code == 201, body
        history = {name: [] for name in specs}
        refits = []  # the starved resource's status after each of its refits
        replicas = {name: [] for name in ("watched", "applied", "cautious", "starved")}
        started = time.time()
        while time.time() - started < WATCH_S:
            for name in specs:
                status = stack.request("GET", f"{BASE}/{name}")[1].get("status") or {}
                if status.get("recommendation") and (not history[name] or history[name][-1]["recommendation"]
                                                     != status["recommendation"]):
                    history[name].append(status)
                if name == "starved" and status.get("lastRefitTime") and (
                        not refits or refits[-1]["lastRefitTime"] != status["lastRefitTime"]):
                    refits.append(status)
            for name in replicas:
                replicas[name].append(stack.request("GET", f"/apis/apps/v1/namespaces/{NS}/deployments/{name}")[1]
                                      ["spec"]["replicas"])
            time.sleep(2)
        objects = {name: stack.request("GET", f"{BASE}/{name}")[1] for name in specs}
        yield {"stack": stack, "truth": truth, "history": history, "replicas": replicas, "objects": objects,
               "operator": operator, "refits": refits}


def test_recommendation_converges_on_the_held_out_truth(record):
    truth, history = record["truth"], record["history"]["watched"]
    prior = [s for s in history if s["recommendation"].get("livePoints") == 0]
    assert prior, "the first recommendation should come from the prior alone"
    first, last = prior[0]["recommendation"], history[-1]["recommendation"]
    assert last["livePoints"] >= 3  # batch bins with at least MIN_BIN_S of believed intervals
    err = abs(last["throughputPerReplica"]["value"] / truth(last["batchSize"]) - 1)
    assert err < 0.10, f"predicted {last['throughputPerReplica']} vs truth {truth(last['batchSize']):.0f}"

    def width(rec):
        tp = rec["throughputPerReplica"]
        return (tp["upper"] - tp["lower"]) / tp["value"]

    assert width(last) < width(first)
    assert last["confidence"] > first["confidence"]
    score = history[-1]["scorecard"]
    assert score["samples"] >= 3 and score["ape"] < 0.10 and score["coverage"] > 0.5


def test_recommendation_is_published_in_status_annotations_and_metrics(record):
    stack, obj = record["stack"], record["objects"]["watched"]
    rec = obj["status"]["recommendation"]
    conditions = {c["type"]: c for c in obj["status"]["conditions"]}
    assert {k: conditions[k]["status"] for k in ("SpecValid", "MetricsAvailable", "ModelFitted",
                                                 "RecommendationProvided")} == dict.fromkeys(
        ("SpecValid", "MetricsAvailable", "ModelFitted", "RecommendationProvided"), "True")
    assert set(rec["replicas"]) == {"target", "lowerBound", "upperBound", "uncappedTarget"}
    target = stack.request("GET", f"/apis/apps/v1/namespaces/{NS}/deployments/watched")[1]
    for meta in (obj["metadata"], target["metadata"]):
        assert meta["annotations"]["ala.io/recommended-replicas"] == str(rec["replicas"]["target"])
        assert meta["annotations"]["ala.io/recommended-batch-size"] == str(rec["batchSize"])
    assert record["replicas"]["watched"] == [2] * len(record["replicas"]["watched"])  # Recommend never scales
    settings = record["operator"].settings
    health = urllib.request.urlopen(f"http://127.0.0.1:{settings.health_port}/healthz", timeout=5)
    assert health.status == 200  # kopf's liveness endpoint, as the chart's probes use it
    port = settings.metrics_port
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    assert 'ala_recommended_replicas{bound="target",name="watched",namespace="default"}' in text
    assert 'ala_live_ape_ratio{name="watched",namespace="default"}' in text
    events = stack.request("GET", f"/api/v1/namespaces/{NS}/events")[1]["items"]
    assert any(e.get("reason") == "RecommendationChanged" and e["involvedObject"]["name"] == "watched"
               for e in events)


def test_apply_mode_scales_within_bounds_by_at_most_max_step(record):
    seen = record["replicas"]["applied"]
    assert set(seen) <= {1, 2, 3, 4}
    changes = [b - a for a, b in zip(seen, seen[1:]) if b != a]
    assert changes, f"Apply mode never scaled: {seen}"
    assert all(abs(c) == 1 for c in changes)
    status = record["objects"]["applied"]["status"]
    assert status["lastScale"]["to"] in (1, 2, 3, 4)


def test_an_under_provisioned_deployment_gets_enough_replicas_within_two_refits(record):
    """Demand from what the engine receives (arrivals and its queue), not what it serves:
    one saturated replica is sized up to the 3.5 replicas it is asked for."""
    refits = [s for s in record["refits"] if {c["type"]: c["status"] for c in s["conditions"]}.get(
        "MetricsAvailable") == "True"]
    assert len(refits) >= 2, record["refits"]
    needed = math.ceil(STARVED)
    targets = [s["recommendation"]["replicas"]["target"] for s in refits]
    assert max(targets[:2]) >= needed, targets
    assert max(record["replicas"]["starved"]) >= needed  # and Apply mode scaled it


def test_apply_mode_never_acts_below_confidence(record):
    assert set(record["replicas"]["cautious"]) == {2}
    conditions = {c["type"]: c for c in record["objects"]["cautious"]["status"]["conditions"]}
    assert conditions["LowConfidence"]["status"] == "True"


def test_invalid_resource_gets_a_condition_naming_the_field(record):
    status = record["objects"]["broken"]["status"]
    cond = {c["type"]: c for c in status["conditions"]}["SpecValid"]
    assert cond["status"] == "False" and cond["reason"] == "UnknownAccelerator"
    assert "spec.hardware.accelerator" in cond["message"]
    assert "recommendation" not in status


def test_deleting_a_resource_leaves_nothing_behind(record):
    stack, port = record["stack"], record["operator"].settings.metrics_port
    assert stack.request("DELETE", f"{BASE}/watched")[0] == 200
    deadline = time.time() + 30
    while time.time() < deadline and stack.request("GET", f"{BASE}/watched")[0] != 404:
        time.sleep(0.5)
    assert stack.request("GET", f"{BASE}/watched")[0] == 404, "the finalizer was never released"
    target = stack.request("GET", f"/apis/apps/v1/namespaces/{NS}/deployments/watched")[1]
    assert not any(k.startswith("ala.io/recommend") or k == "ala.io/confidence"
                   for k in (target["metadata"].get("annotations") or {}))
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    assert 'name="watched"' not in text


def test_rbac_grants_what_the_operator_uses_and_nothing_else(record):
    """RBAC derived from what the operator's code did against the API in this run (its
    kopf and kubernetes-client requests, recorded by the emulator), not written by hand."""
    if record["stack"].core is not record["stack"].api:
        pytest.skip("requests are recorded by the emulator; the real-API run does not see ala.io calls")
    import yaml

    from ala_operator.credentials import CredentialsRefused
    from ala_operator.spec import parse_spec
    from pathlib import Path

    stack, memo = record["stack"], record["operator"].memo
    # The Secret code path (Prometheus credentials), through the operator's own factory.
    stack.request("POST", f"/api/v1/namespaces/{NS}/secrets", {"metadata": {"name": "reader"}, "data": {"t": "eA=="}})
    spec = dict(record["objects"]["cautious"]["spec"])
    spec["prometheus"] = dict(spec["prometheus"], secretRef={"name": "reader", "tokenKey": "t"})
    # With no URL allow-list (the default install) the Secret is never read: no grant.
    with pytest.raises(CredentialsRefused, match="CredentialsNotAllowed|ALA_PROMETHEUS_ALLOWED_URLS"):
        memo.prometheus(parse_spec(spec), NS)
    # The ConfigMap code path (a model's config.json), through the handler's own reader.
    from ala_operator.handlers import _config_map_reader

    config = {"hidden_size": 4096, "num_hidden_layers": 32, "vocab_size": 128256, "num_attention_heads": 32,
              "num_key_value_heads": 8, "intermediate_size": 14336}
    stack.request("POST", f"/api/v1/namespaces/{NS}/configmaps",
                  {"metadata": {"name": "house-config"}, "data": {"config.json": json.dumps(config)}})
    spec = dict(record["objects"]["cautious"]["spec"], model="acme/house-8b",
                modelFacts={"configMapRef": {"name": "house-config"}})
    facts = parse_spec(spec, read_config_map=_config_map_reader(memo.cluster, NS)).model_facts.iloc[0]
    assert abs(facts["params_b"] - 8.03) < 0.01
    used = {(group, resource, verb) for agent, group, resource, verb in stack.core.emulator.used
            if agent in ("kopf", "OpenAPI-Generator")}
    assert used, stack.core.emulator.used
    root = Path(__file__).resolve().parents[2]
    for source in (root / "deploy" / "operator.yaml",):
        role = next(d for d in yaml.safe_load_all(source.read_text()) if d and d["kind"] == "ClusterRole")
        granted = {(g, r, v) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]
                   for v in rule["verbs"]}
        missing = sorted(u for u in used if u not in granted and (u[0], u[1], "*") not in granted)
        assert not missing, f"{source.name}: the operator used {missing} without a rule"
        # Every grant is used, counting statefulsets as the same code path as deployments
        # (any kind with a scale subresource) and events.k8s.io as the same Events.
        same = {("apps", "statefulsets"): ("apps", "deployments"), ("apps", "statefulsets/scale"):
                ("apps", "deployments/scale"), ("events.k8s.io", "events"): ("", "events")}
        unused = sorted((g, r, v) for g, r, v in granted
                        if (same.get((g, r), (g, r)) + (v,)) not in used)
        assert not unused, f"{source.name} grants what the operator never used: {unused}"
