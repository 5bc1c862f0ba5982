"""Reconcile benchmark: refit and publish for N resources, over real HTTP.

Each resource is read from the API emulator, refitted by the operator's own ``refit``
(Prometheus answers come from a loopback server replaying a real-shaped range answer,
so the figure is the operator's cost, not a TSDB's), and its status and annotations are
written back through the API. Prints time per resource (median, p95) and memory.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import statistics
import threading
import time
import urllib.parse
import urllib.request
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import kopf

from .app import build_memo
from .constants import GROUP, PLURAL, VERSION
from .emulator import EmulatorServer, request_json
from .handlers import refit
from .kube import KubeCluster
from .settings import Settings


class _RangeAnswers:
    """A loopback Prometheus API answering every range query with a 10-point series."""

    def __init__(self):
        now = time.time()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's naming
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query).get("query", [""])[0]
                if "generation_tokens" in query:
                    values = [[now - 300 + 30 * i, str(2000 + 40 * i)] for i in range(10)]
                elif "count(" in query:
                    values = [[now - 300 + 30 * i, "2"] for i in range(10)]
                else:
                    values = [[now - 300 + 30 * i, str(20 + i)] for i in range(10)]
                body = json.dumps({"status": "success", "data": {"resultType": "matrix",
                                                                 "result": [{"metric": {}, "values": values}]}})
                raw = body.encode()
                self.send_response(200)
                self.send_header("Content-Type")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def _rss_mb() -> float:
    """Resident memory now (Linux /proc), in MB."""
    with open("/proc/self/statm") as f:
        return round(int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)


def _request(url: str, method: str, body=None) -> dict:
    status, data = request_json(url, method, "", body, timeout=30)
    if status >= 300:
        raise RuntimeError(f"{method} {url}: {status} {data.get('message', '')}")
    return data


def reconcile_benchmark(counts=(100, 1000), model=None, stream=print) -> list[dict]:
    logging.getLogger("ala_operator").setLevel(logging.WARNING)
    prom = _RangeAnswers()
    results = []
    with EmulatorServer(("bench",)) as api:
        path = api.write_kubeconfig(f"/tmp/ala-bench-kubeconfig-{api.url.rsplit(':', 1)[1]}")
        os.environ["KUBECONFIG"] = str(path)
        memo = build_memo(Settings(), model=model, cluster=KubeCluster.from_environment())
        log = logging.getLogger("ala_operator.bench")
        base = f"{api.url}/apis/{GROUP}/{VERSION}/namespaces/bench/{PLURAL}"
        for n in counts:
            for i in range(n):
                name = f"r{n}-{i:05d}"
                _request(f"{api.url}/apis/apps/v1/namespaces/bench/deployments", "POST",
                         {"metadata": {"name": name}, "spec": {"replicas": 2}, "status": {}})
                _request(f"{api.url}/apis/apps/v1/namespaces/bench/deployments/{name}/status", "PATCH",
                         {"status": {"readyReplicas": 2, "replicas": 2}})
                _request(base, "POST", {"metadata": {"name": name}, "spec": {
                    "targetRef": {"name": name}, "model": "meta-llama/Llama-3.1-8B-Instruct",
                    "hardware": {"accelerator": "H100"}, "engine": {"name": "vllm"},
                    "workload": {"inputTokens": 1024, "outputTokens": 256},
                    "demand": {"tokensPerSecond": 20000 + 10 * i}, "slo": {"maxInterTokenLatencyMs": 50},
                    "prometheus": {"url": prom.url}}})
            rss_before = _rss_mb()
            times = []
            started = time.perf_counter()
            for i in range(n):
                name = f"r{n}-{i:05d}"
                t0 = time.perf_counter()
                obj = _request(f"{base}/{name}", "GET")
                patch = kopf.Patch()
                refit(spec=obj["spec"], meta=obj["metadata"], status=obj.get("status") or {}, patch=patch,
                      logger=log, memo=memo, now=datetime.now(timezone.utc))
                if patch.get("status"):
                    _request(f"{base}/{name}/status", "PATCH", {"status": dict(patch["status"])})
                if patch.get("metadata"):
                    _request(f"{base}/{name}", "PATCH", {"metadata": dict(patch["metadata"])})
                times.append(time.perf_counter() - t0)
            wall = time.perf_counter() - started
            times.sort()
            row = {"resources": n, "wall_s": round(wall, 2), "per_resource_ms_median": round(
                1000 * statistics.median(times), 1), "per_resource_ms_p95": round(1000 * times[int(0.95 * (n - 1))], 1),
                "refits_per_s": round(n / wall, 1),
                "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                "rss_before_mb": rss_before, "rss_after_mb": _rss_mb()}
            results.append(row)
            stream(json.dumps(row))
    prom.server.shutdown()
    return results
