"""Live-point benchmark: how far the operator's live points land from the truth.

Each scenario simulates pods second by second (uneven load, bursts and idle, a rolling
restart, data-parallel engines, engines that count tokens when requests finish), writes
what the engines would export, in their own names, labels and counter semantics
(``exposition``), every scrape interval as timestamped OpenMetrics, backfills a real
Prometheus with ``promtool tsdb create-blocks-from openmetrics``, and reads it back through
the operator's own path (``observe.fetch`` and ``refit.gather``, refit after refit, the
evidence carried as the status carries it). The truth is a measured curve interpolated
(log-log between its points, with any falling part), not the model's own family.

Each point's bias is ``observed / truth(its batch) - 1``. The fleet-wide ratio of the
engine's summed queries (what the operator read before per-pod pairing, and what a
``prometheus.queries`` override still reads) runs in the same pass as the baseline.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np

from ala.benchmarks import group_curves, load_benchmarks

from ..livepoints import evidence_points
from ..observe import fetch
from ..prometheus import GarbageAnswer, PrometheusClient
from ..refit import gather
from ..spec import parse_spec
from .exposition import EngineState, engine_samples, finish_due, openmetrics_lines
from .localstack import PrometheusServer

SCRAPE_S = 15.0
REFIT_S = 60.0
#: The measured curves the scenarios serve on (ML.ENERGY vLLM concurrent sequences,
#: Nemotron-Nano-9B on an H100; Argonne vLLM Llama-3-70B on 4x MI300X).
CURVES = {"nemotron-9b-h100": "039578fc6e", "llama-70b-mi300x4": "0216a9dc64"}


@dataclass
class Truth:
    """A measured curve, interpolated linearly in log batch and log throughput (from the
    origin below its first point); flat beyond its last."""

    batch: np.ndarray
    throughput: np.ndarray

    def __call__(self, b: float) -> float:
        if b <= 0:
            return 0.0
        if b < self.batch[0]:
            return float(self.throughput[0] * b / self.batch[0])
        return float(np.exp(np.interp(np.log(b), np.log(self.batch), np.log(self.throughput))))


@dataclass
class SimPod:
    name: str
    start: float
    stop: float
    batch: Callable[[float], list[float]]  # per data-parallel rank, at second t
    ranks: list[EngineState] = field(default_factory=list)
    in_flight: list[tuple[float, int, float, float, float]] = field(default_factory=list)


@dataclass
class Scenario:
    name: str
    engine: str
    curve: str
    pods: list[SimPod]
    seconds: float = 1200.0
    output_tokens: float = 512.0
    input_tokens: float = 1024.0
    tensor_parallel: int = 1
    all_schedulers: bool = False
    sglang_realtime: bool = True


def _steps(levels: list[float], every: float) -> Callable[[float], float]:
    return lambda t: levels[int(t // every) % len(levels)]


def scenarios(seed: int = 0) -> list[Scenario]:
    """The benchmark's scenarios (1,200 simulated seconds each)."""
    rng = np.random.default_rng(seed)
    bursts = np.cumsum(rng.uniform(10, 90, 64))  # random on/off edges for the bursty pod

    def bursty(t: float) -> list[float]:
        on = int(np.searchsorted(bursts, t)) % 2 == 0
        return [48.0 if on else 0.0]

    one = lambda f: (lambda t: [f(t)])  # noqa: E731 - a single-rank batch
    return [
        Scenario("uneven pods (60 and 4)", "vllm", "nemotron-9b-h100",
                 [SimPod("a", 0, 1e9, one(lambda t: 60.0)), SimPod("b", 0, 1e9, one(lambda t: 4.0))]),
        Scenario("bursty (30 s at 64, 30 s idle)", "vllm", "nemotron-9b-h100",
                 [SimPod("a", 0, 1e9, one(lambda t: 64.0 if (t % 60) < 30 else 0.0))]),
        Scenario("bursty (random 10-90 s bursts at 48)", "vllm", "nemotron-9b-h100", [SimPod("a", 0, 1e9, bursty)]),
        Scenario("rollout (2 pods at 32 replaced)", "vllm", "nemotron-9b-h100",
                 [SimPod("old-a", 0, 630, one(lambda t: 32.0)), SimPod("old-b", 0, 660, one(lambda t: 32.0)),
                  SimPod("new-a", 600, 1e9, one(lambda t: 32.0)), SimPod("new-b", 630, 1e9, one(lambda t: 32.0))]),
        Scenario("vLLM, 2 data-parallel engines in one pod", "vllm", "nemotron-9b-h100",
                 [SimPod("a", 0, 1e9, lambda t: [24.0, 40.0])]),
        Scenario("TGI stepping 8 -> 64 (tokens counted at completion)", "tgi", "llama-70b-mi300x4",
                 [SimPod("a", 0, 1e9, one(_steps([8.0, 16.0, 32.0, 64.0], 300.0)))]),
        Scenario("SGLang without realtime_tokens, stepping 8 -> 64", "sglang", "llama-70b-mi300x4",
                 [SimPod("a", 0, 1e9, one(_steps([8.0, 16.0, 32.0, 64.0], 300.0)))], sglang_realtime=False),
        Scenario("SGLang, dp-attention 2 x tp 4, all schedulers", "sglang", "nemotron-9b-h100",
                 [SimPod("a", 0, 1e9, lambda t: [20.0, 44.0]), SimPod("b", 0, 1e9, lambda t: [30.0, 30.0])],
                 tensor_parallel=4, all_schedulers=True),
        Scenario("TensorRT-LLM (trtllm-serve), uneven and stepping", "tensorrt-llm", "nemotron-9b-h100",
                 [SimPod("a", 0, 1e9, one(_steps([16.0, 96.0], 240.0))), SimPod("b", 0, 1e9, one(lambda t: 8.0))]),
    ]


def simulate(s: Scenario, truth: Truth, base: float, seed: int = 0) -> list[str]:
    """Second-by-second pods; the OpenMetrics lines of every scrape."""
    rng = np.random.default_rng(seed)
    for pod in s.pods:
        pod.ranks = [EngineState() for _ in pod.batch(0.0)]
        pod.in_flight = []
    lines: list[str] = []
    for second in range(int(s.seconds) + 1):
        t = float(second)
        for pod in s.pods:
            if not pod.start <= t < pod.stop:
                continue
            age = t - pod.start
            for i, (rank, target) in enumerate(zip(pod.ranks, pod.batch(t))):
                if age < 20:
                    target *= age / 20  # a new pod ramps up as traffic reaches it
                if pod.stop - t < 15:
                    target *= max(pod.stop - t, 0) / 15  # and drains before it stops
                batch = max(0.0, target * math.exp(rng.normal(0.0, 0.05))) if target > 0 else 0.0
                rate = truth(batch)
                made = rate  # one second
                rank.running = batch
                rank.waiting = 0.0
                rank.decoded += made
                if made > 0:
                    requests = made / s.output_tokens
                    latency = s.output_tokens * batch / rate
                    rank.arrived += requests
                    rank.prompt_tokens += requests * s.input_tokens
                    pod.in_flight.append((t + latency, i, made, requests, latency))
            pod.in_flight = finish_due(pod.ranks, pod.in_flight, t)
        if second % int(SCRAPE_S) == 0:
            for pod in s.pods:
                if pod.start <= t < pod.stop:
                    target = {"namespace": "bench", "service": _slug(s.name), "pod": f"{_slug(s.name)}-{pod.name}",
                              "instance": f"10.0.0.{s.pods.index(pod) + 1}:8000", "job": "engines"}
                    samples = engine_samples(s.engine, pod.ranks, target, tensor_parallel=s.tensor_parallel,
                                             all_schedulers=s.all_schedulers, sglang_realtime=s.sglang_realtime)
                    lines += openmetrics_lines(samples, base + t)
    return lines


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")[:40]


def _spec(s: Scenario) -> dict:
    return {"targetRef": {"name": _slug(s.name)}, "model": "meta-llama/Meta-Llama-3-8B",
            "hardware": {"accelerator": "H100"}, "engine": {"name": s.engine},
            "workload": {"inputTokens": s.input_tokens, "outputTokens": s.output_tokens},
            "demand": {"tokensPerSecond": 1000},
            "prometheus": {"url": "http://127.0.0.1:1", "selector": f'namespace="bench",service="{_slug(s.name)}"',
                           "rateWindowSeconds": 60, "stepSeconds": int(SCRAPE_S)},
            "policy": {"refitIntervalSeconds": int(REFIT_S)}}


def _fleet_spec(s: Scenario) -> dict:
    """The same resource reading the engine's fleet-wide summed queries (the baseline)."""
    from ..prometheus import build_queries
    spec = _spec(s)
    sel = spec["prometheus"]["selector"]
    q = build_queries(s.engine, sel, window="60s")
    spec["prometheus"]["queries"] = {k: q[k] for k in ("throughput", "batch", "replicas")}
    return spec


def measure(s: Scenario, client: PrometheusClient, truth: Truth, base: float) -> dict:
    """Refit after refit through the operator's path; the biases of the final evidence's
    points, and of the fleet-wide baseline's points."""
    out = {"scenario": s.name, "engine": s.engine}
    for label, raw in (("", _spec(s)), ("fleet_", _fleet_spec(s))):
        spec = parse_spec(raw)
        evidence, believed = None, []
        for at in np.arange(300.0, s.seconds + 1, REFIT_S):
            now = datetime.fromtimestamp(base + at, timezone.utc)
            try:
                obs = fetch(client, spec, now, desired=len(s.pods), ready=len(s.pods))
            except GarbageAnswer as exc:  # the baseline's summed queries may not match this engine at all
                out[label + "error"] = str(exc)[:120]
                break
            fresh, _, update = gather(spec, obs, evidence, None, now)
            evidence = update.evidence
            believed += fresh
        points = evidence_points(evidence)
        # A replica of n data-parallel engines serves batch B as n engines at B / n each.
        ranks = len(s.pods[0].batch(0.0))
        bias = [thpt / (ranks * truth(batch / ranks)) - 1 for _, batch, thpt, _ in points]
        out[label + "points"] = len(points)
        out[label + "median_bias"] = round(float(np.median(bias)), 4) if bias else None
        out[label + "p90_abs_bias"] = round(float(np.quantile(np.abs(bias), 0.9)), 4) if bias else None
        out[label + "believed_s"] = round(sum(i.seconds for i in believed))
    return out


def live_point_benchmark(stream=print, seed: int = 0) -> list[dict]:
    """Every scenario through a real Prometheus; one JSON object per scenario to ``stream``."""
    curves = group_curves(load_benchmarks())
    truths = {name: Truth(*curves.curve(cid)) for name, cid in CURVES.items()}
    base = math.floor(datetime.now(timezone.utc).timestamp() / 7200) * 7200 - 6 * 3600
    work = Path(tempfile.mkdtemp(prefix="ala-livebench-"))
    try:
        todo = scenarios(seed)
        text = []
        for i, s in enumerate(todo):
            lines = simulate(s, truths[s.curve], base, seed + i)
            text += lines
        blocks = _backfilled(text, work)
        rows = []
        with PrometheusServer([], blocks=blocks, retention="30d") as prom:
            client = PrometheusClient(prom.url, timeout_s=30)
            for s in todo:
                row = measure(s, client, truths[s.curve], base)
                rows.append(row)
                stream(json.dumps(row))
        return rows
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _backfilled(lines: list[str], work: Path) -> Path:
    """``promtool tsdb create-blocks-from openmetrics`` over ``lines``: the blocks' directory."""
    promtool = shutil.which("promtool")
    if not promtool:
        raise RuntimeError("promtool not found: install Debian's prometheus package")
    (work / "metrics.om").write_text("\n".join(lines) + "\n# EOF\n")
    blocks = work / "blocks"
    done = subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", str(work / "metrics.om"),
                           str(blocks)], capture_output=True, text=True, timeout=600)
    if done.returncode:
        raise RuntimeError(f"promtool backfill failed: {done.stderr[-500:]}")
    return blocks


#: Minutes of traffic after which the convergence run reports.
CHECKPOINTS = (1, 5, 10, 15, 30, 60, 120)


def convergence(model, minutes: int = 120, prior_off: float = 0.3, operating_batch: float = 32.0,
                stream=print, seed: int = 0) -> list[dict]:
    """A deployment whose true curve is ``1 + prior_off`` times what the model predicts at
    its operating batch (the shape of a measured curve, its level set so), served for
    ``minutes`` by two pods whose batch wanders around ``operating_batch``; refit every
    minute through a real Prometheus and the operator's ``fetch`` and ``step``, the evidence
    carried as the status carries it. One row per checkpoint: the prediction at the
    operating batch against the truth, its interval, the plan's confidence."""
    from ..refit import live_table, step
    s = Scenario("convergence", "vllm", "nemotron-9b-h100",
                 [SimPod("a", 0, 1e9, lambda t: [operating_batch * (1 + 0.25 * math.sin(2 * math.pi * t / 1200))]),
                  SimPod("b", 0, 1e9, lambda t: [operating_batch * (1 - 0.25 * math.sin(2 * math.pi * t / 900))])],
                 seconds=60.0 * minutes)
    spec = parse_spec({**_spec(s), "model": "meta-llama/Meta-Llama-3-8B", "hardware": {"accelerator": "H100"},
                       "workload": {"inputTokens": 1024, "outputTokens": 512}})
    curves = group_curves(load_benchmarks())
    shape = Truth(*curves.curve(CURVES[s.curve]))
    prior = float(model.predict(spec.deployment.query([operating_batch]))[0])
    level = (1 + prior_off) * prior / shape(operating_batch)
    truth = Truth(shape.batch, shape.throughput * level)
    base = math.floor(datetime.now(timezone.utc).timestamp() / 7200) * 7200 - 6 * 3600
    work = Path(tempfile.mkdtemp(prefix="ala-convergence-"))
    rows = []
    try:
        lines = simulate(s, truth, base, seed)
        with PrometheusServer([], blocks=_backfilled(lines, work), retention="30d") as prom:
            client = PrometheusClient(prom.url, timeout_s=30)
            evidence, score = None, None
            for minute in range(1, minutes + 1):
                now = datetime.fromtimestamp(base + 60.0 * minute, timezone.utc)
                obs = fetch(client, spec, now, desired=2, ready=2)
                decision = step(model, spec, obs, score, None, now, evidence=evidence)
                evidence, score = decision.evidence, decision.score
                if minute not in CHECKPOINTS:
                    continue
                live = live_table(spec, decision.points) if decision.points else None
                row = model.predict_interval(spec.deployment.query([operating_batch]),
                                             spec.policy.confidence_level, live=live).iloc[0]
                true = truth(operating_batch)
                out = {"minute": minute, "points": len(decision.points),
                       "error": round(float(row["point"]) / true - 1, 4),
                       "covered": bool(row["lower"] <= true <= row["upper"]),
                       "width": round(float((row["upper"] - row["lower"]) / row["point"]), 4),
                       "confidence": round(float(decision.plan.confidence or 0.0), 4)}
                rows.append(out)
                stream(json.dumps(out))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return rows


def main(output: str = "table", model=None) -> int:
    """``ala-operator bench live-points``: the scenarios' biases (fleet-wide baseline beside),
    then, given a ``model``, the convergence run; as a table, JSON lines or Markdown."""
    if output == "json":
        live_point_benchmark()
        if model is not None:
            convergence(model, stream=lambda line: print(json.dumps({"scenario": "convergence",
                                                                    **json.loads(line)})))
        return 0
    rows = live_point_benchmark(stream=lambda line: None)
    pct = lambda v: "-" if v is None else f"{100 * v:+.1f}%"  # noqa: E731
    size = lambda v: "-" if v is None else f"{100 * v:.1f}%"  # noqa: E731 - an absolute value
    if output == "markdown":
        print("| scenario | engine | points | median bias | p90 abs bias | fleet-wide median | fleet-wide p90 |")
        print("|---|---|---:|---:|---:|---:|---:|")
        for r in rows:
            print(f"| {r['scenario']} | {r['engine']} | {r['points']} | {pct(r['median_bias'])} | "
                  f"{size(r['p90_abs_bias'])} | {pct(r.get('fleet_median_bias'))} | "
                  f"{size(r.get('fleet_p90_abs_bias'))} |")
    else:
        print(f"{'scenario':55} {'engine':13} {'points':>6} {'median':>8} {'p90 |bias|':>10}   "
              f"{'fleet-wide median':>17} {'p90':>7}")
        for r in rows:
            print(f"{r['scenario']:55} {r['engine']:13} {r['points']:>6} {pct(r['median_bias']):>8} "
                  f"{size(r['p90_abs_bias']):>10}   {pct(r.get('fleet_median_bias')):>17} "
                  f"{size(r.get('fleet_p90_abs_bias')):>7}")
    if model is None:
        return 0
    rows = convergence(model, stream=lambda line: None)
    print()
    if output == "markdown":
        print("| minutes of traffic | live points | error at batch 32 | interval covers truth | interval width "
              "| confidence |")
        print("|---:|---:|---:|---|---:|---:|")
        for r in rows:
            print(f"| {r['minute']} | {r['points']} | {pct(r['error'])} | {'yes' if r['covered'] else 'no'} | "
                  f"{r['width']:.3f} | {r['confidence']:.2f} |")
    else:
        print(f"{'minute':>6} {'points':>6} {'error':>7} {'covered':>7} {'width':>6} {'conf':>5}")
        for r in rows:
            print(f"{r['minute']:>6} {r['points']:>6} {pct(r['error']):>7} {str(r['covered']):>7} "
                  f"{r['width']:>6.3f} {r['confidence']:>5.2f}")
    return 0


__all__ = ["live_point_benchmark", "scenarios", "simulate", "measure", "Truth"]
