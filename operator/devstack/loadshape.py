"""Load-shape replay: days of real request rates (10-minute means, e.g. ServeGen's production
services) drive a fluid fleet, and the same policies as the trace replay are compared.

Arrivals. Inside each window of the shape, requests arrive as a Poisson process at the
window's rate times ``scale``, modulated every ``STEP_S`` seconds by the sub-minute
burstiness of a real per-request trace we bundle (the Azure conversation trace by default):
its 10-second arrival counts divided by the mean of their 10-minute window give 360 ratios
per hour; each window of the shape takes 60 consecutive ratios from a random offset (seeded)
and scales them to mean 1, so the window keeps its rate and gets a real trace's bursts. Those
ratios include the source's own Poisson noise (at 5.5 requests/s), so the bursts are, if
anything, larger than a busier service would see. Output tokens per step are the mean of the
step's draws from an exponential around the window's mean (the normal approximation). A run
of windows at rate zero is a collection gap: it is skipped (not simulated, not counted, no
samples in the history the forecast reads) and reported.

The fleet is fluid, one ``STEP_S`` step at a time: requests are token work; each ready
replica serves ``truth(limit)`` tokens/s at full batch, and below that runs the batch that
serves its share; what exceeds the fleet's capacity queues (FIFO). Within a step the demand
is constant, so the queue is linear in time and each arrival's wait (queued tokens ahead of
it / capacity) is exact for that demand; what the step cannot represent is variation faster
than ``STEP_S`` (the one-hour per-request replay measures that). With thousands of requests
in flight, the stochastic fluctuation a fluid model ignores is a few percent of a replica's
batch. A request meets the objectives when it waits at most ``max_ttft_s`` and its replica's
inter-token latency at the running batch is within ``max_itl_ms``.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from .fleet import TrueCurve
from .replay import (ALA_POLICIES, POLICIES, TRACES, Outcome, Scenario, _count_decision, _spec, _step,
                     best_batch, hpa_replicas, offered_history)
from ..refit import Observations
from ..spec import parse_spec

#: Seconds per simulated step (and per burst ratio).
STEP_S = 10.0
#: The trace whose sub-minute burstiness modulates the windows.
BURST_TRACE = TRACES / "azure_llm_2023_conv.csv"
#: ``--scale auto``: the busiest window needs about this many replicas at the best batch.
AUTO_REPLICAS = 20
#: The ALA policies refit this often on a multi-day shape (seconds). A refit costs about
#: 10-25 ms while its evidence keeps its signature (``refit.predicted_curve``) and 60 ms when
#: it predicts afresh; 14 days of two-minute refits take about 3 minutes on 2 cores.
REFIT_S = 120


@dataclass(frozen=True)
class LoadShape:
    """Windows of a load shape, gaps removed: start (s), rate (req/s), mean tokens."""

    start: np.ndarray
    rate: np.ndarray
    mean_input: np.ndarray
    mean_output: np.ndarray
    window_s: float
    skipped: int        # windows in collection gaps (rate zero)

    @property
    def span_s(self) -> float:
        return float(self.start[-1] + self.window_s - self.start[0]) if self.start.size else 0.0


def is_load_shape(path: Path) -> bool:
    """A CSV whose header names ``window_start_s`` and ``req_per_s``."""
    with open(path, encoding="utf-8") as f:
        header = f.readline().strip().split(",")
    return "window_start_s" in header and "req_per_s" in header


def load_shape(path: Path) -> LoadShape:
    """Read and check a load shape (``window_start_s,req_per_s`` and optional
    ``mean_input_tokens,mean_output_tokens``; other columns ignored)."""
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not a readable CSV ({exc})") from None
    missing = {"window_start_s", "req_per_s"} - set(frame.columns)
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
    if len(frame) < 2:
        raise ValueError(f"{path}: needs at least two windows")
    for column in ("window_start_s", "req_per_s", "mean_input_tokens", "mean_output_tokens"):
        if column in frame and not pd.api.types.is_numeric_dtype(frame[column]):
            raise ValueError(f"{path}: column {column} is not numeric")
    start, rate = frame["window_start_s"].to_numpy(float), frame["req_per_s"].to_numpy(float)
    if not (np.isfinite(start).all() and np.isfinite(rate).all()):
        raise ValueError(f"{path}: window_start_s and req_per_s must be finite numbers")
    if (rate < 0).any():
        raise ValueError(f"{path}: req_per_s is negative in {int((rate < 0).sum())} window(s)")
    steps = np.diff(start)
    if (steps <= 0).any() or not np.allclose(steps, steps[0], rtol=1e-6):
        raise ValueError(f"{path}: windows must be equally spaced and increasing (window_start_s)")
    if steps[0] < STEP_S:
        raise ValueError(f"{path}: windows of {steps[0]:g} s are shorter than the replay's {STEP_S:g} s step")
    if not (rate > 0).any():
        raise ValueError(f"{path}: every window has rate zero")

    def tokens(column: str, fallback: float) -> np.ndarray:
        if column not in frame:
            return np.full(len(frame), fallback)
        values = frame[column].to_numpy(float)
        good = np.isfinite(values) & (values > 0)
        typical = float(np.average(values[good], weights=rate[good])) if (good & (rate > 0)).any() else fallback
        return np.where(good, values, typical)

    keep = rate > 0
    return LoadShape(start[keep], rate[keep], tokens("mean_input_tokens", 1024.0)[keep],
                     tokens("mean_output_tokens", 256.0)[keep], float(steps[0]), int((~keep).sum()))


def burst_ratios(path: Path = BURST_TRACE, window_s: float = 600.0) -> np.ndarray:
    """Per ``STEP_S`` bucket of a per-request trace: its arrivals over the mean of its
    ``window_s`` window (complete windows only)."""
    arrivals = pd.read_csv(path, usecols=["timestamp_s"])["timestamp_s"].to_numpy(float)
    per = int(round(window_s / STEP_S))
    counts = np.bincount((arrivals // STEP_S).astype(int))
    n = counts.size // per * per
    if n == 0:
        raise ValueError(f"{path}: shorter than one {window_s:g} s window")
    blocks = counts[:n].reshape(-1, per).astype(float)
    return (blocks / np.maximum(blocks.mean(axis=1, keepdims=True), 1e-9)).ravel()


def auto_scale(shape: LoadShape, capacity: float, replicas: int = AUTO_REPLICAS) -> float:
    """The scale at which the busiest window needs ``replicas`` at ``capacity`` tokens/s each."""
    busiest = float((shape.rate * shape.mean_output).max())
    return replicas * capacity / busiest


@dataclass
class Demand:
    """Arrivals per step on the absolute grid (gaps: NaN)."""

    requests: np.ndarray
    tokens: np.ndarray      # output tokens requested in the step
    mean_output: np.ndarray


def generate(shape: LoadShape, scale: float, rng: np.random.Generator, ratios: np.ndarray) -> Demand:
    """Seeded arrivals for every step of every window (see the module docstring)."""
    per = int(round(shape.window_s / STEP_S))
    origin = shape.start[0]
    total = int(round(shape.span_s / STEP_S))
    requests, tokens = np.full(total, np.nan), np.full(total, np.nan)
    mean_out = np.full(total, np.nan)
    period = ratios.size
    for w in range(shape.start.size):
        first = int(round((shape.start[w] - origin) / STEP_S))
        offset = int(rng.integers(period))
        mod = ratios[(offset + np.arange(per)) % period]
        mod = mod / max(mod.mean(), 1e-9)
        counts = rng.poisson(shape.rate[w] * scale * STEP_S * mod).astype(float)
        out = shape.mean_output[w]
        noise = rng.standard_normal(per) / np.sqrt(np.maximum(counts, 1.0))
        means = out * np.clip(1 + noise, 0.2, None)
        requests[first:first + per], tokens[first:first + per] = counts, counts * means
        mean_out[first:first + per] = out
    return Demand(requests, tokens, mean_out)


class FluidFleet:
    """Replicas and a FIFO token queue, advanced one step at a time (module docstring)."""

    def __init__(self, truth: TrueCurve, batch: int, cold_start_s: float):
        self.batch, self.cold_start = batch, cold_start_s
        self.table = np.array([truth(b) if b > 0 else 0.0 for b in range(int(truth.max_batch) * 4 + 2)])
        self.ready_at: list[float] = []
        self.limit: list[int] = []
        self.retire_at: list[float | None] = []
        self.queue = 0.0            # tokens waiting
        self.gpu_seconds = 0.0

    def desired(self) -> int:
        return sum(1 for r in self.retire_at if r is None)

    def rolling_out(self, now: float) -> bool:
        return any(r is not None for r in self.retire_at)

    def scale_to(self, n: int, now: float, ready_now: bool = False) -> None:
        current = self.desired()
        for _ in range(max(0, n - current)):
            self.ready_at.append(now if ready_now else now + self.cold_start)
            self.limit.append(self.batch)
            self.retire_at.append(None)
        if n < current:
            # The newest go first (starting replicas before serving ones); a replica's requests
            # last seconds, so it leaves within the step.
            order = sorted((i for i in range(len(self.ready_at)) if self.retire_at[i] is None),
                           key=lambda i: -self.ready_at[i])
            self._remove(set(order[:current - n]))

    def rollout(self, batch: int, now: float) -> None:
        """A new batch limit: every replica is replaced by one with the new limit, which
        serves after a cold start; the old one leaves then (the overlap is charged)."""
        self.batch = batch
        for i in range(len(self.ready_at)):
            if self.retire_at[i] is None:
                self.retire_at[i] = now + self.cold_start
        self.scale_to(sum(1 for r in self.retire_at if r is not None), now)

    def _remove(self, gone: set) -> None:
        keep = [i for i in range(len(self.ready_at)) if i not in gone]
        self.ready_at = [self.ready_at[i] for i in keep]
        self.limit = [self.limit[i] for i in keep]
        self.retire_at = [self.retire_at[i] for i in keep]

    def step(self, now: float, dt: float, tokens: float, wait_s: float, itl_s: float, mean_out: float):
        """Advance one step; returns (served tokens/s, running requests, serving replicas,
        share of the step's arrivals within objectives, requests waiting)."""
        self._remove({i for i, r in enumerate(self.retire_at) if r is not None and r <= now})
        ready = [i for i, r in enumerate(self.ready_at) if r <= now]
        limits = np.array([self.limit[i] for i in ready], int)
        self.gpu_seconds += len(self.ready_at) * dt
        caps = self.table[limits] if limits.size else np.zeros(0)
        capacity = float(caps.sum())
        inflow, q0 = tokens / dt, self.queue
        if capacity <= 0:
            self.queue = q0 + tokens
            return 0.0, 0.0, 0, 0.0 if tokens > 0 else 1.0, self.queue / mean_out
        allowed = capacity * wait_s
        net = inflow - capacity
        if net > 0:
            wait_ok = float(np.clip((allowed - q0) / (net * dt), 0.0, 1.0))
        elif net < 0:
            wait_ok = 1.0 - float(np.clip((q0 - allowed) / (-net * dt), 0.0, 1.0))
        else:
            wait_ok = 1.0 if q0 <= allowed else 0.0
        self.queue = max(0.0, q0 + net * dt)
        served = (q0 + tokens - self.queue) / dt
        if self.queue > 0 or served >= capacity * 0.999:
            running = float(limits.sum())
            itl_bad = caps > 0
            itl_bad &= limits / np.maximum(caps, 1e-9) > itl_s
            itl_ok = 1.0 - float(caps[itl_bad].sum() / capacity)
        else:
            # Below capacity every replica runs the batch that serves its share (least-loaded
            # dispatch balances them); limits differ only during a rollout.
            share = served / limits.size
            b = float(np.interp(share, self.table[:limits.max() + 1], np.arange(limits.max() + 1)))
            running = b * limits.size
            itl_ok = 1.0 if b <= 0 or b / max(np.interp(b, np.arange(self.table.size), self.table), 1e-9) <= itl_s \
                else 0.0
        return served, running, len(ready), wait_ok * itl_ok, self.queue / mean_out


def replay_shape(s: Scenario, shape: LoadShape, policy: str, model=None, seed: int = 0,
                 truth: TrueCurve | None = None, demand: Demand | None = None) -> Outcome:
    """Replay a load shape under ``policy`` (the trace replay's policies, on a fluid fleet)."""
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}; choose from {', '.join(POLICIES)}")
    batch = best_batch(truth, s.max_itl_ms)
    capacity = truth(batch)
    if demand is None:
        demand = generate(shape, s.scale, np.random.default_rng(seed), burst_ratios())
    total = demand.tokens.size
    live = np.isfinite(demand.tokens)
    rate = np.where(live, demand.tokens, 0.0) / STEP_S
    per_min = max(1, int(60 / STEP_S))
    minute = np.convolve(rate, np.ones(per_min) / per_min, mode="full")[:total]
    fleet = FluidFleet(truth, batch, s.cold_start_s)
    out = Outcome(policy, batch=batch)
    first = float(np.nanmean(rate[:int(600 / STEP_S)]))
    if policy == "static":
        fleet.scale_to(int(math.ceil(minute.max() / capacity)), 0.0, ready_now=True)
    elif policy == "oracle":
        ahead = int(60 / STEP_S)
        windows = np.lib.stride_tricks.sliding_window_view(np.concatenate([rate, np.zeros(ahead)]), ahead)[:total]
        need = np.ceil(windows.max(axis=1) / capacity).astype(int)
        fleet.scale_to(int(need[0]), 0.0, ready_now=True)
    else:
        fleet.scale_to(max(1, int(math.ceil(first / capacity))), 0.0, ready_now=True)
    spec = parse_spec(_spec(s, int(truth.max_batch), s.max_replicas, predictive=policy == "predictive",
                            refit_s=REFIT_S, step_s=30)) if policy in ALA_POLICIES else None
    state: dict = {"score": None, "last_scaled": None, "evidence": None, "last_batch": None, "curve": None}
    base = datetime(2026, 1, 1, tzinfo=timezone.utc)
    hpa_history: list = []
    samples = np.full((total, 3), np.nan)       # served tokens/s, running, serving
    missed = np.zeros(total)
    replicas = np.zeros(total)
    waiting = 0.0
    cold_steps = int(round(s.cold_start_s / STEP_S))
    refit_every = int(round(REFIT_S / STEP_S))
    for i in range(total):
        now = i * STEP_S
        if not live[i]:
            replicas[i] = np.nan
            continue
        if policy == "oracle" and i + cold_steps < total:
            want = int(need[i + cold_steps])
            if want > fleet.desired():
                fleet.scale_to(want, now)
                out.scaling_actions += 1
            elif i % per_min == 0 and max(int(need[i]), want) < fleet.desired():
                fleet.scale_to(max(int(need[i]), want), now)
                out.scaling_actions += 1
        elif policy == "reactive" and i > 0 and np.isfinite(samples[max(0, i - 2):i, 1]).any():
            usage = float(np.nanmean(samples[max(0, i - 2):i, 1]))
            want = hpa_replicas(fleet.desired(), usage + waiting, batch, hpa_history, now, s.max_replicas)
            if want != fleet.desired():
                fleet.scale_to(want, now)
                out.scaling_actions += 1
        elif policy in ALA_POLICIES and i > 0 and i % refit_every == 0:
            decision = _shape_refit(model, spec, samples, rate, live, i, fleet, state, base)
            _count_decision(out, decision)
            if decision.set_batch is not None:
                fleet.rollout(decision.set_batch, now)
                state["last_batch"], out.batch_changes = now, out.batch_changes + 1
            if decision.scale_to is not None:
                fleet.scale_to(decision.scale_to, now)
                out.scaling_actions += 1
        served, running, serving, ok, waiting = fleet.step(now, STEP_S, float(demand.tokens[i]), s.max_ttft_s,
                                                           s.max_itl_ms / 1000.0 * 1.0001, float(demand.mean_output[i]))
        samples[i] = served, running, serving
        missed[i] = demand.requests[i] * (1.0 - ok)
        replicas[i] = len(fleet.ready_at)
    out.gpu_hours = fleet.gpu_seconds * s.accelerators / 3600
    requests = np.where(live, demand.requests, 0.0)
    out.requests = int(requests.sum())
    out.met = int(round(requests.sum() - missed.sum()))
    by_min_req = np.add.reduceat(requests, np.arange(0, total, per_min))
    by_min_miss = np.add.reduceat(missed, np.arange(0, total, per_min))
    out.violation_minutes = int(((by_min_miss > 0.01 * by_min_req) & (by_min_req > 0)).sum())
    out.peak_replicas = int(np.nanmax(replicas))
    if state["score"]:
        out.live_ape, out.live_coverage = float(state["score"]["ape"]), float(state["score"]["coverage"])
    per_slot = int(600 / STEP_S)
    n = total // per_slot * per_slot
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a slot inside a gap: NaN, as meant
        out.series = {"slot_s": 600, "demand_tokens_per_s": np.nanmean(np.where(live, rate, np.nan)[:n].reshape(
            -1, per_slot), axis=1).tolist() if n else [],
            "replicas": np.nanmean(replicas[:n].reshape(-1, per_slot), axis=1).tolist() if n else [],
            "missed_share": (missed[:n].reshape(-1, per_slot).sum(axis=1) /
                             np.maximum(requests[:n].reshape(-1, per_slot).sum(axis=1), 1)).tolist() if n else []}
    return out


def _shape_refit(model, spec, samples, rate, live, i, fleet, state, base):
    """One refit through ``refit.step``: the fleet-wide series over the last five minutes
    (30 s steps, 60 s windows), the demand as the reactive policy reads it (the busiest
    minute of the last five plus the queue drained over a minute), and for the predictive
    policy the offered demand's history and fine series."""
    now = i * STEP_S
    lo = max(0, i - int(300 / STEP_S))
    per_min = int(60 / STEP_S)

    def series(column: int) -> list[tuple[float, float]]:
        out = []
        for j in range(lo + per_min, i + 1, 3):
            window = samples[j - per_min:j, column]
            if np.isfinite(window).any():
                out.append((base.timestamp() + j * STEP_S, float(np.nanmean(window))))
        return out

    recent = rate[lo:i]
    minutes = [float(recent[k:k + per_min].mean()) for k in range(0, recent.size, per_min) if recent[k:k + per_min].size]
    demand = (max(minutes) if minutes else 0.0) + fleet.queue / 60.0
    throughput = series(0)
    history = fine = None
    if spec.forecast is not None:
        offered = np.where(live[:i], rate[:i] * STEP_S, np.nan)
        history, fine = offered_history(offered, base.timestamp(), STEP_S)
    last = samples[i - 1]
    observations = Observations(desired=fleet.desired(), ready=int(last[2]) if np.isfinite(last[2]) else 0,
                                throughput=throughput, batch=series(1), serving=series(2), demand=max(demand, 1.0),
                                window_start=throughput[0][0] if throughput else None, history=history, fine=fine,
                                batch_limit=fleet.batch, rolling_out=fleet.rolling_out(now))
    return _step(model, spec, observations, state, base, now)


def shape_scenarios() -> list[Scenario]:
    """The two bundled 14-day shapes: the small service on an 8B model on one H100, the
    large one on a 70B model on four (scale: auto)."""
    out = []
    for stem, model, accelerators, curve, itl in (
            ("m-small", "meta-llama/Meta-Llama-3-8B", 1, "335d81212b", 25.0),
            ("m-large", "meta-llama/Meta-Llama-3-70B", 4, "bb79b9cece", 50.0)):
        path = TRACES / f"servegen_{stem}_10min.csv"
        out.append(Scenario(f"servegen-{stem}-llama-{'8b-h100' if accelerators == 1 else '70b-h100x4'}", path,
                            curve, model, "H100", accelerators, "vllm", 0.0, 0.0, itl, 0))
    return out


def prepared(s: Scenario, truth: TrueCurve, scale: float | None = None) -> tuple[Scenario, LoadShape]:
    """The scenario with its workload (the shape's rate-weighted token means) and scale set."""
    shape = load_shape(s.trace)
    weights = shape.rate
    tokens_in = float(np.average(shape.mean_input, weights=weights))
    tokens_out = float(np.average(shape.mean_output, weights=weights))
    if scale is None:
        scale = auto_scale(shape, truth(best_batch(truth, s.max_itl_ms)))
    return replace(s, input_tokens=round(tokens_in, 1), output_tokens=round(tokens_out, 1), scale=scale), shape


def run_shape(s: Scenario, policies=POLICIES, model=None, curves=None, seed: int = 0,
              scale: float | None = None) -> list:
    truth = TrueCurve.from_curves(curves, s.curve_id)
    s, shape = prepared(s, truth, scale)
    demand = generate(shape, s.scale, np.random.default_rng(seed), burst_ratios())
    rows = []
    for policy in policies:
        started = time.perf_counter()
        result = replay_shape(s, shape, policy, model=model, seed=seed, truth=truth, demand=demand)
        row = dict(scenario=s.name, scale=round(s.scale, 4), **result.as_dict(), skipped_windows=shape.skipped,
                   seconds=round(time.perf_counter() - started, 1))
        rows.append((row, result))
    return rows


__all__ = ["LoadShape", "load_shape", "is_load_shape", "replay_shape", "run_shape", "shape_scenarios",
           "burst_ratios", "generate", "FluidFleet"]
