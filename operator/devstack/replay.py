"""Trace replay: real request arrivals drive a simulated fleet whose replicas follow a real
measured throughput curve, and scaling policies are compared on GPU-hours and latency.

The fleet (one-second steps): a global FIFO queue; each ready replica runs up to ``batch``
requests with continuous batching; at running batch b every sequence decodes at
``truth(b) / b`` tokens/s, so its inter-token latency is ``b / truth(b)``; a new replica
serves after ``cold_start_s``; a replica scaled away stops taking requests and leaves
when it drains. A request meets the objectives when its mean inter-token latency is
within ``max_itl_ms`` and its wait for a slot (time to first token) within ``max_ttft_s``.
Prefill is not modelled apart: the curves are measured end to end at their token lengths.

Policies: ``static`` (replicas for the trace's peak minute, from the true curve),
``reactive`` (the Kubernetes HPA's algorithm on running batch per replica: target 70%,
10% tolerance, 15 s sync, scale-up at most max(4, +100%) per period, 300 s scale-down
stabilisation), ``ala`` (the operator's own ``refit.step``: live points, refit, plan, Apply-mode
scale decision, every minute), ``predictive`` (the same step with ``policy.forecast: Seasonal``),
``oracle`` (knows future demand and the true curve; replicas started a cold start ahead: the
lower bound). Both ALA policies set the batch limit through ``refit.batch_decision``
(``applyBatch``); a change is a rollout (``ReplicaPool.rollout``). Load shapes (days of
10-minute rates) replay on the fluid fleet of ``loadshape``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from .fleet import TrueCurve
from ..refit import Observations, step
from ..spec import parse_spec

TRACES = Path(__file__).resolve().parent / "traces"
POLICIES = ("static", "reactive", "ala", "predictive", "oracle")
#: The policies that run the operator's own ``refit.step``.
ALA_POLICIES = ("ala", "predictive")


@dataclass(frozen=True)
class Scenario:
    """One trace on one configuration."""

    name: str
    trace: Path
    curve_id: str
    model: str
    accelerator: str
    accelerators: int
    engine: str
    input_tokens: float
    output_tokens: float
    max_itl_ms: float
    scale: int  # each request of the trace arrives this many times (spread over one second)
    max_ttft_s: float = 5.0
    cold_start_s: float = 60.0
    price_per_hour: float = 3.0  # per accelerator
    max_replicas: int = 200


@dataclass
class Outcome:
    policy: str
    gpu_hours: float = 0.0
    requests: int = 0
    met: int = 0
    violation_minutes: int = 0
    scaling_actions: int = 0
    peak_replicas: int = 0
    live_ape: float | None = None
    live_coverage: float | None = None
    batch: int | None = None
    batch_changes: int = 0
    decided_by: dict = field(default_factory=dict)  # predictive: which term decided, refits per term
    series: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        out = {"policy": self.policy, "gpu_hours": round(self.gpu_hours, 3), "requests": self.requests,
               "within_objectives": round(self.met / max(self.requests, 1), 5),
               "violation_minutes": self.violation_minutes, "scaling_actions": self.scaling_actions,
               "peak_replicas": self.peak_replicas, "batch": self.batch, "batch_changes": self.batch_changes}
        if self.decided_by:
            out["decided_by"] = dict(sorted(self.decided_by.items()))
        if self.live_ape is not None:
            out.update(live_ape=round(self.live_ape, 4), live_interval_coverage=round(self.live_coverage, 4))
        return out


def load_trace(path: Path, scale: int, rng: np.random.Generator) -> pd.DataFrame:
    """Arrivals (s), input and output tokens; each row repeated ``scale`` times within 1 s."""
    frame = pd.read_csv(path)
    missing = {"timestamp_s", "input_tokens", "output_tokens"} - set(frame.columns)
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
    if frame.empty or (frame[["input_tokens", "output_tokens"]] <= 0).any().any():
        raise ValueError(f"{path}: needs rows with positive token counts")
    rep = frame.loc[frame.index.repeat(scale)].reset_index(drop=True)
    rep["timestamp_s"] = rep["timestamp_s"] + (rng.random(len(rep)) if scale > 1 else 0.0)
    return rep.sort_values("timestamp_s", kind="stable").reset_index(drop=True)


def best_batch(truth: TrueCurve, max_itl_ms: float) -> int:
    """Largest measured-range batch whose inter-token latency meets the objective."""
    ok = [b for b in range(1, int(truth.max_batch) + 1) if b / truth(b) * 1000 <= max_itl_ms]
    return max(ok) if ok else 1


def minute_demand(trace: pd.DataFrame, span: int) -> np.ndarray:
    """Output tokens requested per second, per second of the trace (1-minute average)."""
    per_s = np.bincount(trace["timestamp_s"].astype(int), weights=trace["output_tokens"], minlength=span)[:span]
    kernel = np.ones(60) / 60
    return np.convolve(per_s, kernel, mode="full")[:span]


class ReplicaPool:
    """Replicas, queue and requests of one replay (vectorised per step)."""

    def __init__(self, truth: TrueCurve, batch: int, cold_start_s: float):
        self.truth, self.batch, self.cold_start = truth, batch, cold_start_s
        self.ready_at: list[float] = []       # per replica
        self.draining: list[bool] = []
        self.limit: list[int] = []            # per replica: its engine's batch limit
        self.retire_at: list[float | None] = []  # replaced by a rollout: drains from then on
        self.queue: list[int] = []            # request ids waiting
        self.running = np.zeros(0, int)       # request ids
        self.where = np.zeros(0, int)         # replica of each running request
        self.left = np.zeros(0)               # tokens left
        self.gpu_seconds = 0.0

    def desired(self) -> int:
        return sum(1 for d, r in zip(self.draining, self.retire_at) if not d and r is None)

    def rolling_out(self, now: float) -> bool:
        return any(r is not None and not d for d, r in zip(self.draining, self.retire_at))

    def _add(self, ready_at: float) -> None:
        self.ready_at.append(ready_at)
        self.draining.append(False)
        self.limit.append(self.batch)
        self.retire_at.append(None)

    def scale_to(self, n: int, now: float, ready_now: bool = False) -> None:
        current = self.desired()
        if n > current:
            for _ in range(n - current):
                self._add(now if ready_now else now + self.cold_start)
        elif n < current:
            # Drain the newest first (starting replicas before serving ones).
            for i in sorted(range(len(self.ready_at)), key=lambda i: -self.ready_at[i]):
                if current == n:
                    break
                if not self.draining[i] and self.retire_at[i] is None:
                    self.draining[i] = True
                    current -= 1

    def rollout(self, batch: int, now: float) -> None:
        """A new batch limit through a rolling update: every replica is replaced by one with
        the new limit, which serves after a cold start; the old one drains from then on (as
        a Deployment's surge does; the GPU time of the overlap is charged)."""
        self.batch = batch
        for i in range(len(self.ready_at)):
            if not self.draining[i] and self.retire_at[i] is None:
                self.retire_at[i] = now + self.cold_start
                self._add(now + self.cold_start)

    def step(self, now: float, dt: float, arrivals: np.ndarray, out_tokens: np.ndarray,
             first_token: np.ndarray, decode_time: np.ndarray, done: np.ndarray) -> tuple:
        """Advance one step; returns (tokens generated, running sum, serving replicas)."""
        self.queue.extend(arrivals.tolist())
        n = len(self.ready_at)
        for i in range(n):
            if self.retire_at[i] is not None and self.retire_at[i] <= now:
                self.draining[i] = True
        ready = np.array([self.ready_at[i] <= now and not self.draining[i] for i in range(n)], bool)
        counts = np.bincount(self.where, minlength=n) if n else np.zeros(0, int)
        # Dispatch the queue, FIFO, to the least loaded ready replicas with free slots.
        if self.queue and ready.any():
            free = np.where(ready, np.array(self.limit) - counts, 0)
            slots = np.repeat(np.arange(n), np.maximum(free, 0))
            if slots.size:
                order = np.argsort(counts[slots], kind="stable")
                slots = slots[order]
                take = min(len(self.queue), slots.size)
                ids = np.array(self.queue[:take], int)
                del self.queue[:take]
                first_token[ids] = now
                self.running = np.concatenate([self.running, ids])
                self.where = np.concatenate([self.where, slots[:take]])
                self.left = np.concatenate([self.left, out_tokens[ids].astype(float)])
                counts = np.bincount(self.where, minlength=n)
        generated, concurrency = 0.0, 0.0
        if self.running.size:
            b = counts[self.where].astype(float)
            speed = np.array([self.truth(x) for x in range(int(b.max()) + 1)])[b.astype(int)] / b
            progress = np.minimum(self.left, speed * dt)
            generated = float(progress.sum())
            active = np.where(progress < self.left, dt, self.left / speed)
            decode_time[self.running] += active
            concurrency = float(active.sum() / dt)  # mean running sequences over the step, as a gauge averages
            self.left = self.left - progress
            finished = self.left <= 1e-9
            done[self.running[finished]] = now + dt
            keep = ~finished
            self.running, self.where, self.left = self.running[keep], self.where[keep], self.left[keep]
        # Drained replicas leave; replica indices are compacted.
        busy = np.bincount(self.where, minlength=n) if n else np.zeros(0, int)
        gone = [i for i in range(n) if self.draining[i] and busy[i] == 0]
        if gone:
            keep_idx = [i for i in range(n) if i not in set(gone)]
            remap = {old: new for new, old in enumerate(keep_idx)}
            self.where = np.array([remap[w] for w in self.where], int)
            self.ready_at = [self.ready_at[i] for i in keep_idx]
            self.draining = [self.draining[i] for i in keep_idx]
            self.limit = [self.limit[i] for i in keep_idx]
            self.retire_at = [self.retire_at[i] for i in keep_idx]
        self.gpu_seconds += len(self.ready_at) * dt
        serving = int(sum(1 for i in range(len(self.ready_at)) if self.ready_at[i] <= now))
        return generated, concurrency, serving


def _spec(s: Scenario, batch_cap: int, max_replicas: int, predictive: bool = False, refit_s: int = 60,
          step_s: int = 15) -> dict:
    """The LLMDeployment spec the replay's ALA policies run under (``predictive``: with
    ``policy.forecast: Seasonal``). Both set the batch limit (``applyBatch``), which the
    replay charges a rollout."""
    stabilization = 120
    policy = {"mode": "Apply", "minReplicas": 1, "maxReplicas": max_replicas, "minConfidence": 0.3,
              "refitIntervalSeconds": refit_s, "stabilizationWindowSeconds": stabilization, "maxStep": 50,
              "warmupSeconds": 30, "headroom": 0.15, "confidenceLevel": 0.9, "applyBatch": True,
              "batchWindowSeconds": 3600}
    if predictive:
        # Cover the next cold start, the stabilisation window and the refit that follows.
        policy["forecast"] = {"model": "Seasonal", "quantile": 0.95,
                              "horizonSeconds": int(s.cold_start_s + stabilization + refit_s)}
    return {"targetRef": {"name": s.name}, "model": s.model,
            "hardware": {"accelerator": s.accelerator, "acceleratorsPerReplica": s.accelerators},
            "engine": {"name": s.engine, "maxBatchSize": batch_cap},
            "workload": {"inputTokens": s.input_tokens, "outputTokens": s.output_tokens},
            "demand": {"query": "sum(rate(requested_output_tokens[5m]))"},
            "slo": {"maxInterTokenLatencyMs": s.max_itl_ms, "maxTimeToFirstTokenMs": s.max_ttft_s * 1000},
            # The replay's pods are balanced and share one clock: it reads the fleet-wide series
            # (the override path), which is what these queries name.
            "prometheus": {"url": "http://replay.invalid", "rateWindowSeconds": 60, "stepSeconds": step_s,
                           "queries": {"throughput": "sum(rate(replay:generation_tokens_total[1m]))",
                                       "batch": "sum(avg_over_time(replay:num_requests_running[1m]))",
                                       "replicas": "count(avg_over_time(replay:num_requests_running[1m]) > 0)"}},
            "policy": policy, "cost": {"acceleratorPricePerHour": s.price_per_hour}}


def replay(s: Scenario, policy: str, model=None, seed: int = 0, truth: TrueCurve | None = None,
           trace: pd.DataFrame | None = None, warmup_s: float = 600.0) -> Outcome:
    """Replay ``s`` under ``policy``; ``model`` (an ALA fitted without the truth) for 'ala'."""
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}; choose from {', '.join(POLICIES)}")
    rng = np.random.default_rng(seed)
    trace = trace if trace is not None else load_trace(s.trace, s.scale, rng)
    # Every policy starts from its own steady state: the trace's first ``warmup_s`` are
    # replayed once before it, and nothing of that pre-roll is counted.
    warm = float(warmup_s)
    if warm > 0:
        pre = trace[trace["timestamp_s"] < warm]
        trace = pd.concat([pre, trace.assign(timestamp_s=trace["timestamp_s"] + warm)], ignore_index=True)
    span = int(math.ceil(trace["timestamp_s"].max())) + 1
    demand = minute_demand(trace, span)
    batch = best_batch(truth, s.max_itl_ms)
    capacity = truth(batch)
    fleet = ReplicaPool(truth, batch, s.cold_start_s)
    out = Outcome(policy, batch=batch)
    arrivals_at = trace["timestamp_s"].to_numpy()
    out_tokens = trace["output_tokens"].to_numpy()
    n_req = len(trace)
    first_token, decode_time, done = np.full(n_req, np.nan), np.zeros(n_req), np.full(n_req, np.nan)
    peak_need = int(math.ceil(demand.max() / capacity))
    if policy == "static":
        fleet.scale_to(peak_need, 0.0, ready_now=True)
    elif policy == "oracle":
        # Sized on the busiest 10 s of the coming minute: the future is known, bursts too.
        per_s = np.bincount(trace["timestamp_s"].astype(int), weights=trace["output_tokens"], minlength=span)[:span]
        burst = np.convolve(per_s, np.ones(10) / 10, mode="full")[:span]
        horizon = np.array([burst[t:t + 60].max() for t in range(span)])
        need = np.ceil(horizon / capacity).astype(int)
        fleet.scale_to(int(need[0]), 0.0, ready_now=True)
    else:
        # A fleet already serving when the trace starts: sized for its first five minutes.
        fleet.scale_to(max(1, int(math.ceil(demand[60:300].mean() / capacity))), 0.0, ready_now=True)
    spec = parse_spec(_spec(s, int(truth.max_batch), s.max_replicas, predictive=policy == "predictive")) \
        if policy in ALA_POLICIES else None
    per_s_offered = np.bincount(trace["timestamp_s"].astype(int), weights=trace["output_tokens"], minlength=span)[:span]
    hpa_history: list[tuple[float, int]] = []
    batches: list[tuple[float, int]] = [(0.0, batch)]
    samples: list[tuple[float, float, float, int]] = []  # (t, tokens/s, running, serving)
    state: dict = {"score": None, "last_scaled": None, "evidence": None, "last_batch": None, "curve": None}
    last_refit = 0.0
    base = datetime(2026, 1, 1, tzinfo=timezone.utc)
    cursor, replicas_series = 0, []
    for t in range(span + 600):
        now = float(t)
        hi = np.searchsorted(arrivals_at, now + 1.0)
        ids = np.arange(cursor, hi)
        cursor = hi
        if policy == "oracle" and t + s.cold_start_s < span:
            ahead = int(need[int(t + s.cold_start_s)])
            if ahead > fleet.desired():
                fleet.scale_to(ahead, now)
                out.scaling_actions += 1
            elif t < span and int(need[t]) < fleet.desired() and t % 60 == 0:
                fleet.scale_to(max(int(need[t]), int(need[min(t + int(s.cold_start_s), span - 1)])), now)
                out.scaling_actions += 1
        elif policy == "reactive" and t % 15 == 0 and t > 0:
            want = _hpa(fleet, samples, hpa_history, now, batch, s.max_replicas)
            if want != fleet.desired():
                fleet.scale_to(want, now)
                out.scaling_actions += 1
        elif policy in ALA_POLICIES and now - last_refit >= 60 and t > 0:
            last_refit = now
            decision = _ala_refit(model, spec, samples, trace, arrivals_at, now, fleet, state, base, per_s_offered)
            _count_decision(out, decision)
            if decision.set_batch is not None:
                fleet.rollout(decision.set_batch, now)
                state["last_batch"], out.batch_changes = now, out.batch_changes + 1
            batches.append((now, fleet.batch))
            if decision.scale_to is not None:
                fleet.scale_to(decision.scale_to, now)
                out.scaling_actions += 1
        if now == warm:
            fleet.gpu_seconds, out.scaling_actions = 0.0, 0
        generated, running, serving = fleet.step(now, 1.0, ids, out_tokens, first_token, decode_time, done)
        samples.append((now, generated, running, serving))
        if now >= warm:
            replicas_series.append(len(fleet.ready_at))
        if t >= span and not fleet.queue and fleet.running.size == 0:
            break
    out.gpu_hours = fleet.gpu_seconds * s.accelerators / 3600
    counted = arrivals_at >= warm
    ttft = first_token - arrivals_at
    itl_ms = np.where(out_tokens > 0, decode_time / out_tokens * 1000, 0)
    met = (np.isfinite(done) & (ttft <= s.max_ttft_s) & (itl_ms <= s.max_itl_ms * 1.0001))[counted]
    out.requests, out.met = int(counted.sum()), int(met.sum())
    minute = ((arrivals_at[counted] - warm) // 60).astype(int)
    bad = np.bincount(minute, weights=~met, minlength=minute.max() + 1)
    total = np.bincount(minute, minlength=minute.max() + 1)
    out.violation_minutes = int(((bad > 0.01 * total) & (total > 0)).sum())
    out.peak_replicas = int(max(replicas_series))
    if state["score"]:
        out.live_ape, out.live_coverage = float(state["score"]["ape"]), float(state["score"]["coverage"])
    out.series = {"replicas": replicas_series, "demand_tokens_per_s": demand[int(warm):].tolist(),
                  "violations_per_minute": (bad / np.maximum(total, 1)).tolist(), "batch": batches}
    return out


def _hpa(fleet: ReplicaPool, samples, history, now: float, batch: int, max_replicas: int) -> int:
    """The HPA on the per-request fleet: requests in flight are the running mean over the
    last 15 s plus the queue (see ``hpa_replicas``)."""
    recent = [x for x in samples[-15:] if x[3] > 0]
    if not recent:
        return fleet.desired()
    usage = float(np.mean([x[2] for x in recent])) + len(fleet.queue)  # running + waiting, fleet-wide
    return hpa_replicas(fleet.desired(), usage, batch, history, now, max_replicas)


def hpa_replicas(current: int, usage: float, batch: int, history, now: float, max_replicas: int) -> int:
    """The HPA's replica calculation on requests in flight per replica (running plus
    waiting, the metric llm-d and KEDA set-ups scale vLLM on; target 70% of the batch,
    10% tolerance). As the HPA does on scale-up, replicas still starting count as idle,
    which keeps it from piling up replicas during a cold start."""
    utilisation = usage / (batch * max(current, 1))
    ratio = utilisation / 0.7
    want = current if abs(ratio - 1) <= 0.1 else int(math.ceil(current * ratio))
    want = min(want, current + max(4, current), max_replicas)  # scale-up policy: max(4 pods, 100%) per period
    history.append((now, max(want, 1)))
    history[:] = [(t, w) for t, w in history if now - t <= 300]
    if want < current:  # scale-down stabilisation: the highest recommendation of the last 300 s
        want = max(w for _, w in history)
    return max(1, min(want, max_replicas))


def _ala_refit(model, spec, samples, trace, arrivals_at, now, fleet, state, base, per_s_offered):
    """One refit through the operator's own ``refit.step``: the samples become the
    Observations its Prometheus queries would return, on the replay's clock; the evidence,
    scorecard and times of the last changes are carried from refit to refit as the operator
    carries them in the status."""
    window = samples[-300:]
    every = 15
    at = [t for t, *_ in window[::-every][::-1]]

    def series(column: int) -> list[tuple[float, float]]:
        # One sample per step, each the mean over its 60 s rate window (as rate() and
        # avg_over_time() would give), stamped in unix seconds like Prometheus's.
        return [(base.timestamp() + t, float(np.mean([x[column] for x in window if t - 60 < x[0] <= t])))
                for t in at]

    # Demand as the operator's demand query would read it: requested output tokens/s,
    # the busiest minute of the last five, plus the backlog drained over a minute.
    lo = np.searchsorted(arrivals_at, now - 300)
    recent = trace.iloc[lo:np.searchsorted(arrivals_at, now)]
    per_minute = np.bincount(((now - recent["timestamp_s"]) // 60).astype(int).clip(0, 4),
                             weights=recent["output_tokens"], minlength=5) / 60
    backlog = float(trace["output_tokens"].to_numpy()[fleet.queue].sum()) / 60 if fleet.queue else 0.0
    demand = float(per_minute.max()) + backlog
    throughput = series(1)
    history = fine = None
    if spec.forecast is not None:
        history, fine = offered_history(per_s_offered[:int(now)], base.timestamp(), 1.0)
    observations = Observations(desired=fleet.desired(), ready=int(window[-1][3]) if window else 0,
                                throughput=throughput, batch=series(2), serving=series(3),
                                demand=max(demand, 1.0),
                                # The fleet served before the trace began: no series starts inside.
                                window_start=throughput[0][0] if throughput else None,
                                history=history, fine=fine, batch_limit=fleet.batch,
                                rolling_out=fleet.rolling_out(now))
    return _step(model, spec, observations, state, base, now)


def offered_history(offered: np.ndarray, origin: float, dt: float, fine_s: float = 10.0,
                    fine_span_s: float = 3 * 3600.0, slot_s: float = 600.0):
    """The two series a predictive refit reads, from offered output tokens per step of ``dt``
    seconds (NaN in a collection gap): 10-minute means (``avg_over_time`` of the demand
    over each slot) and ``fine_s`` rates over the last ``fine_span_s`` (a short rate window),
    as (unix seconds at the end of each, tokens/s)."""
    per_slot, per_fine = int(round(slot_s / dt)), max(1, int(round(fine_s / dt)))
    n = offered.size // per_slot * per_slot
    slots = offered[:n].reshape(-1, per_slot).mean(axis=1) / dt if n else np.zeros(0)
    history = [(origin + (i + 1) * slot_s, float(v)) for i, v in enumerate(slots) if np.isfinite(v)]
    lo = max(0, offered.size - int(fine_span_s / dt))
    lo = offered.size - (offered.size - lo) // per_fine * per_fine
    tail = offered[lo:].reshape(-1, per_fine).mean(axis=1) / dt if offered.size > lo else np.zeros(0)
    fine = [(origin + (lo + (i + 1) * per_fine) * dt, float(v)) for i, v in enumerate(tail) if np.isfinite(v)]
    return history, fine


def _step(model, spec, observations, state, base, now):
    """``refit.step`` on the replay's clock, carrying what the operator keeps in the status."""
    when = base + timedelta(seconds=now)
    stamp = (lambda key: base + timedelta(seconds=state[key]) if state[key] is not None else None)
    decision = step(model, spec, observations, state["score"], stamp("last_scaled"), when,
                    evidence=state["evidence"], curve=state["curve"], last_batch_change=stamp("last_batch"))
    state["score"], state["evidence"], state["curve"] = decision.score, decision.evidence, decision.curve
    if decision.scale_to is not None:
        state["last_scaled"] = now
    return decision


def _count_decision(out: Outcome, decision) -> None:
    if decision.forecast:
        key = decision.forecast["decidedBy"]
        out.decided_by[key] = out.decided_by.get(key, 0) + 1


def default_scenarios() -> list[Scenario]:
    """The two bundled traces, each on an 8B model on one H100 and a 70B model on four."""
    out = []
    for trace, tin, tout, scale8, scale70 in (("azure_llm_2023_conv.csv", 1024, 211, 20, 10),
                                              ("azure_llm_2023_code.csv", 2048, 28, 50, 25)):
        stem = trace.removeprefix("azure_llm_2023_").removesuffix(".csv")
        out.append(Scenario(f"{stem}-llama-8b-h100", TRACES / trace, "335d81212b", "meta-llama/Meta-Llama-3-8B",
                            "H100", 1, "vllm", tin, tout, 25.0, scale8))
        out.append(Scenario(f"{stem}-llama-70b-h100x4", TRACES / trace, "bb79b9cece", "meta-llama/Meta-Llama-3-70B",
                            "H100", 4, "vllm", tin, tout, 50.0, scale70))
    return out


def run_scenario(s: Scenario, policies=POLICIES, model=None, curves=None, seed: int = 0) -> list[dict]:
    truth = TrueCurve.from_curves(curves, s.curve_id)
    trace = load_trace(s.trace, s.scale, np.random.default_rng(seed))
    rows = []
    for policy in policies:
        started = time.perf_counter()
        result = replay(s, policy, model=model, seed=seed, truth=truth, trace=trace)
        row = dict(scenario=s.name, scale=s.scale, **result.as_dict(),
                   seconds=round(time.perf_counter() - started, 1))
        rows.append((row, result))
    return rows


__all__ = ["Scenario", "replay", "run_scenario", "default_scenarios", "load_trace", "POLICIES"]
