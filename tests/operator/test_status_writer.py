"""One status writer: spec edits interleaved with refits that began before them, against
the API emulator over real HTTP (its merge patches honour resourceVersion preconditions as
the API server's do).

A refit reads the object, computes for a while, then writes. Hypothesis draws sequences of
spec edits (valid or not), refits begun (a snapshot of the object taken) and refits
finished (the timer's body run on that snapshot, now perhaps stale), and fresh ticks. After
every step, status never describes the current generation wrongly; after the pending refits
finish and one fresh tick, ``SpecValid`` and ``observedGeneration`` follow the latest spec.
"""

import copy
import logging
from types import SimpleNamespace

import kopf
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ala_operator.constants import GROUP, PLURAL, VERSION
from ala_operator.devstack.emulator import EmulatorServer
from ala_operator.devstack.loopback import request_json
from ala_operator.handlers import refit_timer
from ala_operator.kube import KubeCluster
from ala_operator.metrics import OperatorMetrics
from ala_operator.prometheus import PrometheusClient
from ala_operator.spec import SpecError, parse_spec

pytestmark = pytest.mark.faults
LOG = logging.getLogger("test")
BASE = f"/apis/{GROUP}/{VERSION}/namespaces/default/{PLURAL}"
DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"


@pytest.fixture(scope="module")
def world(small_model, tmp_path_factory):
    with EmulatorServer(("default",)) as api:
        kubeconfig = api.write_kubeconfig(tmp_path_factory.mktemp("writer") / "kubeconfig")
        monkey = pytest.MonkeyPatch()
        monkey.setenv("KUBECONFIG", str(kubeconfig))
        cluster = KubeCluster.from_environment()
        monkey.undo()
        request_json(api.url, "POST", DEPLOYMENTS, {"metadata": {"name": "llama"}, "spec": {"replicas": 2},
                                                    "status": {"replicas": 2, "readyReplicas": 2}})
        # Prometheus is down: a refit still recommends from the prior (the demand is in the spec).
        memo = SimpleNamespace(model=small_model, metrics=OperatorMetrics(), cluster=cluster,
                               prometheus=lambda spec, ns: PrometheusClient("http://127.0.0.1:9", retries=0))
        yield api, memo


def _valid(spec) -> bool:
    try:
        parse_spec(copy.deepcopy(spec))
        return True
    except SpecError:
        return False


def _get(api, name):
    return request_json(api.url, "GET", f"{BASE}/{name}")[1]


def _tick(memo, obj):
    """The timer's body on ``obj`` as the refit read it (kopf hands it a body like this)."""
    return refit_timer(spec=obj.get("spec") or {}, meta=obj["metadata"], status=obj.get("status") or {},
                       patch=kopf.Patch(), logger=LOG, memo=memo)


def _check(obj, seen):
    """Status never describes the current generation wrongly, and never goes back to an
    older one (``seen``: the highest generations observed so far)."""
    generation, status = obj["metadata"]["generation"], obj.get("status") or {}
    spec_valid = {c["type"]: c for c in status.get("conditions") or []}.get("SpecValid")
    observed = (status.get("observedGeneration") or 0, (spec_valid or {}).get("observedGeneration") or 0)
    assert observed[0] >= seen[0] and observed[1] >= seen[1], f"status went back from {seen} to {observed}"
    seen[:] = observed
    if spec_valid and spec_valid["observedGeneration"] == generation:
        assert spec_valid["status"] == ("True" if _valid(obj["spec"]) else "False"), (spec_valid, obj["spec"])
    if status.get("observedGeneration") == generation:
        assert spec_valid and spec_valid["observedGeneration"] == generation, status
    assert (status.get("observedGeneration") or 0) <= generation


OPS = st.lists(st.one_of(st.tuples(st.just("edit"), st.booleans(), st.integers(1000, 90000)),
                         st.tuples(st.just("begin")), st.tuples(st.just("finish"), st.integers(0, 5)),
                         st.tuples(st.just("tick"))), min_size=1, max_size=10)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS)
def test_spec_valid_and_generation_follow_the_latest_spec(world, examples, ops):
    api, memo = world
    name = f"r{abs(hash(tuple(ops))) % 10**9}"
    spec = copy.deepcopy(examples["vllm-llama-8b"]["spec"])
    spec["targetRef"] = {"name": "llama"}
    spec["prometheus"] = dict(spec["prometheus"], url="http://127.0.0.1:9")
    spec["demand"] = {"tokensPerSecond": 20000}
    code, _ = request_json(api.url, "POST", BASE, {"apiVersion": f"{GROUP}/{VERSION}", "kind": "LLMDeployment",
                                                   "metadata": {"name": name}, "spec": spec})
    assert code == 201
    pending, seen = [], [0, 0]
    try:
        for op in ops:
            if op[0] == "edit":
                _, valid, demand = op
                change = {"demand": {"tokensPerSecond": demand},
                          "hardware": {"accelerator": "H100" if valid else "TPU-v9"}}
                assert request_json(api.url, "PATCH", f"{BASE}/{name}", {"spec": change})[0] == 200
            elif op[0] == "begin":
                pending.append(_get(api, name))
            elif op[0] == "finish" and pending:
                _tick(memo, pending.pop(op[1] % len(pending)))
            elif op[0] == "tick":
                _tick(memo, _get(api, name))
            _check(_get(api, name), seen)
        for snapshot in pending:
            _tick(memo, snapshot)
            _check(_get(api, name), seen)
        _tick(memo, _get(api, name))
        final = _get(api, name)
        _check(final, seen)
        status = final["status"]
        assert status["observedGeneration"] == final["metadata"]["generation"], status
        spec_valid = {c["type"]: c for c in status["conditions"]}["SpecValid"]
        assert spec_valid["status"] == ("True" if _valid(final["spec"]) else "False")
        if _valid(final["spec"]):  # and the recommendation is for this spec's demand
            assert status["refitGeneration"] == final["metadata"]["generation"]
            assert status["recommendation"]["replicas"]["target"] >= 1
    finally:
        request_json(api.url, "DELETE", f"{BASE}/{name}")


def test_a_refit_begun_before_an_edit_does_not_restore_spec_valid(world, examples):
    """The case the issue saw: a refit reads a valid spec, the spec is made invalid and the
    timer marks it so, then the old refit finishes. Before: it wrote SpecValid=True over the
    fresh False and later ticks skipped the invalid spec, never fixing it."""
    api, memo = world
    spec = copy.deepcopy(examples["vllm-llama-8b"]["spec"])
    spec.update(targetRef={"name": "llama"}, demand={"tokensPerSecond": 20000},
                prometheus=dict(spec["prometheus"], url="http://127.0.0.1:9"))
    request_json(api.url, "POST", BASE, {"metadata": {"name": "race"}, "spec": spec})
    try:
        before = _get(api, "race")
        request_json(api.url, "PATCH", f"{BASE}/race", {"spec": {"hardware": {"accelerator": "TPU-v9"}}})
        assert _tick(memo, _get(api, "race"))["skipped"] == "invalid spec"
        late = _tick(memo, before)
        assert late.get("dropped") == "stale"
        status = _get(api, "race")["status"]
        spec_valid = {c["type"]: c for c in status["conditions"]}["SpecValid"]
        assert spec_valid["status"] == "False" and status["observedGeneration"] == 2
        assert "recommendation" not in status
    finally:
        request_json(api.url, "DELETE", f"{BASE}/race")
