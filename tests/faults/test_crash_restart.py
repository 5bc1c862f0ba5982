"""The operator as users run it, `ala-operator run` in its own process, stopped mid-run
(SIGTERM, as when its pod is replaced; SIGKILL, a crash) and started again; and its
credentials watched for across everything it writes.

Real parts: the operator process (kopf, our client), the API emulator over HTTP, a real
Prometheus behind a recording proxy. The Prometheus token comes from a Secret; the proxy
sees it arrive, and it must appear nowhere else: not in the process's DEBUG log, Events,
status, annotations or the operator's metrics.
"""

import base64
import math
import time

import pytest
from support.faultproxy import FaultProxy
from support.operator_process import OperatorProcess
from support.resources import stepping_apply_resource
from support.polling import wait_for

from ala.persistence import save_model
from ala_operator.constants import GROUP, PLURAL, VERSION
from ala_operator.devstack.fleet import SimulatedDeployment
from ala_operator.devstack.localstack import LocalStack

pytestmark = [pytest.mark.faults, pytest.mark.integration]

BASE = f"/apis/{GROUP}/{VERSION}/namespaces/default/{PLURAL}"
DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"
TOKEN = "tok-7f3a9c1e-never-to-be-seen"
WINDOW = 60


def _status(stack, name):
    return stack.request("GET", f"{BASE}/{name}")[1].get("status") or {}


@pytest.fixture(scope="module")
def stack(require_prometheus, held_out, tmp_path_factory):
    truth, model = held_out
    folder = tmp_path_factory.mktemp("crash")
    model_file = save_model(model, folder / "model.ala", fitted=True)
    wave = lambda t: 2 * truth(20 + 10 * math.sin(t / 15))  # noqa: E731
    fleet = [SimulatedDeployment("default", "crashy", "vllm", truth, wave, input_tokens=1024, output_tokens=1024,
                                 startup_s=2)]
    with LocalStack(fleet, require_prometheus=True) as stack:
        stack.request("PATCH", f"{DEPLOYMENTS}/crashy/scale", {"spec": {"replicas": 1}})
        proxy = FaultProxy(stack.prometheus_url)
        code, _ = stack.request("POST", "/api/v1/namespaces/default/secrets", {
            "apiVersion": "v1", "kind": "Secret", "metadata": {
                "name": "prometheus-auth", "labels": {"ala.io/prometheus-credentials": "true"}},
            "data": {"token": base64.b64encode(TOKEN.encode()).decode()}})
        assert code == 201
        resource = stepping_apply_resource("crashy", proxy.url, WINDOW, secretRef={"name": "prometheus-auth",
                                                                                 "tokenKey": "token"})
        assert stack.request("POST", BASE, resource)[0] == 201
        operator = OperatorProcess(stack.kubeconfig, model_file, folder / "operator.log",
                                   allowed_urls=proxy.url).start()
        try:
            yield {"stack": stack, "proxy": proxy, "operator": operator}
        finally:
            operator.stop()
            proxy.down()


@pytest.mark.parametrize("ending", ["SIGTERM", "SIGKILL"])
def test_a_restart_mid_run_loses_nothing_and_does_not_act_twice(stack, ending):
    """SIGTERM: a pod being replaced (kopf stops on its own). SIGKILL: a crash."""
    api, operator = stack["stack"], stack["operator"]
    assert wait_for(lambda: _status(api, "crashy").get("lastScale"), 120), "Apply mode never scaled"
    # Stop it mid-cycle (it refits every 10 s and looks every 2 s).
    time.sleep(3.3)
    before = _status(api, "crashy")
    replicas = api.request("GET", f"{DEPLOYMENTS}/crashy")[1]["spec"]["replicas"]
    if ending == "SIGKILL":
        operator.kill()
    else:
        operator.process.terminate()
        assert operator.process.wait(30) is not None, "the operator did not stop on SIGTERM"
    assert api.request("GET", f"{DEPLOYMENTS}/crashy")[1]["spec"]["replicas"] == replicas
    after_kill = _status(api, "crashy")
    assert after_kill.get("recommendation") and after_kill["lastRefitTime"] >= before["lastRefitTime"], \
        "the kill lost or rolled back the recommendation"
    last_scale = after_kill["lastScaleTime"]
    operator.start()
    assert wait_for(lambda: _status(api, "crashy").get("lastRefitTime", "") > after_kill["lastRefitTime"], 90), \
        "the new process never refitted"
    # The new process honours the window of the last scale it finds recorded.
    last = time.mktime(time.strptime(last_scale, "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    seen = []
    while time.time() < last + WINDOW - 3:
        seen.append(api.request("GET", f"{DEPLOYMENTS}/crashy")[1]["spec"]["replicas"])
        time.sleep(1)
    assert len(seen) >= 20, "the restart took most of the window: the check would prove little"
    # One value throughout (the recorded target, or the one before it if the kill fell
    # between the record and the scale: the record is written first).
    assert len(set(seen)) == 1, f"scaled inside the window after the restart: {seen}"
    # ...and acts again once the window is over: it was waiting, not dead.
    assert wait_for(lambda: api.request("GET", f"{DEPLOYMENTS}/crashy")[1]["spec"]["replicas"] > seen[-1], 60), \
        "the new process never scaled after the window"
    status = _status(api, "crashy")
    assert status["recommendation"]["replicas"]["target"] >= 1
    samples = lambda st: (st.get("scorecard") or {}).get("samples", 0)  # noqa: E731
    assert samples(status) >= samples(before), "the scorecard was reset"


def test_the_token_reaches_prometheus_and_nowhere_else(stack):
    api, operator, proxy = stack["stack"], stack["operator"], stack["proxy"]
    assert wait_for(lambda: _status(api, "crashy").get("recommendation"), 120)
    assert f"Bearer {TOKEN}" in proxy.authorizations, "the operator did not authenticate with the Secret's token"
    log = operator.log_path.read_text(errors="replace")
    assert "Merge-patching" in log and "refit default/crashy" in log, \
        "the DEBUG log is missing: the check would prove nothing"
    places = {
        "log": log,
        "events": str(api.request("GET", "/api/v1/namespaces/default/events")[1]),
        "resource": str(api.request("GET", f"{BASE}/crashy")[1]),
        "target": str(api.request("GET", f"{DEPLOYMENTS}/crashy")[1]),
        "metrics": operator.metrics(),
    }
    encoded = base64.b64encode(TOKEN.encode()).decode()
    leaked = [where for where, text in places.items() if TOKEN in text or encoded in text]
    assert not leaked, f"the Prometheus token appears in: {leaked}"
