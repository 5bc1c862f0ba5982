"""Resources drawn from the CRD's own OpenAPI schema (operator/crd.yaml), not from a list
of fields someone thought of: every property, its type, bounds (exclusive where the schema
says so), enums, pattern and default.

1. Anything the API server would admit is either accepted or refused with a ``SpecError``
   naming a field; when accepted, the refit timer's body runs on it to a status patch
   (Prometheus down, so the prior answers) and raises nothing. The headroom crash (a value
   the schema allows, refused by the planner with a bare ValueError) is the kind of thing
   this finds.
2. One schema rule broken (wrong type, out of bounds, not in the enum, pattern, null where
   required): refused with a ``SpecError`` that names that field or the object holding it.
3. Unknown fields (which the API server prunes) change nothing.
"""

import copy
import logging
import math
import re

import kopf
import pytest
from support.resources import set_path
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from ala.catalog import Catalog
from ala_operator.handlers import refit
from ala_operator.metrics import OperatorMetrics
from ala_operator.prometheus import PrometheusClient
from ala_operator.spec import SpecError, field_schema, parse_spec, spec_schema

pytestmark = [pytest.mark.faults, pytest.mark.security]
LOG = logging.getLogger("test")
CATALOG = Catalog.load()
#: Free-text fields whose useful values come from the catalog: drawn from it most of the time.
NAMED = {
    "model": list(CATALOG.models["model"][:40]),
    "hardware.accelerator": list(CATALOG.accelerators["name"]),
    "engine.precision": ["bfloat16", "float16", "fp8", "int8", "int4", "16bit"],
}


def _number(rule: dict, integer: bool):
    low, high = rule.get("minimum"), rule.get("maximum")
    if integer:
        low = 0 if low is None else int(low)
        return st.integers(low, int(high) if high is not None else low + 10**6)
    strict_low, strict_high = bool(rule.get("exclusiveMinimum")), bool(rule.get("exclusiveMaximum"))
    values = st.floats(min_value=low, max_value=high if high is not None else 1e12, allow_nan=False,
                       allow_infinity=False, exclude_min=strict_low and low is not None,
                       exclude_max=strict_high and high is not None)
    edges = [v for v in (low, high) if v is not None]
    edges = [v for v in edges if not ((v == low and strict_low) or (v == high and strict_high))]
    return st.one_of(values, st.sampled_from(edges)) if edges else values


def from_schema(rule: dict, path: str = ""):
    """A strategy for values the schema admits (what the API server would store)."""
    if path in NAMED:  # mostly names the catalog knows, so that draws get past the name checks
        known, text = st.sampled_from(NAMED[path]), st.text(min_size=rule.get("minLength", 0), max_size=12)
        return st.integers(0, 9).flatmap(lambda i: known if i else text)
    kind = rule.get("type")
    if path == "demand":  # mostly exactly one of the three (any subset is schema-valid)
        one = st.one_of(*[st.fixed_dictionaries({k: from_schema(v, f"demand.{k}")})
                          for k, v in rule["properties"].items()])
        some = st.fixed_dictionaries({}, optional={k: from_schema(v, f"demand.{k}")
                                          for k, v in rule["properties"].items()})
        return st.integers(0, 9).flatmap(lambda i: one if i else some)
    if "enum" in rule:
        return st.sampled_from(rule["enum"])
    if kind == "object":
        props = rule.get("properties") or {}
        required = set(rule.get("required") or [])
        fixed = {k: from_schema(v, f"{path}.{k}".strip(".")) for k, v in props.items() if k in required}
        optional = {k: from_schema(v, f"{path}.{k}".strip(".")) for k, v in props.items() if k not in required}
        return st.fixed_dictionaries(fixed, optional=optional)
    if kind in ("number", "integer"):
        return _number(rule, kind == "integer")
    if kind == "boolean":
        return st.booleans()
    if kind == "string":
        if rule.get("pattern") == "^https?://":
            return st.builds(lambda s, h: f"{s}://{h}", st.sampled_from(["http", "https"]),
                             st.sampled_from(["prom:9090", "127.0.0.1:9", "thanos.example.com/t"]))
        return st.text(min_size=rule.get("minLength", 0), max_size=16)
    raise AssertionError(f"no strategy for schema {rule} at spec.{path}")


def _leaves(rule: dict, path: str = "") -> list[tuple[str, dict]]:
    if rule.get("type") == "object" and rule.get("properties"):
        out = []
        for key, sub in rule["properties"].items():
            out += _leaves(sub, f"{path}.{key}".strip("."))
        return out
    return [(path, rule)]


LEAVES = _leaves(spec_schema())


def _violations(rule: dict):
    """Values that break this leaf's schema."""
    kind = rule.get("type")
    bad = []
    if kind in ("number", "integer"):
        bad += ["7", True, [1], {"a": 1}]
        if rule.get("minimum") is not None:
            bad.append(rule["minimum"] - 1 if not rule.get("exclusiveMinimum") else rule["minimum"])
        if rule.get("maximum") is not None:
            bad.append(rule["maximum"] + 1 if not rule.get("exclusiveMaximum") else rule["maximum"])
        if kind == "integer":
            bad.append(2.5)
    elif kind == "boolean":
        bad += ["false", "true", 0, 1]
    elif kind == "string":
        bad += [5, ["x"], {"a": "b"}]
        if "enum" in rule:
            bad.append("surely-not-" + rule["enum"][0])
        if rule.get("pattern"):
            bad.append("ftp://prom")
        if rule.get("minLength"):
            bad.append("")
    return bad


class _Cluster:
    def get_scale(self, *target):
        return 3, 3

    def set_scale(self, *args):
        pass

    def annotate(self, *args):
        pass

    def patch_status(self, *args, **kwargs):
        return None

    def config_map(self, namespace, name):
        # Whatever a generated spec names: a config of a small dense decoder, a missing map,
        # or one whose key is something else.
        from ala_operator.kube import TargetNotFound

        if name.startswith("1"):
            raise TargetNotFound(f"GET ConfigMap {namespace}/{name}: 404 Not Found", 404)
        if name.startswith("2"):
            return {"other": "{}"}
        return {"config.json": '{"hidden_size": 2048, "num_hidden_layers": 16, "vocab_size": 32000, '
                               '"num_attention_heads": 16}'}


@pytest.fixture(scope="module")
def memo(small_model):
    from types import SimpleNamespace
    return SimpleNamespace(model=small_model, metrics=OperatorMetrics(), cluster=_Cluster(),
                           prometheus=lambda spec, ns: PrometheusClient("http://127.0.0.1:9", retries=0))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(spec=from_schema(spec_schema()))
def test_whatever_the_schema_admits_is_refused_by_name_or_refitted_without_raising(memo, spec):
    try:
        parse_spec(copy.deepcopy(spec))
    except SpecError as exc:
        event(f"refused: {exc.reason}")
        assert re.fullmatch(r"[A-Z][A-Za-z]+", exc.reason), exc.reason
        assert str(exc).startswith("spec."), str(exc)
        # and a field the schema knows (or the whole spec, or an object of it)
        if exc.field:
            field_schema(exc.field)
        return
    event("accepted and refitted")
    patch = kopf.Patch()
    out = refit(spec=spec, meta={"namespace": "llm", "name": "x", "generation": 1}, status={}, patch=patch,
                logger=LOG, memo=memo)
    assert "conditions" in patch["status"], out
    rec = patch["status"].get("recommendation") or {}
    target = (rec.get("replicas") or {}).get("target")
    if target is not None:
        assert isinstance(target, int) and target >= 0
    for value in (rec.get("confidence"), rec.get("batchSize")):
        assert value is None or (isinstance(value, (int, float)) and math.isfinite(value))


def _base(examples):
    spec = copy.deepcopy(examples["vllm-llama-8b"]["spec"])
    parse_spec(copy.deepcopy(spec))
    return spec


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(leaf=st.sampled_from(LEAVES), data=st.data())
def test_one_broken_schema_rule_is_refused_naming_its_field(examples, leaf, data):
    path, rule = leaf
    bad = _violations(rule)
    assume(bad)
    value = data.draw(st.sampled_from(bad))
    spec = _base(examples)
    set_path(spec, path, value)
    if path in ("demand.tokensPerSecond", "demand.requestsPerSecond", "demand.query"):
        # the base example has tokensPerSecond: a second demand field is refused as ambiguous
        spec["demand"] = {path.split(".")[1]: value}
    with pytest.raises(SpecError) as caught:
        parse_spec(spec)
    field = caught.value.field
    assert path == field or path.startswith(field + ".") or field.startswith(path), (path, field, str(caught.value))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(where=st.sampled_from([""] + sorted({p.rsplit(".", 1)[0] for p, _ in LEAVES if "." in p})),
       key=st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=3, max_size=10),
       value=st.one_of(st.none(), st.integers(), st.text(max_size=5), st.booleans()))
def test_unknown_fields_change_nothing(examples, where, key, value):
    spec = _base(examples)
    known = {p.split(".")[-1] for p, _ in LEAVES} | {p.split(".")[0] for p, _ in LEAVES}
    assume(key not in known)
    extended = copy.deepcopy(spec)
    node = extended
    for part in [p for p in where.split(".") if p]:
        node = node.setdefault(part, {})
    node[key] = value
    assert parse_spec(extended) == parse_spec(spec)
