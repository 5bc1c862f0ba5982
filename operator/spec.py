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
import json
from typing import Any, Callable, Mapping

import pandas as pd
import yaml

from ala.catalog import (Catalog, CatalogFileError, UnknownAcceleratorError, UnknownModelError, accelerator_row,
                         model_from_config, model_row, precision_bytes, precision_from_name)
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
class ForecastSpec:
    """``policy.forecast`` when its model is Seasonal (see ``forecast.planned_demand``)."""

    horizon_s: int = 900
    quantile: float = 0.95
    history_days: int = 14


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
    #: Catalog rows the resource gives (``modelFacts``, ``hardware.acceleratorSpec``); answers
    #: use the fitted model's catalog extended by them.
    model_facts: pd.DataFrame | None = field(default=None, compare=False, repr=False)
    accelerator_facts: pd.DataFrame | None = field(default=None, compare=False, repr=False)
    #: ``(ConfigMap name, key)`` of the model's config.json when it has not been read (no reader given).
    model_config_ref: tuple[str, str] | None = None
    #: The demand is what the engine receives (``demand.fromEngine``), read at each refit.
    demand_from_engine: bool = False
    #: Size for the forecast demand (None: for the demand measured now).
    forecast: ForecastSpec | None = None
    #: Apply mode also sets the engine's batch limit in the pod template.
    apply_batch: bool = False
    apply_batch_min_gain: float = 0.1
    batch_window_s: int = 3600


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


def parse_spec(spec: Mapping[str, Any], catalog: Catalog | None = None,
               read_config_map: Callable[[str], Mapping[str, str]] | None = None) -> LLMDeploymentSpec:
    """Read and check a resource's ``spec``; raises ``SpecError`` on the first problem.

    ``read_config_map(name)`` returns a ConfigMap's data in the resource's namespace (raising
    ``SpecError`` when it cannot); without it a ``modelFacts.configMapRef`` is left unread
    (``model_config_ref``) and the model's name is not checked against the catalog.
    """
    if not isinstance(spec, Mapping):
        raise SpecError("", "NotAnObject", "spec must be an object")
    catalog = catalog or _bundled_catalog()
    model = _text(spec, "model", required=True)
    accelerator = _text(spec, "hardware.accelerator", required=True)
    model_facts, config_ref = _model_facts(spec, model, catalog, read_config_map)
    accelerator_facts = _accelerator_facts(spec, accelerator, catalog)
    catalog = catalog.extend(accelerators=accelerator_facts, models=model_facts)
    if config_ref is None:  # else checked once the ConfigMap is read
        try:
            catalog.model(model)
        except UnknownModelError as exc:
            raise SpecError("model", "UnknownModel", f"{exc}; or give spec.modelFacts") from None
    try:
        catalog.accelerator(accelerator)
    except UnknownAcceleratorError as exc:
        raise SpecError("hardware.accelerator", "UnknownAccelerator",
                        f"{exc}; or give spec.hardware.acceleratorSpec") from None
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
    from_engine = _flag(spec, "demand.fromEngine")
    if sum(v is not None for v in (tps, rps, query)) + from_engine != 1:
        raise SpecError("demand", "AmbiguousDemand",
                        "give exactly one of tokensPerSecond, requestsPerSecond, query, fromEngine: true")
    if (rps is not None or from_engine) and tokens_out is None:
        raise SpecError("workload.outputTokens", "MissingField",
                        f"a demand in {'requests/s' if rps is not None else 'requests the engine receives'} "
                        f"needs outputTokens")
    objectives = Objectives(_number(spec, "slo.maxInterTokenLatencyMs"),
                            _number(spec, "slo.maxRequestLatencySeconds"),
                            _number(spec, "slo.maxTimeToFirstTokenMs"))
    if objectives.max_request_latency_s is not None and tokens_out is None:
        raise SpecError("workload.outputTokens", "MissingField", "a request-latency objective needs outputTokens")
    if objectives.max_ttft_ms is not None and tokens_in is None:
        raise SpecError("workload.inputTokens", "MissingField", "a time-to-first-token objective needs inputTokens")
    mode = _text(spec, "policy.mode")
    if mode not in MODES:
        raise SpecError("policy.mode", "UnknownMode", f"{mode!r} is not one of {', '.join(MODES)}")
    min_replicas = _number(spec, "policy.minReplicas")
    max_replicas = _number(spec, "policy.maxReplicas")
    if max_replicas is not None and max_replicas < min_replicas:
        raise SpecError("policy.maxReplicas", "OutOfRange", f"{max_replicas} is below minReplicas {min_replicas}")
    if from_engine and min_replicas < 1:
        raise SpecError("policy.minReplicas", "ScaleFromZeroNeedsFrontDoor",
                        "with demand.fromEngine a deployment at zero replicas has no engine to count its requests, "
                        "so it could never scale up again; use minReplicas >= 1, or a demand.query on a metric "
                        "of the gateway or router in front of it")
    forecast_model = _text(spec, "policy.forecast.model")
    allowed = field_schema("policy.forecast.model")["enum"]
    if forecast_model not in allowed:
        raise SpecError("policy.forecast.model", "UnknownForecast", f"{forecast_model!r} is not one of "
                        f"{', '.join(allowed)}")
    if forecast_model != "None" and not (query or from_engine):
        raise SpecError("policy.forecast.model", "ForecastNeedsMeasuredDemand",
                        "a forecast learns from the demand's history: use demand.query or demand.fromEngine")
    # Checked whether or not a forecast is on: a wrong value is refused, never silently kept.
    forecast = ForecastSpec(_number(spec, "policy.forecast.horizonSeconds"), _number(spec, "policy.forecast.quantile"),
                            _number(spec, "policy.forecast.historyDays"))
    forecast = None if forecast_model == "None" else forecast
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
    pairing = {"throughput", "batch", "replicas"}
    if pairing & set(queries) and not pairing <= set(queries):
        missing = ", ".join(sorted(pairing - set(queries)))
        raise SpecError("prometheus.queries", "PartialOverride",
                        f"overriding {', '.join(sorted(pairing & set(queries)))} replaces the per-pod pairing of the "
                        f"engine's own series with fleet-wide queries, which need throughput, batch and replicas "
                        f"together; missing: {missing}")
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
        demand_from_engine=from_engine,
        objectives=objectives, policy=policy, prometheus=prometheus, mode=mode,
        min_confidence=_number(spec, "policy.minConfidence"),
        refit_interval_s=_number(spec, "policy.refitIntervalSeconds"),
        stabilization_window_s=_number(spec, "policy.stabilizationWindowSeconds"),
        max_step=_number(spec, "policy.maxStep"),
        warmup_s=_number(spec, "policy.warmupSeconds"),
        forecast=forecast, apply_batch=_flag(spec, "policy.applyBatch"),
        apply_batch_min_gain=_number(spec, "policy.applyBatchMinGain"),
        batch_window_s=_number(spec, "policy.batchWindowSeconds"),
        model_facts=model_facts, accelerator_facts=accelerator_facts, model_config_ref=config_ref)


#: spec.modelFacts field -> catalog column.
MODEL_FACT_FIELDS = {"parametersB": "params_b", "activeParametersB": "active_params_b", "layers": "layers",
                     "kvHeads": "kv_heads", "headDim": "head_dim", "kvLatentDim": "kv_latent_dim"}
#: spec.hardware.acceleratorSpec field -> catalog column.
ACCELERATOR_SPEC_FIELDS = {"peakTflops": "peak_bf16_dense_tflops", "memoryBandwidthTBps": "memory_bandwidth_tbps",
                           "memoryGB": "memory_gb"}


def _model_facts(spec: Mapping, model: str, catalog: Catalog,
                 read_config_map: Callable[[str], Mapping[str, str]] | None):
    """The catalog row ``spec.modelFacts`` gives (None when it gives nothing), and the
    ConfigMap reference left unread when there is no reader."""
    if _get(spec, "modelFacts") is not None and not isinstance(_get(spec, "modelFacts"), Mapping):
        raise SpecError("modelFacts", "NotAnObject", "must be an object")
    inline = {column: _number(spec, f"modelFacts.{key}") for key, column in MODEL_FACT_FIELDS.items()}
    inline = {k: v for k, v in inline.items() if v is not None}
    ref = _get(spec, "modelFacts.configMapRef")
    if ref is not None and not isinstance(ref, Mapping):
        raise SpecError("modelFacts.configMapRef", "NotAnObject", "must be an object")
    if _get(spec, "modelFacts.configMapRef.key") == "":
        raise SpecError("modelFacts.configMapRef.key", "MissingField", "must not be empty (default: config.json)")
    ref_key = _text(spec, "modelFacts.configMapRef.key") or "config.json"
    # Only the fields the schema names count (the API server prunes any other key).
    named = ref is not None and any(ref.get(k) is not None for k in ("name", "key"))
    ref_name = _text(spec, "modelFacts.configMapRef.name", required=named)
    if ref_name is None and not inline:
        return None, None
    if ref_name is not None and read_config_map is None:
        return None, (ref_name, ref_key)
    where = "spec.modelFacts"
    base = None
    try:  # facts for a model the catalog knows replace its row: siblings and history still count
        known, route = catalog.resolve_model(model)
        name = model if route.startswith("size") else str(known["model"])
    except UnknownModelError:
        known, name = None, model
    if ref_name is not None:
        where = f"ConfigMap {ref_name} key {ref_key}"
        data = read_config_map(ref_name)  # raises SpecError when it cannot be read
        if ref_key not in data:
            raise SpecError("modelFacts.configMapRef.key", "ConfigMapKeyMissing",
                            f"ConfigMap {ref_name} has no key {ref_key!r}")  # its other keys are not said
        try:
            config = json.loads(data[ref_key])
            base = model_from_config(name, config, where).iloc[0]
        except json.JSONDecodeError as exc:
            raise SpecError("modelFacts.configMapRef", "InvalidModelConfig",
                            f"{where} is not valid JSON ({exc})") from None
        except CatalogFileError as exc:
            raise SpecError("modelFacts.configMapRef", "InvalidModelConfig", str(exc)) from None
        if inline:
            where += " and spec.modelFacts"
    else:
        base = known  # the catalog's row, or the size the name states: inline numbers go over it
    try:
        return model_row(name, inline, base, source=f"given: {where}"), None
    except CatalogFileError as exc:
        field_name = "modelFacts.parametersB" if "parameter count" in str(exc) else "modelFacts"
        raise SpecError(field_name, "MissingField" if "needed" in str(exc) else "OutOfRange", str(exc)) from None


def _accelerator_facts(spec: Mapping, accelerator: str, catalog: Catalog) -> pd.DataFrame | None:
    """The catalog row ``spec.hardware.acceleratorSpec`` gives (None when it gives nothing)."""
    given = {column: _number(spec, f"hardware.acceleratorSpec.{key}") for key, column in ACCELERATOR_SPEC_FIELDS.items()}
    if all(v is None for v in given.values()):
        return None
    try:
        known = catalog.accelerator(accelerator)
    except UnknownAcceleratorError:
        missing = [k for k, column in ACCELERATOR_SPEC_FIELDS.items() if given[column] is None]
        if missing:
            raise SpecError(f"hardware.acceleratorSpec.{missing[0]}", "MissingField",
                            f"{accelerator!r} is not in the catalog: give all of "
                            f"{', '.join(ACCELERATOR_SPEC_FIELDS)} (missing {', '.join(missing)})") from None
        return accelerator_row(accelerator, *given.values(), source="given: spec.hardware.acceleratorSpec")
    values = [known[column] if given[column] is None else given[column] for column in ACCELERATOR_SPEC_FIELDS.values()]
    return accelerator_row(str(known["name"]), *values, price_per_hour=known.get("price_per_hour_usd"),
                           vendor=str(known.get("vendor", "")), source="given: spec.hardware.acceleratorSpec",
                           aliases=str(known.get("aliases", "")))
