import copy

import pytest

from ala_operator.spec import SpecError, parse_spec


def test_defaults(examples):
    spec = parse_spec(examples["tgi-qwen-32b"]["spec"])
    assert spec.mode == "Recommend" and spec.target_kind == "Deployment" and spec.target_api_version == "apps/v1"
    assert spec.policy.confidence_level == 0.9 and spec.deployment.accelerators == 1
    assert spec.demand_query and spec.demand_tokens_per_s is None
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
