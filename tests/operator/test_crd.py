"""One source of truth for the CRD, and example resources valid against its schema."""

from pathlib import Path

import jsonschema
import pytest
import yaml

from ala_operator.constants import GROUP, KIND, PLURAL, VERSION
from ala_operator.spec import parse_spec

ROOT = Path(__file__).resolve().parents[2]


def _crd():
    return yaml.safe_load((ROOT / "deploy" / "crd.yaml").read_text())


def test_operator_copy_is_identical_to_deploy():
    assert (ROOT / "operator" / "crd.yaml").read_text() == (ROOT / "deploy" / "crd.yaml").read_text()


def test_crd_names_match_the_constants():
    crd = _crd()
    assert crd["spec"]["group"] == GROUP and crd["spec"]["names"]["kind"] == KIND
    assert crd["spec"]["names"]["plural"] == PLURAL and crd["metadata"]["name"] == f"{PLURAL}.{GROUP}"
    version = crd["spec"]["versions"][0]
    assert version["name"] == VERSION and version["subresources"] == {"status": {}}
    columns = {c["name"] for c in version["additionalPrinterColumns"]}
    assert {"Target", "Batch", "Confidence", "Ready"} <= columns


def _schema():
    return _crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def test_examples_are_valid_and_parse(examples):
    assert len(examples) == 3
    for name, resource in examples.items():
        jsonschema.Draft4Validator(_schema()).validate(resource)
        spec = parse_spec(resource["spec"])
        assert spec.target_name and spec.prometheus.url.startswith("http")


@pytest.mark.parametrize("path,value,fragment", [
    (("spec", "policy", "mode"), "Yolo", "Yolo"),
    (("spec", "hardware", "acceleratorsPerReplica"), 0, "0"),
    (("spec", "prometheus", "url"), "ftp://x", "ftp://x"),
])
def test_schema_rejects_bad_values(examples, path, value, fragment):
    resource = yaml.safe_load(yaml.safe_dump(examples["vllm-llama-8b"]))
    node = resource
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    with pytest.raises(jsonschema.ValidationError, match=fragment):
        jsonschema.Draft4Validator(_schema()).validate(resource)
