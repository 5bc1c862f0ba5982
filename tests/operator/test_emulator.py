"""The API emulator over real HTTP: the bookkeeping kopf relies on, and the operator's
Kubernetes adapter (KubeCluster) against it."""

import base64

import pytest

from ala_operator.devstack.emulator import EmulatorServer, label_match, merge_patch
from ala_operator.devstack.loopback import request_json
from ala_operator.kube import ClusterError, KubeCluster, TargetNotFound

DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"
LLM = "/apis/ala.io/v1alpha1/namespaces/default/llmdeployments"


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    with EmulatorServer(("default",)) as server:
        yield server


def call(api, method, path, body=None, content_type=None):
    if content_type == "application/json-patch+json":
        assert isinstance(body, list)
    return request_json(api.url, method, path, body)


def test_versions_uids_and_generation(api):
    code, obj = call(api, "POST", LLM, {"metadata": {"name": "a"}, "spec": {"x": 1}, "status": {"y": 1}})
    assert code == 201 and obj["metadata"]["generation"] == 1 and obj["metadata"]["uid"]
    assert "status" not in obj  # status is set only through the subresource
    _, after_status = call(api, "PATCH", LLM + "/a/status", {"status": {"y": 2}, "spec": {"x": 99}})
    assert after_status["status"] == {"y": 2} and after_status["spec"] == {"x": 1}
    assert after_status["metadata"]["generation"] == 1
    assert int(after_status["metadata"]["resourceVersion"]) > int(obj["metadata"]["resourceVersion"])
    _, after_spec = call(api, "PATCH", LLM + "/a", {"spec": {"x": 2}, "status": {"y": 3}})
    assert after_spec["metadata"]["generation"] == 2 and after_spec["status"] == {"y": 2}
    assert after_spec["metadata"]["uid"] == obj["metadata"]["uid"]


def test_json_patch_test_op_and_stale_versions_conflict(api):
    _, obj = call(api, "POST", LLM, {"metadata": {"name": "b"}, "spec": {}})
    stale = [{"op": "test", "path": "/metadata/resourceVersion", "value": "0"},
             {"op": "add", "path": "/metadata/finalizers", "value": ["x"]}]
    assert call(api, "PATCH", LLM + "/b", stale, "application/json-patch+json")[0] == 422
    fresh = [dict(stale[0], value=obj["metadata"]["resourceVersion"]), stale[1]]
    code, patched = call(api, "PATCH", LLM + "/b", fresh, "application/json-patch+json")
    assert code == 200 and patched["metadata"]["finalizers"] == ["x"]
    assert call(api, "PATCH", LLM + "/b", {"metadata": {"resourceVersion": "1", "labels": {"a": "b"}}})[0] == 409
    # Finalizers hold deletion until released; then the object is gone.
    code, marked = call(api, "DELETE", LLM + "/b")
    assert code == 200 and marked["metadata"]["deletionTimestamp"]
    assert call(api, "GET", LLM + "/b")[0] == 200
    call(api, "PATCH", LLM + "/b", {"metadata": {"finalizers": None}})
    assert call(api, "GET", LLM + "/b")[0] == 404


def test_scale_subresource_namespaces_selectors_and_generate_name(api):
    call(api, "POST", DEPLOYMENTS, {"metadata": {"name": "w", "labels": {"app": "w", "tier": "gpu"}},
                                    "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "w"}}}})
    code, scale = call(api, "GET", DEPLOYMENTS + "/w/scale")
    assert code == 200 and scale["kind"] == "Scale" and scale["spec"]["replicas"] == 2
    assert scale["status"]["selector"] == "app=w"
    assert call(api, "PATCH", DEPLOYMENTS + "/w/scale", {"spec": {"replicas": -1}})[0] == 422
    call(api, "PATCH", DEPLOYMENTS + "/w/scale", {"spec": {"replicas": 5}})
    assert call(api, "GET", DEPLOYMENTS + "/w")[1]["spec"]["replicas"] == 5
    assert [n["metadata"]["name"] for n in call(api, "GET", "/api/v1/namespaces")[1]["items"]] == ["default"]
    assert call(api, "GET", "/api/v1/namespaces/nope")[0] == 404
    listing = call(api, "GET", DEPLOYMENTS + "?labelSelector=tier%20in%20(gpu,cpu),app!=x")[1]
    assert listing["kind"] == "DeploymentList" and [i["metadata"]["name"] for i in listing["items"]] == ["w"]
    assert call(api, "GET", DEPLOYMENTS + "?labelSelector=!tier")[1]["items"] == []
    code, ev = call(api, "POST", "/api/v1/namespaces/default/events", {"metadata": {"generateName": "e-"}})
    assert code == 201 and ev["metadata"]["name"].startswith("e-") and len(ev["metadata"]["name"]) > 2


def test_selector_and_merge_patch_helpers():
    assert label_match({"a": "1"}, "a=1,b notin (2)") and not label_match({"a": "1"}, "a==2")
    assert merge_patch({"a": {"b": 1, "c": 2}, "l": [1]}, {"a": {"b": None}, "l": [2]}) == {"a": {"c": 2}, "l": [2]}


def test_kube_cluster_adapter(api, tmp_path, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", str(api.write_kubeconfig(tmp_path / "kubeconfig")))
    cluster = KubeCluster.from_environment()
    call(api, "POST", DEPLOYMENTS, {"metadata": {"name": "k"}, "spec": {"replicas": 3}})
    call(api, "PATCH", DEPLOYMENTS + "/k/status", {"status": {"readyReplicas": 2}})
    assert cluster.get_scale("default", "apps/v1", "Deployment", "k") == (3, 2)
    # Kubernetes omits readyReplicas when it is zero: that is 0 ready, not "all of them".
    call(api, "POST", DEPLOYMENTS, {"metadata": {"name": "cold"}, "spec": {"replicas": 3}})
    call(api, "PATCH", DEPLOYMENTS + "/cold/status", {"status": {"replicas": 3, "unavailableReplicas": 3,
                                                                  "observedGeneration": 1}})
    assert cluster.get_scale("default", "apps/v1", "Deployment", "cold") == (3, 0)
    cluster.set_scale("default", "apps/v1", "Deployment", "k", 4)
    cluster.annotate("default", "apps/v1", "Deployment", "k", {"ala.io/x": "1"})
    obj = call(api, "GET", DEPLOYMENTS + "/k")[1]
    assert obj["spec"]["replicas"] == 4 and obj["metadata"]["annotations"] == {"ala.io/x": "1"}
    cluster.annotate("default", "apps/v1", "Deployment", "k", {"ala.io/x": None})
    assert not call(api, "GET", DEPLOYMENTS + "/k")[1]["metadata"].get("annotations")
    with pytest.raises(TargetNotFound, match="Deployment default/gone"):
        cluster.get_scale("default", "apps/v1", "Deployment", "gone")
    with pytest.raises(TargetNotFound, match="kind Rollout"):
        cluster.get_scale("default", "apps/v1", "Rollout", "k")
    call(api, "POST", "/api/v1/namespaces/default/secrets",
         {"metadata": {"name": "prom"}, "data": {"token": base64.b64encode(b"s3cret").decode()}})
    call(api, "POST", "/api/v1/namespaces/default/secrets",
         {"metadata": {"name": "prom-labelled", "labels": {"a": "b"}}, "stringData": {"token": "plain"}})
    assert cluster.secret("default", "prom") == ({}, {"token": "s3cret"})
    assert cluster.secret("default", "prom-labelled") == ({"a": "b"}, {"token": "plain"})


def _watch_lines(api, query):
    import json
    import urllib.request
    with urllib.request.urlopen(f"{api.url}{LLM}?watch=true&timeoutSeconds=1&{query}", timeout=10) as r:
        return [json.loads(line) for line in r.read().splitlines() if line.strip()]


def test_a_watch_resumes_from_a_list_version_and_expired_ones_get_410(tmp_path):
    with EmulatorServer(("default",)) as api:
        call(api, "POST", LLM, {"metadata": {"name": "w1"}, "spec": {}})
        listed = call(api, "GET", LLM)[1]["metadata"]["resourceVersion"]
        _, changed = call(api, "PATCH", LLM + "/w1", {"spec": {"x": 1}})
        assert changed["metadata"]["resourceVersion"] > listed  # the list reports the latest, not the next
        events = _watch_lines(api, f"resourceVersion={listed}")
        # Only what came after the list: the change, not the object again as ADDED.
        assert [(e["type"], e["object"]["metadata"]["resourceVersion"]) for e in events] == [
            ("MODIFIED", changed["metadata"]["resourceVersion"])]
        assert [e["type"] for e in _watch_lines(api, "")] == ["ADDED"]  # no version: the current state
        assert _watch_lines(api, "resourceVersion=abc")[0]["object"]["code"] == 410

    import ala_operator.devstack.emulator as emulator
    original = emulator.WATCH_HISTORY
    emulator.WATCH_HISTORY = 2
    try:
        with EmulatorServer(("default",)) as api:
            call(api, "POST", LLM, {"metadata": {"name": "w2"}, "spec": {}})
            first = call(api, "GET", LLM)[1]["metadata"]["resourceVersion"]
            for x in range(3):
                call(api, "PATCH", LLM + "/w2", {"spec": {"x": x}})
            (gone,) = _watch_lines(api, f"resourceVersion={first}")
            assert gone["type"] == "ERROR" and gone["object"]["code"] == 410
    finally:
        emulator.WATCH_HISTORY = original


def test_patch_resource_retries_conflicts_and_server_errors(api, tmp_path, monkeypatch):
    from ala_operator.kube import ClusterError

    monkeypatch.setenv("KUBECONFIG", str(api.write_kubeconfig(tmp_path / "kubeconfig")))
    cluster = KubeCluster.from_environment()
    call(api, "POST", LLM, {"metadata": {"name": "p"}, "spec": {}})
    api.emulator.fail("PATCH", r"/llmdeployments/p/status$", 409, 1)
    api.emulator.fail("PATCH", r"/llmdeployments/p/status$", 503, 1)
    cluster.patch_resource("default", "p", {"status": {"a": 1}, "metadata": {"annotations": {"k": "v"}}},
                           backoff_s=0.01)
    obj = call(api, "GET", LLM + "/p")[1]
    assert obj["status"] == {"a": 1} and obj["metadata"]["annotations"] == {"k": "v"}
    api.emulator.fail("PATCH", r"/llmdeployments/p/status$", 422, 1)
    with pytest.raises(ClusterError):
        cluster.patch_resource("default", "p", {"status": {"a": 2}}, backoff_s=0.01)
    cluster.patch_resource("default", "gone", {"status": {"a": 1}})  # a resource that is gone: nothing to do
    with pytest.raises(TargetNotFound):
        cluster.patch_status("default", "gone", {"a": 1})


def test_kube_cluster_reads_and_sets_the_engine_batch_limit(api, tmp_path, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", str(api.write_kubeconfig(tmp_path / "kubeconfig")))
    cluster = KubeCluster.from_environment()
    containers = [{"name": "vllm", "image": "vllm/vllm-openai:v0.9.0",
                   "args": ["--model", "m", "--max-num-seqs", "256"]}, {"name": "proxy", "image": "envoy"}]
    call(api, "POST", DEPLOYMENTS, {"metadata": {"name": "engine"}, "spec": {
        "replicas": 2, "template": {"spec": {"containers": containers}}}})
    call(api, "PATCH", DEPLOYMENTS + "/engine/status", {"status": {
        "observedGeneration": 1, "replicas": 2, "updatedReplicas": 2, "readyReplicas": 2, "availableReplicas": 2}})
    target = ("default", "apps/v1", "Deployment", "engine")
    assert cluster.engine_batch(*target, "vllm") == (256, False)
    assert cluster.set_engine_batch(*target, "vllm", 96) == 256
    obj = call(api, "GET", DEPLOYMENTS + "/engine")[1]
    spec = obj["spec"]["template"]["spec"]["containers"]
    assert spec[0]["args"] == ["--model", "m", "--max-num-seqs", "96"] and spec[1] == containers[1]
    # The template changed (generation 2) and the controller has not caught up: rolling out.
    assert cluster.engine_batch(*target, "vllm") == (96, True)
    assert cluster.engine_batch(*target, "sglang") == (None, True)
    with pytest.raises(ClusterError, match="--max-running-requests"):
        cluster.set_engine_batch(*target, "sglang", 32)
