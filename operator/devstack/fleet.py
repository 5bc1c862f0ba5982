"""A simulated fleet of LLM servers: replicas whose generated-token rate follows a real
measured throughput-versus-batch curve, exporting engine metrics for Prometheus to scrape.

It plays the parts a cluster would: the Deployment controller (pods follow
``spec.replicas`` after a start-up delay and ``status.readyReplicas`` is written back
through the API) and the engines (each ready replica takes an equal share of the demand
at the batch that serves it, saturating at the largest measured batch).
"""

from __future__ import annotations

import math
import threading
import time
import urllib.error
from dataclasses import dataclass, field, replace
from http.server import ThreadingHTTPServer
from typing import Callable

import numpy as np

from ala.benchmarks import CurveSet
from ala.throughput import ThroughputCurve

from .exposition import EngineState, engine_samples, finish_due, text
from .loopback import QuietHandler, request_json

@dataclass
class TrueCurve:
    """A measured curve, fitted by the analytical model: the truth the operator never sees."""

    config_id: str
    batch: np.ndarray
    throughput: np.ndarray
    model: ThroughputCurve

    @classmethod
    def from_curves(cls, curves: CurveSet, config_id: str) -> "TrueCurve":
        batch, thpt = curves.curve(config_id)
        return cls(config_id, batch, thpt, ThroughputCurve().fit(batch.reshape(-1, 1), thpt))

    @property
    def max_batch(self) -> float:
        return float(self.batch.max())

    def __call__(self, batch: float) -> float:
        return float(self.model.predict(np.array([[max(batch, 1e-3)]]))[0])

    def batch_for(self, tokens_per_s: float) -> float:
        """The batch at which one replica generates ``tokens_per_s`` (bisection; the
        largest measured batch when the demand saturates it)."""
        if tokens_per_s <= 0:
            return 0.0
        low, high = 1e-3, self.max_batch
        if self(high) <= tokens_per_s:
            return high
        for _ in range(40):
            mid = 0.5 * (low + high)
            low, high = (mid, high) if self(mid) < tokens_per_s else (low, mid)
        return 0.5 * (low + high)


@dataclass
class Pod:
    """One pod: its data-parallel engines' counters, and the requests still in flight
    (tokens an engine counts on completion reach its counters when they finish)."""

    name: str
    ready_at: float
    ranks: list[EngineState] = field(default_factory=lambda: [EngineState()])
    in_flight: list[tuple[float, int, float, float, float]] = field(default_factory=list)

    @property
    def tokens(self) -> float:
        return sum(r.decoded for r in self.ranks)

    @property
    def running(self) -> float:
        return sum(r.running for r in self.ranks)


@dataclass
class SimulatedDeployment:
    """One LLM serving Deployment of the simulated cluster."""

    namespace: str
    name: str
    engine: str
    truth: TrueCurve
    demand: Callable[[float], float]  # output tokens/s for the whole deployment at time t (s)
    input_tokens: float = 1024.0
    output_tokens: float = 256.0
    startup_s: float = 20.0
    noise: float = 0.03
    data_parallel: int = 1
    pods: list[Pod] = field(default_factory=list)
    _serial: int = 0

    def reconcile(self, desired: int, now: float) -> None:
        while len(self.pods) < desired:
            self._serial += 1
            self.pods.append(Pod(f"{self.name}-{self._serial:05d}", now + self.startup_s,
                                 [EngineState() for _ in range(self.data_parallel)]))
        while len(self.pods) > desired:
            self.pods.pop()  # the newest goes first, like a ReplicaSet scaling down

    def ready(self, now: float) -> list[Pod]:
        return [p for p in self.pods if p.ready_at <= now]

    def step(self, now: float, dt: float, t: float, rng: np.random.Generator) -> None:
        """Each ready pod's engines receive an equal share of the demand (requests arrive,
        counted); an engine serves what arrived and what waits up to its largest measured
        batch, and the rest waits (so a saturated deployment's queue grows). Tokens are
        counted as decoded, and again (with the request's latency) when the requests finish,
        a request's duration later."""
        ready = self.ready(now)
        for pod in self.pods:
            if pod.ready_at > now:
                for rank in pod.ranks:
                    rank.running = rank.rate = 0.0
        if not ready:
            return
        engines = len(ready) * self.data_parallel
        share = max(self.demand(t), 0.0) / engines
        capacity = self.truth(self.truth.max_batch)
        for pod in ready:
            for i, rank in enumerate(pod.ranks):
                arriving = share / self.output_tokens * dt
                rank.arrived += arriving
                offered = share + rank.waiting * self.output_tokens / dt
                # A batch fills only with requests that arrived or waited: a new pod's batch
                # rises with its arrivals, it does not jump (requests in = out + held).
                batch = min(self.truth.batch_for(min(offered, capacity)), rank.running + arriving + rank.waiting)
                served = self.truth(batch) if batch > 0 else 0.0
                rank.waiting = max(0.0, (offered - served) * dt / self.output_tokens)
                rate = self.truth(batch) * math.exp(rng.normal(0.0, self.noise)) if batch > 0 else 0.0
                made = rate * dt
                requests = made / self.output_tokens
                latency = self.output_tokens * batch / max(rate, 1e-9) if rate > 0 else 0.0
                rank.decoded += made
                rank.rate = rate
                rank.prompt_tokens += requests * self.input_tokens
                rank.running = max(0.0, batch + rng.normal(0.0, 0.02 * max(batch, 1.0)))
                if made > 0:
                    pod.in_flight.append((now + latency, i, made, requests, latency))
            pod.in_flight = finish_due(pod.ranks, pod.in_flight, now)


class Fleet:
    """The simulated deployments, their metrics endpoint, and the loop that moves them."""

    def __init__(self, api_url: str, deployments: list[SimulatedDeployment], tick_s: float = 1.0,
                 seed: int = 0, address: str = "127.0.0.1", port: int = 0):
        self.api_url = api_url.rstrip("/")
        self.deployments = deployments
        self.tick_s = tick_s
        self.rng = np.random.default_rng(seed)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._started = time.time()
        self._last_tick = 0.0
        fleet = self

        class Handler(QuietHandler):
            def do_GET(self):  # noqa: N802 - http.server's naming
                if self.path.split("?")[0] != "/metrics":
                    self.send_error(404)
                    return
                self.reply(200, fleet.exposition().encode(), "text/plain; version=0.0.4")

        self.server = ThreadingHTTPServer((address, port), Handler)
        self.port = self.server.server_address[1]
        self.metrics_url = f"http://{address}:{self.port}/metrics"
        self._threads = [threading.Thread(target=self.server.serve_forever, name="fleet-metrics", daemon=True),
                         threading.Thread(target=self._loop, name="fleet-loop", daemon=True)]

    # --- life cycle -------------------------------------------------------------------------
    def start(self) -> "Fleet":
        for dep in self.deployments:
            self._api("POST", f"/apis/apps/v1/namespaces/{dep.namespace}/deployments", {
                "metadata": {"name": dep.name, "namespace": dep.namespace, "labels": {"app": dep.name}},
                "spec": {"replicas": 1, "selector": {"matchLabels": {"app": dep.name}},
                         "template": {"metadata": {"labels": {"app": dep.name}}}},
            }, ok=(201, 409))
        self._started = time.time()
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.server.shutdown()
        self.server.server_close()
        for thread in self._threads:
            thread.join(5)

    def __enter__(self) -> "Fleet":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- simulation ---------------------------------------------------------------------------
    def _loop(self) -> None:
        last = time.time()
        while not self._stop.wait(self.tick_s):
            now = time.time()
            try:
                self.tick(now, now - last)
            except (OSError, urllib.error.URLError, ValueError):
                pass  # the API went away (shutting down) or answered garbage: try again next tick
            last = now

    def tick(self, now: float, dt: float) -> None:
        for dep in self.deployments:
            path = f"/apis/apps/v1/namespaces/{dep.namespace}/deployments/{dep.name}"
            obj = self._api("GET", path)
            if obj is None:
                continue
            desired = int((obj.get("spec") or {}).get("replicas") or 0)
            with self._lock:
                dep.reconcile(desired, now)
                dep.step(now, dt, now - self._started, self.rng)
                self._last_tick = now
                ready = len(dep.ready(now))
            status = obj.get("status") or {}
            if status.get("readyReplicas") != ready or status.get("replicas") != len(dep.pods):
                self._api("PATCH", path + "/status", {"status": {
                    "replicas": len(dep.pods), "readyReplicas": ready, "availableReplicas": ready,
                    "observedGeneration": obj["metadata"].get("generation")}})

    def exposition(self) -> str:
        """Prometheus text format for every pod, in each engine's names and own labels, with
        the labels a ServiceMonitor adds (``namespace``, ``service``, ``pod``)."""
        samples = []
        with self._lock:
            # A real engine's counter moves with every step, not once per simulator tick.
            since = max(0.0, time.time() - self._last_tick) if self._last_tick else 0.0
            for dep in self.deployments:
                for pod in dep.pods:
                    target = {"namespace": dep.namespace, "service": dep.name, "pod": pod.name}
                    ranks = [replace(r, decoded=r.decoded + r.rate * since) for r in pod.ranks]
                    samples += engine_samples(dep.engine, ranks, target, model=dep.truth.config_id)
        return text(samples)

    def _api(self, method: str, path: str, body: dict | None = None, ok=(200, 201)) -> dict | None:
        """The API's answer, or None when the object is missing or already there."""
        status, data = request_json(self.api_url, method, path, body)
        if status in ok and status < 300:
            return data
        if status in ok or status == 404:
            return None
        raise ValueError(f"{method} {path}: {status} {data.get('message', '')}")
