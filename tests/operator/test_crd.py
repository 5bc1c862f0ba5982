"""One source of truth for the CRD (``operator/crd.yaml``, which the spec parser reads), the
copies the chart and ``deploy/`` need checked against it, the schema and the planner's
dataclasses agreeing on every bound and default, and example resources valid against it."""

from pathlib import Path

import jsonschema
import pytest
import yaml

from ala.planner import Demand, Deployment, Objectives, Policy
from ala_operator.constants import GROUP, KIND, PLURAL, VERSION
from ala_operator.spec import field_schema, parse_spec

ROOT = Path(__file__).resolve().parents[2]


SOURCE = ROOT / "operator" / "crd.yaml"
COPIES = (ROOT / "deploy" / "crd.yaml", ROOT / "charts" / "ala-operator" / "crds" / "llmdeployments.yaml")


def _crd():
    return yaml.safe_load(SOURCE.read_text())


@pytest.mark.parametrize("copy", COPIES, ids=lambda p: str(p.relative_to(ROOT)))
def test_copies_are_the_source(copy):
    """Helm and kustomize read files inside their own trees, so the chart and deploy/ hold
    copies; each must be the source byte for byte."""
    assert copy.read_text() == SOURCE.read_text(), (
        f"{copy.relative_to(ROOT)} differs from operator/crd.yaml (the source): cp operator/crd.yaml "
        f"{copy.relative_to(ROOT)}")


DEPLOYMENT = Deployment("meta-llama/Llama-3.1-8B-Instruct", "H100", output_tokens=256)
#: CRD field -> how the planner's dataclasses take its value (and raise ValueError on a bad one).
PLANNER_FIELDS = {
    "hardware.acceleratorsPerReplica": lambda v: Deployment("m", "H100", accelerators=v),
    "workload.inputTokens": lambda v: Deployment("m", "H100", input_tokens=v),
    "workload.outputTokens": lambda v: Deployment("m", "H100", output_tokens=v),
    "demand.tokensPerSecond": lambda v: Demand(output_tokens_per_s=v).tokens_per_s(DEPLOYMENT),
    "demand.requestsPerSecond": lambda v: Demand(requests_per_s=v).tokens_per_s(DEPLOYMENT),
    "slo.maxInterTokenLatencyMs": lambda v: Objectives(max_itl_ms=v),
    "slo.maxRequestLatencySeconds": lambda v: Objectives(max_request_latency_s=v),
    "policy.confidenceLevel": lambda v: Policy(confidence_level=v),
    "policy.minReplicas": lambda v: Policy(min_replicas=v),
    "policy.maxReplicas": lambda v: Policy(min_replicas=0, max_replicas=v),
    "policy.headroom": lambda v: Policy(headroom=v),
    "cost.acceleratorPricePerHour": lambda v: Policy(price_per_hour=v),
    "engine.maxBatchSize": lambda v: Policy(max_batch=v),
}
#: CRD default -> the dataclass field whose default it must equal.
PLANNER_DEFAULTS = {
    "hardware.acceleratorsPerReplica": Deployment.__dataclass_fields__["accelerators"],
    "engine.name": Deployment.__dataclass_fields__["engine"],
    "policy.confidenceLevel": Policy.__dataclass_fields__["confidence_level"],
    "policy.minReplicas": Policy.__dataclass_fields__["min_replicas"],
    "policy.headroom": Policy.__dataclass_fields__["headroom"],
}
# engine.precision has none either: absent, it comes from the model name's quantisation
# suffix (-FP8, -AWQ), else the planner's bfloat16.
# engine.maxBatchSize has no schema default on purpose (the API server would write it into
# every resource); an absent value takes the planner's own default.


def _probes(rule):
    """Values at and just beyond each bound of a numeric field, and a large one."""
    step = 1 if rule["type"] == "integer" else 1e-6
    out = [1e6 if rule["type"] == "number" else 10 ** 6]
    for bound in ("minimum", "maximum"):
        if bound in rule:
            out += [rule[bound] - step, rule[bound], rule[bound] + step]
    return out


def _accepts(make, value):
    try:
        make(value)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("path", sorted(PLANNER_FIELDS))
def test_schema_and_planner_agree_on_bounds(path):
    """Every value the API server accepts the planner accepts, and every value it refuses
    the planner refuses too: the bounds are one rule, not two copies."""
    rule = field_schema(path)
    validator = jsonschema.Draft4Validator(rule)
    disagree = [(v, validator.is_valid(v), _accepts(PLANNER_FIELDS[path], v)) for v in _probes(rule)
                if validator.is_valid(v) != _accepts(PLANNER_FIELDS[path], v)]
    assert not disagree, f"spec.{path}: (value, CRD accepts, planner accepts) {disagree}"


@pytest.mark.parametrize("path", sorted(PLANNER_DEFAULTS))
def test_schema_and_planner_agree_on_defaults(path):
    assert field_schema(path)["default"] == PLANNER_DEFAULTS[path].default


def test_every_numeric_spec_field_is_bounded_by_the_schema(examples):
    """parse_spec reads its rules from the schema: a value beyond a schema bound is refused
    by both, naming the field."""
    import copy as _copy

    from ala_operator.spec import SpecError
    for path in PLANNER_FIELDS:
        rule = field_schema(path)
        if "minimum" not in rule:
            continue
        below = rule["minimum"] - (1 if rule["type"] == "integer" else 1e-6)
        resource = _copy.deepcopy(examples["vllm-llama-8b"]["spec"])
        node = resource
        *parents, leaf = path.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = below
        with pytest.raises(SpecError, match=path.replace(".", r"\.")):
            parse_spec(resource)


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
