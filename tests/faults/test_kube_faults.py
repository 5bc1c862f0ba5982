"""Kubernetes API faults under the real operator (kopf, the emulator over HTTP, a real
Prometheus): 5xx bursts, 409 and 422 on status patches, watch streams cut mid-way, the
target deleted or replaced under a resource. Retries bring the status back, conditions
say what is wrong, and nothing is written to the wrong object. Restarts are in
test_crash_restart.py, with the operator in its own process as users run it."""

import math
import time

import pytest

from support.polling import wait_for

from ala_operator.constants import GROUP, PLURAL, VERSION
from ala_operator.devstack.emulator import Emulator
from ala_operator.devstack.fleet import SimulatedDeployment
from ala_operator.devstack.localstack import LocalStack

pytestmark = [pytest.mark.faults, pytest.mark.integration]

BASE = f"/apis/{GROUP}/{VERSION}/namespaces/default/{PLURAL}"
DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"
INTERVAL = 10


def _status(stack, name):
    return stack.request("GET", f"{BASE}/{name}")[1].get("status") or {}


def _cond(stack, name, type_):
    return {c["type"]: c for c in _status(stack, name).get("conditions", [])}.get(type_, {})


def _resource(name, url, **policy):
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "LLMDeployment", "metadata": {"name": name}, "spec": {
        "targetRef": {"name": name}, "model": "meta-llama/Meta-Llama-3-8B", "hardware": {"accelerator": "H100"},
        "engine": {"name": "vllm"}, "workload": {"inputTokens": 1024, "outputTokens": 1024},
        "demand": {"tokensPerSecond": 6000}, "slo": {"maxInterTokenLatencyMs": 20},
        "prometheus": {"url": url, "selector": f'service="{name}"', "rateWindowSeconds": 10, "stepSeconds": 5},
        "policy": {"refitIntervalSeconds": INTERVAL, "warmupSeconds": 0, **policy}}}


@pytest.fixture(scope="module")
def stack(require_prometheus, held_out):
    truth, model = held_out
    wave = lambda t: 2 * truth(20 + 10 * math.sin(t / 15))  # noqa: E731
    fleet = [SimulatedDeployment("default", name, "vllm", truth, wave, input_tokens=1024, output_tokens=1024,
                                 startup_s=2) for name in ("kube", "applied", "first", "second")]
    with LocalStack(fleet, require_prometheus=True) as stack:
        for dep in fleet:
            stack.request("PATCH", f"{DEPLOYMENTS}/{dep.name}/scale", {"spec": {"replicas": 2}})
        stack.model = model
        stack.start_operator(model)
        url = stack.prometheus_url
        assert stack.request("POST", BASE, _resource("kube", url))[0] == 201
        assert stack.request("POST", BASE, _resource("applied", url, mode="Apply", minReplicas=1, maxReplicas=4,
                                                     maxStep=1, minConfidence=0.0,
                                                     stabilizationWindowSeconds=90))[0] == 201
        assert wait_for(lambda: (_status(stack, "kube").get("recommendation") or {}).get("livePoints"), 90)
        yield stack


@pytest.mark.parametrize("status", [503, 409, 422])
def test_failed_status_patches_are_retried_until_they_land(stack, status):
    before = _status(stack, "kube")["lastRefitTime"]
    stack.core.emulator.fail("PATCH", r"/llmdeployments/kube/status$", status, 3)
    started = time.time()
    landed = wait_for(lambda: _status(stack, "kube").get("lastRefitTime", before) > before, 6 * INTERVAL)
    assert landed, f"status patches never landed after three {status}s"
    print("FAULT", f"status-patch-{status}x3", "landed after", round(time.time() - started, 1))
    assert stack.operator.thread.is_alive()
    assert not any(rule[3] for rule in stack.core.emulator.failures), "the injected faults were not all hit"


def _spec_change_is_seen(stack, demand: int, seconds: float) -> float:
    """Change the spec and return how long until the operator has handled it."""
    code, obj = stack.request("PATCH", f"{BASE}/kube", {"spec": {"demand": {"tokensPerSecond": demand}}})
    assert code == 200
    generation, started = obj["metadata"]["generation"], time.time()
    seen = wait_for(lambda: _status(stack, "kube").get("observedGeneration") == generation, seconds)
    return round(time.time() - started, 1) if seen else None


def test_watch_streams_cut_midway_are_resumed(stack):
    assert stack.core.call(Emulator.cut_watches) >= 1
    took = _spec_change_is_seen(stack, 9000, 6 * INTERVAL)
    assert took is not None, "a spec change after the watch was cut was never seen"
    print("FAULT", "watch-cut", "spec change seen after", took)


def test_target_deleted_under_a_resource(stack):
    assert stack.request("DELETE", f"{DEPLOYMENTS}/kube")[0] == 200
    started = time.time()
    cond = wait_for(lambda: (lambda c: c if c.get("reason") == "TargetNotFound" else None)(
        _cond(stack, "kube", "RecommendationProvided")), 4 * INTERVAL)
    assert cond and cond["status"] == "False" and "kube" in cond["message"]
    noticed = time.time() - started
    assert stack.request("GET", f"{DEPLOYMENTS}/kube")[0] == 404, "the operator recreated or wrote to the target"
    assert _status(stack, "kube")["recommendation"], "the last recommendation was dropped"
    stack.request("POST", DEPLOYMENTS, {"metadata": {"name": "kube"}, "spec": {"replicas": 2}})
    started = time.time()
    back = wait_for(lambda: _cond(stack, "kube", "RecommendationProvided").get("reason") not in (None, "TargetNotFound"),
                 4 * INTERVAL)
    assert back, _status(stack, "kube").get("conditions")
    assert _cond(stack, "kube", "RecommendationProvided")["status"] == "True"
    print("FAULT", "target-deleted", "noticed after", round(noticed, 1),
          "recovered after", round(time.time() - started, 1))


def test_5xx_burst_on_target_reads_is_named_then_recovers(stack):
    before = _status(stack, "kube")["lastRefitTime"]
    stack.core.emulator.fail("GET", r"/deployments/kube/scale$", 503, 3)
    started = time.time()
    landed = wait_for(lambda: _status(stack, "kube").get("lastRefitTime", before) > before, 6 * INTERVAL)
    assert landed, "no refit landed after a burst of 503s on the target's scale"
    print("FAULT", "target-read-503x3", "refit landed after", round(time.time() - started, 1))
    assert not any(rule[3] for rule in stack.core.emulator.failures), "the injected faults were not all hit"
    assert _cond(stack, "kube", "RecommendationProvided")["status"] == "True"
    events = stack.request("GET", "/api/v1/namespaces/default/events")[1]["items"]
    assert any(e.get("reason") == "TargetUnreachable" and e["involvedObject"]["name"] == "kube" for e in events), \
        "the burst left no Event naming it"


def test_5xx_burst_on_the_operators_watch_is_survived(stack):
    """The API server answers kopf's list and watch with 503s, then every stream is cut:
    kopf backs off, reconnects, and a spec change made meanwhile is still seen."""
    stack.core.emulator.fail("GET", r"/llmdeployments$", 503, 4)
    assert stack.core.call(Emulator.cut_watches) >= 1
    took = _spec_change_is_seen(stack, 7000, 9 * INTERVAL)
    assert took is not None, "a spec change during a 503 burst on the watch was never seen"
    print("FAULT", "watch-503x4-and-cut", "spec change seen after", took)


def test_a_new_target_takes_the_annotations_and_the_old_one_is_left_clean(stack):
    url = stack.prometheus_url
    assert stack.request("POST", BASE, _resource("first", url) | {"metadata": {"name": "mover"}})[0] == 201

    def annotated(name):
        meta = stack.request("GET", f"{DEPLOYMENTS}/{name}")[1]["metadata"]
        return "ala.io/recommended-replicas" in (meta.get("annotations") or {})

    assert wait_for(lambda: annotated("first"), 6 * INTERVAL), "the first target was never annotated"
    stack.request("PATCH", f"{BASE}/mover", {"spec": {"targetRef": {"name": "second"}}})
    assert wait_for(lambda: annotated("second") and not annotated("first"), 6 * INTERVAL), \
        "the annotations did not move to the new target"
    assert stack.request("DELETE", f"{BASE}/mover")[0] == 200
    assert wait_for(lambda: not annotated("second"), 6 * INTERVAL)
