"""``ala-operator demo``: the local stack end to end. An API emulator, a real Prometheus, a
simulated fleet following real curves held out of the fit, and the operator; it prints the
recommendations converging on the truth, then stops."""

from __future__ import annotations

import logging
import math
import time

from ala.benchmarks import group_curves, load_benchmarks
from ala.estimator import ALA

from ..constants import GROUP, PLURAL, VERSION
from .fleet import SimulatedDeployment, TrueCurve
from .localstack import INSTALL_HINT, LocalStack

#: Demo deployments: (name, bundled curve id, spec fields); each curve is held out of the
#: operator's fit, so what it learns about that deployment comes from live metrics.
DEMO = (
    ("llama-8b-h100", "335d81212b", "meta-llama/Meta-Llama-3-8B", "H100", 1, "vllm", 1024, 1024, 20.0),
    ("llama-70b-h100x4", "208565a661", "meta-llama/Meta-Llama-3-70B", "H100", 4, "vllm", 256, 256, 25.0),
)


def _demand(peak_per_replica: float, replicas: int):
    """A slow wave between 25% and 100% of a peak: the running batch sweeps the curve."""
    return lambda t: replicas * peak_per_replica * (0.625 + 0.375 * math.sin(t / 20.0))


def demo_stack(duration: float, mode: str = "Recommend", verbose: bool = False) -> int:
    if not verbose:
        for name in ("kopf", "aiohttp.access", "ala", "ala_operator"):
            logging.getLogger(name).setLevel(logging.WARNING)
    table = load_benchmarks()
    curves = group_curves(table)
    fleet, resources = [], []
    for name, curve_id, model, accelerator, count, engine, tin, tout, itl in DEMO:
        truth = TrueCurve.from_curves(curves, curve_id)
        fleet.append(SimulatedDeployment("default", name, engine, truth, _demand(truth(truth.max_batch * 0.75), 2),
                                         input_tokens=tin, output_tokens=tout, startup_s=15))
        resources.append((name, truth, {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "model": model, "hardware": {"accelerator": accelerator, "acceleratorsPerReplica": count},
            "engine": {"name": engine}, "workload": {"inputTokens": tin, "outputTokens": tout},
            # What the engines receive (arrivals and their queues): the deployments start on one
            # replica, under-provisioned, and the demand served would hide it.
            "demand": {"fromEngine": True},
            "slo": {"maxInterTokenLatencyMs": itl},
            "policy": {"mode": mode, "refitIntervalSeconds": 10, "warmupSeconds": 30, "minReplicas": 1,
                       "maxReplicas": 12, "stabilizationWindowSeconds": 30, "minConfidence": 0.5}}))
    held_out = {curve_id for _, curve_id, *_ in DEMO}
    print(f"fitting ALA on the bundled data without the {len(held_out)} demo curves ...", flush=True)
    model = ALA(random_state=0).fit(table[~table["config_id"].isin(held_out)])
    with LocalStack(fleet) as stack:
        if stack.prometheus is None:
            print(f"no Prometheus: recommendations come from the prior only ({INSTALL_HINT})", flush=True)
        print(f"Kubernetes API emulator {stack.api.url}  Prometheus {stack.prometheus.url if stack.prometheus else '-'}"
              f"  fleet metrics {stack.fleet.metrics_url}", flush=True)
        for name, _truth, spec in resources:
            stack.request("PATCH", f"/apis/apps/v1/namespaces/default/deployments/{name}/scale",
                          {"spec": {"replicas": 1}})
            spec["prometheus"] = {"url": stack.prometheus_url, "selector": f'service="{name}"',
                                  "rateWindowSeconds": 10, "stepSeconds": 5}
        operator = stack.start_operator(model)
        print(f"operator metrics http://127.0.0.1:{operator.settings.metrics_port}/metrics", flush=True)
        for name, _truth, spec in resources:
            stack.request("POST", f"/apis/{GROUP}/{VERSION}/namespaces/default/{PLURAL}",
                          {"apiVersion": f"{GROUP}/{VERSION}", "kind": "LLMDeployment",
                           "metadata": {"name": name}, "spec": spec})
        print(f"{'time':>5} {'resource':<17} {'live':>4} {'batch':>5} {'predicted tok/s [interval]':>30} "
              f"{'truth':>7} {'err':>6} {'conf':>5} {'replicas':>8} {'now':>4}", flush=True)
        started = time.time()
        while time.time() - started < duration:
            time.sleep(min(10.0, max(0.0, duration - (time.time() - started))))
            for name, truth, _spec in resources:
                _, obj = stack.request("GET", f"/apis/{GROUP}/{VERSION}/namespaces/default/{PLURAL}/{name}")
                _, dep = stack.request("GET", f"/apis/apps/v1/namespaces/default/deployments/{name}")
                rec = (obj.get("status") or {}).get("recommendation") or {}
                tp, batch = rec.get("throughputPerReplica"), rec.get("batchSize")
                if not tp:
                    print(f"{time.time() - started:5.0f} {name:<17} no recommendation yet", flush=True)
                    continue
                true = truth(batch)
                print(f"{time.time() - started:5.0f} {name:<17} {rec.get('livePoints', 0):>4} {batch:>5} "
                      f"{tp['value']:>9.0f} [{tp['lower']:>8.0f}, {tp['upper']:>8.0f}] {true:>7.0f} "
                      f"{tp['value'] / true - 1:>+6.1%} {rec.get('confidence', 0):>5.2f} "
                      f"{rec['replicas']['target']:>8} {dep.get('spec', {}).get('replicas', '?'):>4}", flush=True)
        print("stopping ...", flush=True)
    print("stopped cleanly", flush=True)
    return 0

