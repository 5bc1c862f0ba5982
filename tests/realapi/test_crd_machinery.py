"""The CRD through the real API machinery: valid examples accepted, invalid ones refused
with 422 naming the field, defaults applied, unknown fields pruned, status separate."""

import copy

import pytest

from ala_operator.devstack.emulator import EmulatorServer
from support.realapi import RealApi

pytestmark = pytest.mark.realapi



@pytest.fixture(scope="module")
def api(realapi_binary):
    with EmulatorServer(("default", "llm")) as core, RealApi(core.url, realapi_binary) as real:
        yield real.call


def base(namespace="llm"):
    return f"/apis/ala.io/v1alpha1/namespaces/{namespace}/llmdeployments"


def test_valid_examples_are_accepted_and_defaulted(api, examples):
    for name, resource in examples.items():
        code, body = api("POST", base(resource["metadata"]["namespace"]), resource)
        assert code == 201, (name, body)
    code, obj = api("GET", base() + "/llama-8b-chat")
    assert code == 200
    spec = obj["spec"]
    assert spec["policy"]["refitIntervalSeconds"] == 60 and spec["policy"]["maxStep"] == 2
    assert spec["prometheus"]["timeoutSeconds"] == 5 and spec["prometheus"]["insecureSkipTLSVerify"] is False
    assert spec["targetRef"]["kind"] == "Deployment" and obj["metadata"]["generation"] == 1


def test_defaults_fill_what_a_minimal_resource_leaves_out(api, examples):
    minimal = copy.deepcopy(examples["vllm-llama-8b"])
    minimal["metadata"] = {"name": "minimal"}
    for key in ("engine", "policy"):
        minimal["spec"].pop(key, None)
    code, obj = api("POST", base(), minimal)
    assert code == 201, obj
    assert obj["spec"]["engine"] == {"name": "vllm"}
    assert obj["spec"]["policy"]["mode"] == "Recommend"


@pytest.mark.parametrize("path, value, field", [
    (("policy", "mode"), "Sometimes", "spec.policy.mode"),
    (("hardware", "acceleratorsPerReplica"), 0, "spec.hardware.acceleratorsPerReplica"),
    (("prometheus", "url"), "ftp://x", "spec.prometheus.url"),
    (("engine", "name"), "llamacpp", "spec.engine.name"),
])
def test_invalid_resources_are_refused_with_422_naming_the_field(api, examples, path, value, field):
    bad = copy.deepcopy(examples["vllm-llama-8b"])
    bad["metadata"] = {"name": "bad-" + path[-1].lower()}
    node = bad["spec"]
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    code, body = api("POST", base(), bad)
    assert code == 422, body
    assert field in body["message"], body["message"]
    assert api("GET", base() + "/" + bad["metadata"]["name"])[0] == 404


def test_missing_required_field_is_refused(api, examples):
    bad = copy.deepcopy(examples["vllm-llama-8b"])
    bad["metadata"] = {"name": "no-model"}
    del bad["spec"]["model"]
    code, body = api("POST", base(), bad)
    assert code == 422 and "spec.model" in body["message"], body


def test_unknown_fields_are_pruned(api, examples):
    extra = copy.deepcopy(examples["vllm-llama-8b"])
    extra["metadata"] = {"name": "pruned"}
    extra["spec"]["bogus"] = {"a": 1}
    extra["spec"]["policy"]["notAField"] = True
    code, obj = api("POST", base(), extra)
    assert code == 201, obj
    assert "bogus" not in obj["spec"] and "notAField" not in obj["spec"]["policy"]


def test_status_subresource_is_separate(api, examples):
    resource = copy.deepcopy(examples["vllm-llama-8b"])
    resource["metadata"] = {"name": "status-check"}
    resource["status"] = {"recommendation": {"batchSize": 1}}
    code, obj = api("POST", base(), resource)
    assert code == 201 and "status" not in obj
    _, after = api("PATCH", base() + "/status-check/status",
                   {"status": {"recommendation": {"batchSize": 64}}, "spec": {"model": "x"}})
    assert after["status"]["recommendation"]["batchSize"] == 64
    assert after["spec"]["model"] == resource["spec"]["model"] and after["metadata"]["generation"] == 1
    _, main = api("PATCH", base() + "/status-check", {"status": {"recommendation": {"batchSize": 2}},
                                                      "spec": {"demand": {"tokensPerSecond": 1000}}})
    assert main["status"]["recommendation"]["batchSize"] == 64
    assert main["metadata"]["generation"] == 2
