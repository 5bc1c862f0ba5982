import copy

import pytest

from ala_operator.spec import SpecError, parse_spec


def test_defaults(examples):
    spec = parse_spec(examples["tgi-qwen-32b"]["spec"])
    assert spec.mode == "Recommend" and spec.target_kind == "Deployment" and spec.target_api_version == "apps/v1"
    assert spec.policy.confidence_level == 0.9 and spec.deployment.accelerators == 1
    assert spec.demand_from_engine and spec.demand_query is None and spec.demand_tokens_per_s is None
    assert spec.prometheus.verify_tls and spec.prometheus.secret_name == "prometheus-reader"
    assert spec.policy.max_batch == 1024 and spec.prometheus.rate_window_s == 120 and spec.prometheus.step_s == 30


def test_engine_batch_limit_bounds_the_planner(examples):
    spec = copy.deepcopy(examples["vllm-llama-8b"]["spec"])
    spec["engine"]["maxBatchSize"] = 48
    assert parse_spec(spec).policy.max_batch == 48


@pytest.mark.parametrize("change,field,reason", [
    (lambda s: s.pop("model"), "model", "MissingField"),
    (lambda s: s.update(model="acme/none"), "model", "UnknownModel"),
    (lambda s: s["hardware"].update(accelerator="TPU-v9"), "hardware.accelerator", "UnknownAccelerator"),
    (lambda s: s["engine"].update(name="llamacpp"), "engine.name", "UnknownEngine"),
    (lambda s: s["engine"].update(precision="fp3"), "engine.precision", "UnknownPrecision"),
    (lambda s: s["demand"].update(query="sum(x)"), "demand", "AmbiguousDemand"),
    (lambda s: s["slo"].update(maxInterTokenLatencyMs=-1), "slo.maxInterTokenLatencyMs", "OutOfRange"),
    (lambda s: s["slo"].update(maxInterTokenLatencyMs="fast"), "slo.maxInterTokenLatencyMs", "NotANumber"),
    (lambda s: s["policy"].update(maxReplicas=0), "policy.maxReplicas", "OutOfRange"),
    (lambda s: s["policy"].update(minReplicas=50, maxReplicas=40), "policy.maxReplicas", "OutOfRange"),
    (lambda s: s["policy"].update(mode="Yolo"), "policy.mode", "UnknownMode"),
    (lambda s: s["prometheus"].update(url="localhost:9090"), "prometheus.url", "InvalidURL"),
    (lambda s: s["engine"].update(maxBatchSize=0), "engine.maxBatchSize", "OutOfRange"),
    (lambda s: s["prometheus"].update(stepSeconds=0), "prometheus.stepSeconds", "OutOfRange"),
    (lambda s: s["targetRef"].pop("name"), "targetRef.name", "MissingField"),
    (lambda s: (s["workload"].pop("outputTokens"), s["demand"].update(tokensPerSecond=None, requestsPerSecond=3)),
     "workload.outputTokens", "MissingField"),
    (lambda s: s["demand"].update(fromEngine=True), "demand", "AmbiguousDemand"),
    (lambda s: (s["workload"].pop("outputTokens"), s.update(demand={"fromEngine": True})),
     "workload.outputTokens", "MissingField"),
    (lambda s: (s.update(demand={"fromEngine": True}), s["policy"].update(minReplicas=0)),
     "policy.minReplicas", "ScaleFromZeroNeedsFrontDoor"),
    (lambda s: s["prometheus"].update(queries={"throughput": "sum(x)", "batch": "sum(y)"}),
     "prometheus.queries", "PartialOverride"),
    (lambda s: s["policy"].update(forecast={"model": "Seasonal"}), "policy.forecast.model",
     "ForecastNeedsMeasuredDemand"),
    (lambda s: s["policy"].update(forecast={"model": "Prophet"}), "policy.forecast.model", "UnknownForecast"),
    (lambda s: (s.update(demand={"query": "sum(x)"}), s["policy"].update(forecast={"model": "Seasonal",
                                                                                  "quantile": 1.0})),
     "policy.forecast.quantile", "OutOfRange"),
    (lambda s: s["policy"].update(applyBatch="yes"), "policy.applyBatch", "NotABoolean"),
    (lambda s: (s["workload"].pop("inputTokens"), s["slo"].update(maxTimeToFirstTokenMs=500)),
     "workload.inputTokens", "MissingField"),
])
def test_invalid_specs_name_field_and_reason(examples, change, field, reason):
    spec = copy.deepcopy(examples["vllm-llama-8b"]["spec"])
    change(spec)
    with pytest.raises(SpecError) as err:
        parse_spec(spec)
    assert err.value.field == field and err.value.reason == reason
    assert str(err.value).startswith(f"spec.{field}:")


def test_not_an_object():
    with pytest.raises(SpecError, match="object"):
        parse_spec(["model"])


def test_precision_comes_from_the_checkpoint_name_when_absent(examples):
    import copy

    from ala_operator.spec import parse_spec

    spec = copy.deepcopy(examples["tgi-qwen-32b"]["spec"])
    spec["model"], spec["hardware"]["accelerator"] = "nvidia/Llama-3.1-8B-Instruct-FP8", "NVIDIA H100-SXM5-80GB"
    spec.get("engine", {}).pop("precision", None)
    parsed = parse_spec(spec)
    assert parsed.deployment.precision == "fp8"
    spec.setdefault("engine", {})["precision"] = "bfloat16"
    assert parse_spec(spec).deployment.precision == "bfloat16"


def test_a_model_the_catalog_lacks_is_described_inline(examples):
    spec = copy.deepcopy(examples["vllm-llama-8b"]["spec"])
    spec["model"] = "acme/house-model"
    with pytest.raises(SpecError) as err:
        parse_spec(spec)
    assert err.value.reason == "UnknownModel" and "spec.modelFacts" in str(err.value)
    spec["modelFacts"] = {"parametersB": 12, "layers": 40, "kvHeads": 8, "headDim": 128}
    parsed = parse_spec(spec)
    row = parsed.model_facts.iloc[0]
    assert row["model"] == "acme/house-model" and row["params_b"] == row["active_params_b"] == 12
    assert row["kv_heads"] == 8 and row["source"] == "given: spec.modelFacts"


def test_inline_facts_override_a_catalog_model_and_keep_the_rest(examples):
    spec = copy.deepcopy(examples["vllm-llama-8b"]["spec"])
    spec["modelFacts"] = {"kvHeads": 4}
    row = parse_spec(spec).model_facts.iloc[0]
    assert row["kv_heads"] == 4 and row["layers"] == 32 and abs(row["params_b"] - 8.0) < 0.1


@pytest.mark.parametrize("facts,field,reason", [
    ({"layers": 40}, "modelFacts.parametersB", "MissingField"),
    ({"parametersB": 0.001}, "modelFacts.parametersB", "OutOfRange"),
    ({"parametersB": 7, "activeParametersB": 9}, "modelFacts", "OutOfRange"),
    ({"parametersB": "big"}, "modelFacts.parametersB", "NotANumber"),
])
def test_bad_inline_facts_name_the_field(examples, facts, field, reason):
    spec = copy.deepcopy(examples["vllm-llama-8b"]["spec"])
    spec["model"], spec["modelFacts"] = "acme/house-model", facts
    with pytest.raises(SpecError) as err:
        parse_spec(spec)
    assert (err.value.field, err.value.reason) == (field, reason)


def test_an_accelerator_the_catalog_lacks_is_described_by_its_specs(examples):
    spec = copy.deepcopy(examples["vllm-llama-8b"]["spec"])
    spec["hardware"]["accelerator"] = "Acme X1"
    spec["hardware"]["acceleratorSpec"] = {"peakTflops": 500, "memoryBandwidthTBps": 4}
    with pytest.raises(SpecError) as err:
        parse_spec(spec)
    assert err.value.field == "hardware.acceleratorSpec.memoryGB" and err.value.reason == "MissingField"
    spec["hardware"]["acceleratorSpec"]["memoryGB"] = 96
    row = parse_spec(spec).accelerator_facts.iloc[0]
    assert (row["name"], row["memory_gb"]) == ("Acme X1", 96)
    # A known accelerator takes partial overrides and keeps its aliases.
    spec["hardware"] = {"accelerator": "NVIDIA H100 GPU", "acceleratorSpec": {"memoryGB": 94}}
    row = parse_spec(spec).accelerator_facts.iloc[0]
    assert row["name"] == "H100" and row["memory_gb"] == 94 and row["peak_bf16_dense_tflops"] > 900


CONFIG = {"hidden_size": 4096, "num_hidden_layers": 32, "vocab_size": 128256, "num_attention_heads": 32,
          "num_key_value_heads": 8, "intermediate_size": 14336}


def test_a_config_map_holds_the_model_config(examples):
    import json

    spec = copy.deepcopy(examples["vllm-llama-8b"]["spec"])
    spec["model"] = "acme/house-8b-finetune"
    spec["modelFacts"] = {"configMapRef": {"name": "house-config"}}
    unread = parse_spec(spec)  # no reader (the create handler): checked at the refit
    assert unread.model_config_ref == ("house-config", "config.json") and unread.model_facts is None
    maps = {"house-config": {"config.json": json.dumps(CONFIG)}}
    parsed = parse_spec(spec, read_config_map=lambda name: maps[name])
    row = parsed.model_facts.iloc[0]
    assert abs(row["params_b"] - 8.03) < 0.01 and row["kv_heads"] == 8
    assert row["source"] == "given: ConfigMap house-config key config.json"
    maps["house-config"] = {"other.json": "{}"}
    with pytest.raises(SpecError) as err:
        parse_spec(spec, read_config_map=lambda name: maps[name])
    assert err.value.reason == "ConfigMapKeyMissing" and "other.json" not in str(err.value)
    maps["house-config"] = {"config.json": "{not json"}
    with pytest.raises(SpecError) as err:
        parse_spec(spec, read_config_map=lambda name: maps[name])
    assert err.value.reason == "InvalidModelConfig"
    maps["house-config"] = {"config.json": json.dumps({"model_type": "bert"})}
    with pytest.raises(SpecError, match="lacks hidden_size"):
        parse_spec(spec, read_config_map=lambda name: maps[name])


def test_facts_for_a_known_checkpoint_keep_its_catalog_name(examples):
    """Overriding one fact of a quantised catalog model keeps the model's identity (its
    benchmarks still count) and its other facts."""
    spec = copy.deepcopy(examples["vllm-llama-8b"]["spec"])
    spec["model"], spec["modelFacts"] = "nvidia/Llama-3.1-8B-Instruct-FP8", {"kvHeads": 4}
    spec.get("engine", {}).pop("precision", None)
    parsed = parse_spec(spec)
    row = parsed.model_facts.iloc[0]
    assert row["model"] == "meta-llama/Llama-3.1-8B-Instruct" and row["kv_heads"] == 4
    assert parsed.deployment.precision == "fp8"
    # A name with only a size in it: the given shape goes over the size the name states.
    spec["model"], spec["modelFacts"] = "acme/house-70b", {"layers": 80, "kvHeads": 8, "headDim": 128}
    row = parse_spec(spec).model_facts.iloc[0]
    assert (row["model"], row["params_b"], row["layers"]) == ("acme/house-70b", 70, 80)


def test_demand_from_the_engine_and_a_partial_override_says_what_is_missing(examples):
    spec = copy.deepcopy(examples["vllm-llama-8b"]["spec"])
    spec["demand"] = {"fromEngine": True}
    parsed = parse_spec(spec)
    assert parsed.demand_from_engine and parsed.demand_query is None and parsed.demand_tokens_per_s is None
    spec["prometheus"]["queries"] = {"throughput": "sum(x)", "batch": "sum(y)"}
    with pytest.raises(SpecError, match="missing: replicas"):
        parse_spec(spec)
    spec["prometheus"]["queries"]["replicas"] = "count(z)"
    assert set(parse_spec(spec).prometheus.queries) == {"throughput", "batch", "replicas"}


def test_forecast_and_batch_actuation_are_read_with_their_defaults(examples):
    spec = copy.deepcopy(examples["vllm-llama-8b"]["spec"])
    plain = parse_spec(spec)
    assert plain.forecast is None and not plain.apply_batch and plain.batch_window_s == 3600
    spec["demand"] = {"query": "sum(rate(x[1m]))"}
    spec["policy"].update(forecast={"model": "Seasonal", "horizonSeconds": 1200}, applyBatch=True)
    spec["slo"]["maxTimeToFirstTokenMs"] = 2000
    parsed = parse_spec(spec)
    assert (parsed.forecast.horizon_s, parsed.forecast.quantile, parsed.forecast.history_days) == (1200, 0.95, 14)
    assert parsed.apply_batch and parsed.apply_batch_min_gain == 0.1 and parsed.objectives.max_ttft_ms == 2000
