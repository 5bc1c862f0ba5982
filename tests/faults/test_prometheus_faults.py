"""Prometheus failing under the real operator (emulator over HTTP, real Prometheus behind
a proxy that misbehaves on cue): down, slow beyond the timeout, 500, and garbage. The
last good recommendation stays, MetricsAvailable=False names the reason, the operator
does not crash, and it recovers within one refit interval once Prometheus is back. The
figures (time to notice, time to recover) are printed for docs/reliability.md."""

import math
import time

import pytest

from ala_operator.constants import GROUP, PLURAL, VERSION
from ala_operator.devstack.fleet import SimulatedDeployment
from ala_operator.devstack.localstack import LocalStack
from support.faultproxy import FaultProxy

pytestmark = [pytest.mark.faults, pytest.mark.integration]

BASE = f"/apis/{GROUP}/{VERSION}/namespaces/default/{PLURAL}"
INTERVAL = 10
FAULTS = [("down", "PrometheusUnavailable"), ("slow", "PrometheusUnavailable"), ("500", "PrometheusUnavailable"),
          ("garbage:nan", "GarbageAnswer"), ("garbage:inf", "GarbageAnswer"), ("garbage:absurd", "GarbageAnswer"),
          ("garbage:type", "GarbageAnswer"), ("garbage:empty", "GarbageAnswer")]


def _conditions(stack, name):
    status = stack.request("GET", f"{BASE}/{name}")[1].get("status") or {}
    return status, {c["type"]: c for c in status.get("conditions", [])}


def _wait(check, seconds):
    deadline, started = time.time() + seconds, time.time()
    while time.time() < deadline:
        value = check()
        if value:
            return time.time() - started, value
        time.sleep(0.5)
    return None, None


@pytest.fixture(scope="module")
def faulty(require_prometheus, held_out):
    truth, model = held_out
    wave = lambda t: 2 * truth(20 + 10 * math.sin(t / 15))  # noqa: E731
    fleet = [SimulatedDeployment("default", name, "vllm", truth, wave, input_tokens=1024, output_tokens=1024,
                                 startup_s=2) for name in ("steady", "late")]
    with LocalStack(fleet, require_prometheus=True) as stack:
        proxy = FaultProxy(stack.prometheus_url, slow_s=3.0)
        for dep in fleet:
            stack.request("PATCH", f"/apis/apps/v1/namespaces/default/deployments/{dep.name}/scale",
                          {"spec": {"replicas": 2}})
        stack.start_operator(model)
        yield stack, proxy
        proxy.close()


def _resource(name, url):
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "LLMDeployment", "metadata": {"name": name}, "spec": {
        "targetRef": {"name": name}, "model": "meta-llama/Meta-Llama-3-8B", "hardware": {"accelerator": "H100"},
        "engine": {"name": "vllm"}, "workload": {"inputTokens": 1024, "outputTokens": 1024},
        "demand": {"tokensPerSecond": 6000}, "slo": {"maxInterTokenLatencyMs": 12},
        "prometheus": {"url": url, "selector": f'service="{name}"', "rateWindowSeconds": 10, "stepSeconds": 5,
                       "timeoutSeconds": 1},
        "policy": {"refitIntervalSeconds": INTERVAL, "warmupSeconds": 0}}}


def test_every_fault_keeps_the_recommendation_and_recovers_within_an_interval(faulty):
    stack, proxy = faulty
    assert stack.request("POST", BASE, _resource("steady", proxy.url))[0] == 201
    took, _ = _wait(lambda: (lambda s, c: c.get("MetricsAvailable", {}).get("status") == "True"
                             and (s.get("recommendation") or {}).get("livePoints", 0) > 0)(*_conditions(stack, "steady")),
                    90)
    assert took is not None, "no live recommendation before the faults"
    figures = []
    for mode, reason in FAULTS:
        before, _ = _conditions(stack, "steady")
        if mode == "down":
            proxy.down()
        proxy.mode = "pass" if mode == "down" else mode
        noticed, cond = _wait(lambda: (lambda c: c if c.get("status") == "False" else None)(
            _conditions(stack, "steady")[1].get("MetricsAvailable", {})), 3 * INTERVAL + 10)
        assert noticed is not None, f"{mode}: MetricsAvailable never went False"
        assert cond["reason"] == reason, (mode, cond)
        during, _ = _conditions(stack, "steady")
        assert during["recommendation"] == before["recommendation"], f"{mode}: the recommendation changed"
        if mode == "down":
            proxy.up()
        proxy.mode = "pass"
        recovered, _ = _wait(lambda: _conditions(stack, "steady")[1]["MetricsAvailable"]["status"] == "True",
                             2 * INTERVAL + 10)
        assert recovered is not None and recovered <= INTERVAL + 12, f"{mode}: recovery took {recovered}"
        figures.append((mode, reason, round(noticed, 1), round(recovered, 1)))
    for row in figures:
        print("FAULT", *row)


def test_prometheus_down_at_start_then_back(faulty):
    stack, proxy = faulty
    proxy.down()
    try:
        assert stack.request("POST", BASE, _resource("late", proxy.url))[0] == 201
        took, cond = _wait(lambda: (lambda c: c if c.get("status") == "False" else None)(
            _conditions(stack, "late")[1].get("MetricsAvailable", {})), 30)
        assert took is not None and cond["reason"] == "PrometheusUnavailable"
        status, conditions = _conditions(stack, "late")
        # Demand is in the spec: the prior alone gives a first recommendation, flagged.
        assert status["recommendation"]["livePoints"] == 0
        assert conditions["RecommendationProvided"]["status"] == "True"
    finally:
        proxy.up()
    back, _ = _wait(lambda: (lambda s, c: c["MetricsAvailable"]["status"] == "True")(*_conditions(stack, "late")),
                    2 * INTERVAL + 10)
    assert back is not None
