"""The LLMDeployment spec, read into a frozen dataclass and checked field by field.

The rules come from one place, the CRD's own schema (``crd.yaml`` in this package; the
chart and ``deploy/`` carry copies checked against it): each field's type, bounds,
default and allowed values are read from it, so the API server's validation and this one
cannot drift apart. What a schema cannot say (exactly one demand, a known model, maxReplicas
at least minReplicas) is checked here. An invalid spec raises ``SpecError`` naming the field
and a CamelCase reason; the handler turns it into ``SpecValid=False`` without touching the
rest of the status.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Mapping

import yaml

from ala.catalog import Catalog, UnknownAcceleratorError, UnknownModelError, precision_bytes, precision_from_name
from ala.planner import Deployment, Objectives, Policy

from .constants import MODE_RECOMMEND



@functools.lru_cache(maxsize=1)
def crd() -> dict:
    """The CustomResourceDefinition shipped with the operator (the one source)."""
    return yaml.safe_load((resources.files(__package__) / "crd.yaml").read_text())


def spec_schema() -> dict:
    """The OpenAPI schema of ``spec``."""
    return crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]


def field_schema(path: str) -> dict:
    """The schema of one spec field by dotted path (``policy.headroom``)."""
    node = spec_schema()
    for key in path.split("."):
        properties = node.get("properties") or {}
        if key not in properties:
            raise KeyError(f"the CRD schema has no field spec.{path}")
        node = properties[key]
    return node


ENGINES = tuple(field_schema("engine.name")["enum"])
MODES = tuple(field_schema("policy.mode")["enum"])


class SpecError(ValueError):
    """A spec that cannot be used: ``field`` is the dotted path, ``reason`` CamelCase."""

    def __init__(self, field: str, reason: str, message: str):
        super().__init__(f"spec.{field}: {message}")
        self.field, self.reason = field, reason


@dataclass(frozen=True)
class PrometheusSpec:
    url: str
    selector: str = ""
    secret_name: str | None = None
    token_key: str | None = None
    username_key: str | None = None
    password_key: str | None = None
    verify_tls: bool = True
    timeout_s: float = 5.0
    rate_window_s: int = 120
    step_s: int = 30
    queries: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LLMDeploymentSpec:
    target_api_version: str
    target_kind: str
    target_name: str
    deployment: Deployment
    demand_tokens_per_s: float | None
    demand_requests_per_s: float | None
    demand_query: str | None
    objectives: Objectives
    policy: Policy
    prometheus: PrometheusSpec
    mode: str = MODE_RECOMMEND
    min_confidence: float = 0.5
    refit_interval_s: int = 60
    stabilization_window_s: int = 300
    max_step: int = 2
    warmup_s: int = 120


def _get(spec: Mapping, path: str, default: Any = None) -> Any:
    node: Any = spec
    for key in path.split("."):
        if not isinstance(node, Mapping) or key not in node or node[key] is None:
            return default
        node = node[key]
    return node


def _number(spec: Mapping, path: str):
    """A number checked against its field's schema: type, bounds (exclusive where the
    schema says so), and the schema's default when absent (None when it has none)."""
    rule = field_schema(path)
    value = _get(spec, path, rule.get("default"))
    if value is None:
        return None
    integer = rule.get("type") == "integer"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SpecError(path, "NotANumber", f"{value!r} is not a finite number")
    if integer and int(value) != value:
        raise SpecError(path, "NotAnInteger", f"{value!r} is not a whole number")
    low, high = rule.get("minimum"), rule.get("maximum")
    strict_min, strict_max = bool(rule.get("exclusiveMinimum")), bool(rule.get("exclusiveMaximum"))
    if low is not None and (value < low or (strict_min and value == low)):
        raise SpecError(path, "OutOfRange", f"{value!r} must be {'>' if strict_min else '>='} {low}")
    if high is not None and (value > high or (strict_max and value == high)):
        raise SpecError(path, "OutOfRange", f"{value!r} must be {'<' if strict_max else '<='} {high}")
    return int(value) if integer else float(value)


def _text(spec: Mapping, path: str, required: bool = False) -> str | None:
    default = field_schema(path).get("default")
    value = _get(spec, path, default)
    if value is None or value == "":
        if required:
            raise SpecError(path, "MissingField", "is required")
        return default
    if not isinstance(value, str):
        raise SpecError(path, "NotAString", f"{value!r} is not a string")
    return value


def _flag(spec: Mapping, path: str) -> bool:
    """A boolean; the string "false" is refused rather than read as true."""
    value = _get(spec, path, field_schema(path).get("default", False))
    if not isinstance(value, bool):
        raise SpecError(path, "NotABoolean", f"{value!r} is not true or false")
    return value


@functools.lru_cache(maxsize=1)
def _bundled_catalog() -> Catalog:
    # Read once: every refit and spec check parses a spec, and the bundled files do not change.
    return Catalog.load()


def parse_spec(spec: Mapping[str, Any], catalog: Catalog | None = None) -> LLMDeploymentSpec:
    """Read and check a resource's ``spec``; raises ``SpecError`` on the first problem."""
    if not isinstance(spec, Mapping):
        raise SpecError("", "NotAnObject", "spec must be an object")
    catalog = catalog or _bundled_catalog()
    model = _text(spec, "model", required=True)
    accelerator = _text(spec, "hardware.accelerator", required=True)
    try:
        catalog.model(model)
    except UnknownModelError as exc:
        raise SpecError("model", "UnknownModel", str(exc)) from None
    try:
        catalog.accelerator(accelerator)
    except UnknownAcceleratorError as exc:
        raise SpecError("hardware.accelerator", "UnknownAccelerator", str(exc)) from None
    engine = (_text(spec, "engine.name") or "vllm").lower()
    if engine not in ENGINES:
        raise SpecError("engine.name", "UnknownEngine", f"{engine!r} is not one of {', '.join(ENGINES)}")
    # Absent: the checkpoint's name says it (-FP8, -AWQ), else bfloat16.
    precision = _text(spec, "engine.precision") or precision_from_name(model) or "bfloat16"
    try:
        precision_bytes(precision)
    except ValueError as exc:
        raise SpecError("engine.precision", "UnknownPrecision", str(exc)) from None
    tokens_in = _number(spec, "workload.inputTokens")
    tokens_out = _number(spec, "workload.outputTokens")
    deployment = Deployment(model, accelerator,
                            _number(spec, "hardware.acceleratorsPerReplica"),
                            engine, precision, tokens_in, tokens_out)
    tps = _number(spec, "demand.tokensPerSecond")
    rps = _number(spec, "demand.requestsPerSecond")
    query = _text(spec, "demand.query")
    if sum(v is not None for v in (tps, rps, query)) != 1:
        raise SpecError("demand", "AmbiguousDemand", "give exactly one of tokensPerSecond, requestsPerSecond, query")
    if rps is not None and tokens_out is None:
        raise SpecError("workload.outputTokens", "MissingField", "a demand in requests/s needs outputTokens")
    objectives = Objectives(_number(spec, "slo.maxInterTokenLatencyMs"),
                            _number(spec, "slo.maxRequestLatencySeconds"))
    if objectives.max_request_latency_s is not None and tokens_out is None:
        raise SpecError("workload.outputTokens", "MissingField", "a request-latency objective needs outputTokens")
    mode = _text(spec, "policy.mode")
    if mode not in MODES:
        raise SpecError("policy.mode", "UnknownMode", f"{mode!r} is not one of {', '.join(MODES)}")
    min_replicas = _number(spec, "policy.minReplicas")
    max_replicas = _number(spec, "policy.maxReplicas")
    if max_replicas is not None and max_replicas < min_replicas:
        raise SpecError("policy.maxReplicas", "OutOfRange", f"{max_replicas} is below minReplicas {min_replicas}")
    max_batch = _number(spec, "engine.maxBatchSize")  # no schema default: the planner's
    policy = Policy(_number(spec, "policy.confidenceLevel"),
                    min_replicas, max_replicas, _number(spec, "policy.headroom"),
                    _number(spec, "cost.acceleratorPricePerHour"),
                    **({} if max_batch is None else {"max_batch": max_batch}))
    url = _text(spec, "prometheus.url", required=True)
    if not url.startswith(("http://", "https://")):
        raise SpecError("prometheus.url", "InvalidURL", f"{url!r} is not an http(s) URL")
    queries = _get(spec, "prometheus.queries", {}) or {}
    if not isinstance(queries, Mapping):
        raise SpecError("prometheus.queries", "NotAnObject", "must be an object of PromQL overrides")
    # Only the overrides the schema names (the API server prunes any other key).
    queries = {key: _text(spec, f"prometheus.queries.{key}") for key in field_schema("prometheus.queries")["properties"]
               if queries.get(key) not in (None, "")}
    prometheus = PrometheusSpec(
        url=url.rstrip("/"), selector=_text(spec, "prometheus.selector") or "",
        secret_name=_text(spec, "prometheus.secretRef.name"), token_key=_text(spec, "prometheus.secretRef.tokenKey"),
        username_key=_text(spec, "prometheus.secretRef.usernameKey"),
        password_key=_text(spec, "prometheus.secretRef.passwordKey"),
        verify_tls=not _flag(spec, "prometheus.insecureSkipTLSVerify"),
        timeout_s=_number(spec, "prometheus.timeoutSeconds"),
        rate_window_s=_number(spec, "prometheus.rateWindowSeconds"),
        step_s=_number(spec, "prometheus.stepSeconds"),
        queries=dict(queries))
    return LLMDeploymentSpec(
        target_api_version=_text(spec, "targetRef.apiVersion"),
        target_kind=_text(spec, "targetRef.kind"),
        target_name=_text(spec, "targetRef.name", required=True),
        deployment=deployment, demand_tokens_per_s=tps, demand_requests_per_s=rps, demand_query=query,
        objectives=objectives, policy=policy, prometheus=prometheus, mode=mode,
        min_confidence=_number(spec, "policy.minConfidence"),
        refit_interval_s=_number(spec, "policy.refitIntervalSeconds"),
        stabilization_window_s=_number(spec, "policy.stabilizationWindowSeconds"),
        max_step=_number(spec, "policy.maxStep"),
        warmup_s=_number(spec, "policy.warmupSeconds"))
