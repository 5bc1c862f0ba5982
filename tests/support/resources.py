"""LLMDeployment resources the fault tiers share."""

from ala_operator.constants import GROUP, VERSION


def stepping_apply_resource(name: str, prometheus_url: str, window: int, max_step: int = 1, **prometheus) -> dict:
    """An Apply-mode resource with far more demand than one replica serves, so that the
    operator keeps stepping its target up (by ``max_step``, ``window`` seconds apart)."""
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "LLMDeployment", "metadata": {"name": name},
            "spec": {
                "targetRef": {"name": name}, "model": "meta-llama/Meta-Llama-3-8B",
                "hardware": {"accelerator": "H100"}, "engine": {"name": "vllm"},
                "workload": {"inputTokens": 1024, "outputTokens": 1024},
                "demand": {"tokensPerSecond": 40000}, "slo": {"maxInterTokenLatencyMs": 20},
                "prometheus": {"url": prometheus_url, "selector": f'service="{name}"', "rateWindowSeconds": 10,
                               "stepSeconds": 5, **prometheus},
                "policy": {"refitIntervalSeconds": 10, "warmupSeconds": 0, "mode": "Apply",
                           "minReplicas": 1, "maxReplicas": 12, "maxStep": max_step, "minConfidence": 0.0,
                           "stabilizationWindowSeconds": window}}}


def set_path(spec: dict, path: str, value) -> None:
    """Set ``spec[a][b]...`` for a dotted ``path``, making (or replacing) objects on the way."""
    node = spec
    parts = path.split(".")
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[parts[-1]] = value
