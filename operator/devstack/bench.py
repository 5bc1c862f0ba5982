"""Reconcile benchmark and soak: refit and publish for N resources, over real HTTP.

Each resource is read from the API emulator, refitted by the operator's own ``refit``
(Prometheus answers come from a loopback server replaying a real-shaped range answer,
so the figure is the operator's cost, not a TSDB's), and its status and annotations are
written back through the API. Prints time per resource (median, p95) and memory.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
import resource
import statistics
import threading
import time
import urllib.parse
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path
from http.server import ThreadingHTTPServer

import kopf
import numpy as np

from ..app import build_memo
from ..constants import GROUP, PLURAL, VERSION
from .emulator import EmulatorServer
from .loopback import QuietHandler, request_json
from ..handlers import refit_timer
from ..kube import KubeCluster
from ..settings import Settings


class _RangeAnswers:
    """A loopback Prometheus API answering range queries with a series over the asked
    range (so simulated time can move), as a summed vLLM query would come back, and raw
    sample queries with two pods' series, as the per-pod pairing reads them."""

    def __init__(self):
        class Handler(QuietHandler):
            def do_GET(self):  # noqa: N802 - http.server's naming
                params = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                query = params.get("query", [""])[0]
                if query.endswith("s]"):  # raw samples of two pods scraped every 15 s
                    at = float(params.get("time", [time.time()])[0])
                    seconds = float(query.rsplit("[", 1)[1][:-2])
                    stamps = [at - 15.0 * k for k in range(int(seconds // 15), -1, -1)]
                    tokens = "generation_tokens" in query
                    result = [{"metric": {"namespace": "bench", "pod": f"p{i}"}, "values": [
                        [t, str(rate * t if tokens else batch + 0.5 * math.sin(t / 600))] for t in stamps]}
                        for i, (rate, batch) in enumerate(((1000.0, 10.0), (1700.0, 20.0)))]
                    self.reply(200, {"status": "success", "data": {"resultType": "matrix", "result": result}})
                    return
                end = float(params.get("end", [time.time()])[0])
                start = float(params.get("start", [end - 300])[0])
                step = float(params.get("step", [30])[0])
                stamps = [start + step * k for k in range(1, int((end - start) // step) + 1)]
                if "generation_tokens" in query:
                    values = [[t, str(2000 + 400 * math.sin(t / 600))] for t in stamps]
                elif "count(" in query:
                    values = [[t, "2"] for t in stamps]
                else:
                    values = [[t, str(20 + 4 * math.sin(t / 600))] for t in stamps]
                self.reply(200, {"status": "success", "data": {"resultType": "matrix",
                                                               "result": [{"metric": {}, "values": values}]}})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


#: What the resources deploy, cycled: 5 models x 4 accelerators x 3 workloads = 60 distinct
#: configurations (each its own curve, memo entry and plan), as a real fleet would be.
MODELS = (("meta-llama/Llama-3.1-8B-Instruct", 1), ("Qwen/Qwen3-8B", 1), ("google/gemma-3-27b-it", 2),
          ("Qwen/Qwen3-32B", 2), ("meta-llama/Llama-3.1-70B-Instruct", 4))
ACCELERATORS = ("H100", "A100-80GB", "H200", "L40S")
WORKLOADS = ((1024, 256), (512, 512), (2048, 128))


def configuration(i: int, distinct: int) -> dict:
    """The spec fields of resource ``i`` among ``distinct`` configurations."""
    k = i % max(1, min(distinct, len(MODELS) * len(ACCELERATORS) * len(WORKLOADS)))
    (model, gpus), accelerator = MODELS[k % len(MODELS)], ACCELERATORS[(k // len(MODELS)) % len(ACCELERATORS)]
    tokens_in, tokens_out = WORKLOADS[(k // (len(MODELS) * len(ACCELERATORS))) % len(WORKLOADS)]
    return {"model": model, "hardware": {"accelerator": accelerator, "acceleratorsPerReplica": gpus},
            "workload": {"inputTokens": tokens_in, "outputTokens": tokens_out}}


def _rss_mb() -> float:
    """Resident memory now (Linux /proc), in MB."""
    with open("/proc/self/statm") as f:
        return round(int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)


def _request(url: str, method: str, body=None) -> dict:
    status, data = request_json(url, method, "", body, timeout=30)
    if status >= 300:
        raise RuntimeError(f"{method} {url}: {status} {data.get('message', '')}")
    return data


class _Bench:
    """N resources (and their target Deployments) in the emulator, refitted over HTTP."""

    def __init__(self, api, prom, model):
        path = api.write_kubeconfig(Path(tempfile.mkdtemp(prefix="ala-bench-")) / "kubeconfig")
        os.environ["KUBECONFIG"] = str(path)
        self.memo = build_memo(Settings(), model=model, cluster=KubeCluster.from_environment())
        self.api, self.prom = api, prom
        self.base = f"{api.url}/apis/{GROUP}/{VERSION}/namespaces/bench/{PLURAL}"
        self.log = logging.getLogger("ala_operator.bench")
        self.failures = 0

    def create(self, prefix: str, n: int, distinct: int = 1) -> list[str]:
        names = []
        for i in range(n):
            name = f"{prefix}-{i:05d}"
            _request(f"{self.api.url}/apis/apps/v1/namespaces/bench/deployments", "POST",
                     {"metadata": {"name": name}, "spec": {"replicas": 2}})
            _request(f"{self.api.url}/apis/apps/v1/namespaces/bench/deployments/{name}/status", "PATCH",
                     {"status": {"readyReplicas": 2, "replicas": 2}})
            _request(self.base, "POST", {"metadata": {"name": name}, "spec": {
                "targetRef": {"name": name}, **configuration(i, distinct), "engine": {"name": "vllm"},
                "demand": {"tokensPerSecond": 20000 + 10 * i}, "slo": {"maxInterTokenLatencyMs": 50},
                "prometheus": {"url": self.prom.url}}})
            names.append(name)
        return names

    def refit(self, name: str, now: datetime) -> float:
        """Read one resource, then what the operator's timer does (refit, and the patch
        written back by the operator's client); seconds taken."""
        started = time.perf_counter()
        obj = _request(f"{self.base}/{name}", "GET")
        out = refit_timer(spec=obj["spec"], meta=obj["metadata"], status=obj.get("status") or {},
                          patch=kopf.Patch(), logger=self.log, memo=self.memo, now=now)
        if not out.get("metrics", True) or out.get("skipped"):
            self.failures += 1
        return time.perf_counter() - started


def _quiet() -> None:
    """Figures only: no line per refit, nor per emulated API request."""
    for name in ("ala_operator", "aiohttp.access"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _percentiles(times: list[float]) -> dict:
    times = sorted(times)
    return {"per_resource_ms_median": round(1000 * statistics.median(times), 1),
            "per_resource_ms_p95": round(1000 * times[int(0.95 * (len(times) - 1))], 1)}


def reconcile_benchmark(counts=(100, 1000), model=None, stream=print) -> list[dict]:
    """Refit and publish each of N resources once, for each N."""
    _quiet()
    prom = _RangeAnswers()
    results = []
    with EmulatorServer(("bench",)) as api:
        bench = _Bench(api, prom, model)
        for n in counts:
            names = bench.create(f"r{n}", n)
            rss_before, bench.failures = _rss_mb(), 0
            started = time.perf_counter()
            times = [bench.refit(name, datetime.now(timezone.utc)) for name in names]
            wall = time.perf_counter() - started
            row = {"resources": n, "wall_s": round(wall, 2), **_percentiles(times),
                   "refits_per_s": round(n / wall, 1), "failed_refits": bench.failures,
                   "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                   "rss_before_mb": rss_before, "rss_after_mb": _rss_mb()}
            results.append(row)
            stream(json.dumps(row))
    prom.server.shutdown()
    prom.server.server_close()
    return results


def soak(resources: int = 1000, minutes: float = 30.0, model=None, interval_s: int = 60, stream=print,
         distinct: int = 60) -> dict:
    """N resources over ``distinct`` configurations refitting every ``interval_s`` of
    simulated time for ``minutes``: refits per second, p50/p95 per refit, peak memory, and
    whether memory stays flat (RSS growth per cycle over the second half of the run)."""
    _quiet()
    prom = _RangeAnswers()
    with EmulatorServer(("bench",)) as api:
        bench = _Bench(api, prom, model)
        names = bench.create("s", resources, distinct)
        t0 = datetime.now(timezone.utc)
        cycles = max(1, int(minutes * 60 // interval_s))
        times, rss = [], []
        started = time.perf_counter()
        for cycle in range(cycles):
            now = t0 + timedelta(seconds=cycle * interval_s)
            times += [bench.refit(name, now) for name in names]
            rss.append(_rss_mb())
            stream(json.dumps({"cycle": cycle + 1, "of": cycles, "simulated_minute": round(cycle * interval_s / 60, 1),
                               "rss_mb": rss[-1]}))
        wall = time.perf_counter() - started
    prom.server.shutdown()
    prom.server.server_close()
    half = rss[len(rss) // 2:]
    slope = float(np.polyfit(range(len(half)), half, 1)[0]) if len(half) >= 2 else 0.0
    row = {"resources": resources, "distinct_configurations": min(resources, distinct, len(MODELS) * len(ACCELERATORS)
                                                                  * len(WORKLOADS)),
           "simulated_minutes": minutes, "refits": len(times),
           "failed_refits": bench.failures, "wall_s": round(wall, 1), "refits_per_s": round(len(times) / wall, 1),
           **_percentiles(times), "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
           "rss_first_cycle_mb": rss[0], "rss_last_cycle_mb": rss[-1],
           "rss_growth_mb_per_cycle_second_half": round(slope, 3)}
    stream(json.dumps(row))
    return row
