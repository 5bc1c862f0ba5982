"""Real kubectl against the real apiextensions-apiserver: the names users type (the short
name `llmd`, the singular, the `ala` category) and the printer columns they read."""

import copy
import shutil
import subprocess

import pytest

from ala_operator.devstack.emulator import EmulatorServer
from support.realapi import RealApi

pytestmark = pytest.mark.realapi
BASE = "/apis/ala.io/v1alpha1/namespaces/llm/llmdeployments"


@pytest.fixture(scope="module")
def kubectl(realapi_binary, examples, tmp_path_factory):
    binary = shutil.which("kubectl")
    if not binary:
        pytest.skip("kubectl is not installed (it is on the machine image; elsewhere install kubectl 1.32)")
    with EmulatorServer(("default", "llm")) as core, RealApi(core.url, realapi_binary) as real:
        resource = copy.deepcopy(examples["vllm-llama-8b"])
        assert real.call("POST", BASE, resource)[0] == 201
        status = {"recommendation": {"replicas": {"target": 3}, "batchSize": 64, "confidence": 0.87},
                  "conditions": [{"type": "RecommendationProvided", "status": "True", "reason": "Recommended",
                                  "message": "", "lastTransitionTime": "2026-12-02T00:00:00Z"}]}
        assert real.call("PATCH", f"{BASE}/{resource['metadata']['name']}/status", {"status": status})[0] == 200
        kubeconfig = real.write_kubeconfig(tmp_path_factory.mktemp("kubectl") / "kubeconfig")

        def run(*args):
            out = subprocess.run([binary, "--kubeconfig", str(kubeconfig), *args], capture_output=True, text=True,
                                 timeout=60)
            assert out.returncode == 0, out.stderr
            return out.stdout
        yield run


def _table(text):
    header, *rows = [line.split() for line in text.strip().splitlines()]
    return [dict(zip(header, row)) for row in rows]


@pytest.mark.parametrize("name", ["llmd", "llmdeployment", "llmdeployments", "llmdeployments.ala.io", "ala"])
def test_every_name_users_type_lists_the_resource(kubectl, name):
    (row,) = _table(kubectl("get", name, "-n", "llm"))
    assert row["NAME"] == "llama-8b-chat"


def test_printer_columns_show_the_recommendation(kubectl):
    (row,) = _table(kubectl("get", "llmd", "-A"))
    assert list(row) == ["NAMESPACE", "NAME", "TARGET", "BATCH", "CONFIDENCE", "READY", "MODE", "AGE"]
    assert (row["TARGET"], row["BATCH"], row["CONFIDENCE"], row["READY"], row["MODE"]) == \
        ("3", "64", "0.87", "True", "Recommend")
    (single,) = _table(kubectl("get", "llmdeployment", "llama-8b-chat", "-n", "llm"))
    assert single["TARGET"] == "3"


def test_api_resources_lists_the_short_name_and_category(kubectl):
    (row,) = _table(kubectl("api-resources", "--api-group=ala.io"))
    assert row["SHORTNAMES"] == "llmd" and row["KIND"] == "LLMDeployment"
