"""Capacity planner: batch size and replicas for a demand under latency objectives.

The batch is the throughput-maximising one whose latencies meet the objectives; replicas
are sized on the *lower* end of the throughput interval, so the plan holds at the
requested confidence, not only on average.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .catalog import Catalog, precision_bytes

#: A plan is refused when the throughput interval is wider than this factor.
MAX_INTERVAL_RATIO = 5.0
#: Among batches within this share of the best throughput, the smallest is chosen.
PLATEAU = 0.01
ALTERNATIVE_COUNTS = (1, 2, 4, 8)


#: Mean tokens per request the planner accepts: at least one (a fraction of a token per
#: request means nothing and, near zero, turns the features into NaN), at most ten million.
MIN_TOKENS, MAX_TOKENS = 1, 10_000_000


@dataclass(frozen=True)
class Deployment:
    """One serving configuration: a replica of ``accelerators`` x ``accelerator``."""

    model: str
    accelerator: str
    accelerators: int = 1
    engine: str = "vllm"
    precision: str = "bfloat16"
    input_tokens: float | None = None
    output_tokens: float | None = None
    workload: str = "unspecified"

    def __post_init__(self):
        if int(self.accelerators) != self.accelerators or self.accelerators < 1:
            raise ValueError(f"accelerators must be a whole number of at least 1, got {self.accelerators}.")
        for name in ("input_tokens", "output_tokens"):
            value = getattr(self, name)
            if value is not None and not (np.isfinite(value) and MIN_TOKENS <= value <= MAX_TOKENS):
                raise ValueError(f"{name} (mean tokens per request) must lie in [{MIN_TOKENS}, {MAX_TOKENS:,}], "
                                 f"got {value}.")
        precision_bytes(self.precision)

    def query(self, batches: np.ndarray) -> pd.DataFrame:
        """Query rows for the ALA estimator at ``batches``."""
        return pd.DataFrame({"model": self.model, "hardware": self.accelerator,
                             "num_gpus": int(self.accelerators), "framework": self.engine,
                             "precision": self.precision,
                             "input_tokens": np.nan if self.input_tokens is None else float(self.input_tokens),
                             "output_tokens": np.nan if self.output_tokens is None else float(self.output_tokens),
                             "workload": self.workload, "batch_size": np.asarray(batches, float)})


@dataclass(frozen=True)
class Demand:
    """Demand as output tokens/s, or as requests/s (converted with the output length)."""

    output_tokens_per_s: float | None = None
    requests_per_s: float | None = None

    def tokens_per_s(self, deployment: Deployment) -> float:
        if (self.output_tokens_per_s is None) == (self.requests_per_s is None):
            raise ValueError("give exactly one of output_tokens_per_s and requests_per_s.")
        if self.output_tokens_per_s is not None:
            value = float(self.output_tokens_per_s)
        else:
            if deployment.output_tokens is None:
                raise ValueError("a demand in requests/s needs output_tokens to convert to tokens/s.")
            value = float(self.requests_per_s) * float(deployment.output_tokens)
        if not (np.isfinite(value) and value >= 0):
            raise ValueError(f"demand must be a finite number of at least 0, got {value}.")
        return value


@dataclass(frozen=True)
class Objectives:
    """Latency objectives; either may be absent."""

    max_itl_ms: float | None = None
    max_request_latency_s: float | None = None

    def __post_init__(self):
        for name in ("max_itl_ms", "max_request_latency_s"):
            value = getattr(self, name)
            if value is not None and not (np.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be positive, got {value}.")


@dataclass(frozen=True)
class Policy:
    """How to turn a curve into replicas."""

    confidence_level: float = 0.9
    min_replicas: int = 1
    max_replicas: int | None = None
    headroom: float = 0.1
    price_per_hour: float | None = None
    max_batch: int = 1024

    def __post_init__(self):
        if not 0 < self.confidence_level < 1:
            raise ValueError("confidence_level must lie strictly between 0 and 1.")
        if self.min_replicas < 0:
            raise ValueError("min_replicas must be at least 0.")
        if self.max_replicas is not None and self.max_replicas < max(self.min_replicas, 1):
            raise ValueError("max_replicas must be at least min_replicas and at least 1.")
        if not 0 <= self.headroom <= 10:
            raise ValueError("headroom must be a fraction in [0, 10].")
        if self.price_per_hour is not None and not self.price_per_hour >= 0:
            raise ValueError("price_per_hour must not be negative.")
        if self.max_batch < 1:
            raise ValueError("max_batch must be at least 1.")


@dataclass
class Plan:
    """A recommendation, or the reason there is none (``outcome`` says which)."""

    outcome: str
    deployment: dict
    demand_tokens_per_s: float
    batch_size: int | None = None
    replicas: dict | None = None
    throughput_per_replica: dict | None = None
    latency: dict | None = None
    confidence: float | None = None
    cost: dict | None = None
    batch_limited_by: str | None = None
    replicas_clipped_by: str | None = None
    reasons: list[str] = field(default_factory=list)
    alternatives: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def batch_grid(max_batch: int) -> np.ndarray:
    """Candidate batch sizes: powers of two and a log-spaced grid, up to ``max_batch``."""
    grid = np.unique(np.concatenate([np.round(np.geomspace(1, max_batch, 40)),
                                     2.0 ** np.arange(0, int(math.log2(max_batch)) + 1)]))
    return grid[grid <= max_batch]


def _price(deployment: Deployment, given: float | None, catalog: Catalog) -> tuple[float | None, str]:
    if given is not None:
        return float(given), "given"
    try:
        value = float(catalog.accelerator(deployment.accelerator)["price_per_hour_usd"])
    except KeyError:
        return None, "none"
    return (value, "catalog (indicative)") if np.isfinite(value) else (None, "none")


def choose(batches: np.ndarray, point: np.ndarray, lower: np.ndarray, upper: np.ndarray,
           confidence: np.ndarray, deployment: Deployment, demand: float, objectives: Objectives,
           policy: Policy, price: float | None, price_source: str) -> Plan:
    """Plan from a predicted curve (pure arithmetic; see module docstring).

    Notes
    -----
    Latencies are taken at the conservative throughput ``lower(bb)``:
    ``itl(bb) = bb / lower(bb)`` and ``request(bb) = oo * bb / lower(bb)``. The batch is
    the smallest within ``PLATEAU`` of the best feasible ``lower(bb)``; replicas are
    ``ceil(D (1 + headroom) / thpt)`` with ``thpt`` = lower (target), upper (lower
    bound) and the lower end of the doubled-tail interval (upper bound).
    """
    plan = Plan(outcome="ok", deployment=asdict(deployment), demand_tokens_per_s=demand)
    itl_ms = 1000.0 * batches / lower
    feasible = np.isfinite(lower) & (lower > 0)
    if objectives.max_itl_ms is not None:
        feasible &= itl_ms <= objectives.max_itl_ms
    req_s = None
    if objectives.max_request_latency_s is not None:
        if deployment.output_tokens is None:
            raise ValueError("a request-latency objective needs output_tokens.")
        req_s = deployment.output_tokens * batches / lower
        feasible &= req_s <= objectives.max_request_latency_s
    if not feasible.any():
        plan.outcome = "infeasible"
        plan.reasons.append(f"no batch size meets the objectives even at batch {int(batches[0])}: "
                            f"predicted inter-token latency there is {itl_ms[0]:.1f} ms at the "
                            f"conservative throughput")
        return plan
    best = np.max(np.where(feasible, lower, -np.inf))
    pick = int(np.flatnonzero(feasible & (lower >= (1 - PLATEAU) * best))[0])
    overall = int(np.argmax(np.where(np.isfinite(lower), lower, -np.inf)))
    bb = batches[pick]
    if overall > pick and not feasible[overall]:
        # The objective violated at the unconstrained best batch is the one that binds.
        if objectives.max_itl_ms is not None and itl_ms[overall] > objectives.max_itl_ms:
            plan.batch_limited_by = "max_itl_ms"
            plan.reasons.append(f"batch {int(bb)} is the best whose inter-token latency "
                                f"({itl_ms[pick]:.1f} ms) meets max_itl_ms={objectives.max_itl_ms:g}")
        else:
            plan.batch_limited_by = "max_request_latency_s"
            plan.reasons.append(f"batch {int(bb)} is the best whose request latency "
                                f"({req_s[pick]:.2f} s) meets max_request_latency_s="
                                f"{objectives.max_request_latency_s:g}")
    else:
        plan.batch_limited_by = "throughput_peak"
        plan.reasons.append(f"batch {int(bb)} reaches the throughput plateau (within {PLATEAU:.0%} of "
                            f"the best conservative throughput)")
    p, lo, hi = float(point[pick]), float(lower[pick]), float(upper[pick])
    plan.batch_size = int(bb)
    plan.throughput_per_replica = {"value": p, "lower": lo, "upper": hi,
                                   "confidence_level": policy.confidence_level}
    plan.confidence = float(confidence[pick])
    plan.latency = {"itl_ms": float(itl_ms[pick]), "itl_ms_at_point": float(1000 * bb / p),
                    "request_latency_s": None if deployment.output_tokens is None else
                    float(deployment.output_tokens * bb / lo)}
    if not (lo > 0 and p / lo <= MAX_INTERVAL_RATIO):
        plan.outcome = "insufficient_data"
        plan.reasons.append(f"the {policy.confidence_level:.0%} throughput interval [{lo:.0f}, {hi:.0f}] "
                            f"is too wide to size replicas on (point {p:.0f}); add measurements "
                            f"of this deployment")
        plan.replicas = None
        return plan
    need = demand * (1 + policy.headroom)
    wide_lower = lo * (lo / p)  # the lower end of an interval with a doubled log half-width
    uncapped = math.ceil(need / lo) if need > 0 else 0
    low_bound = math.ceil(need / hi) if need > 0 else 0
    high_bound = math.ceil(need / wide_lower) if need > 0 else 0
    target = max(uncapped, policy.min_replicas)
    if need == 0:
        plan.reasons.append("no demand: replicas set to min_replicas")
    if uncapped < policy.min_replicas:
        plan.replicas_clipped_by = "min_replicas"
        plan.reasons.append(f"{uncapped} replica(s) would do; raised to min_replicas={policy.min_replicas}")
    if policy.max_replicas is not None and target > policy.max_replicas:
        plan.replicas_clipped_by = "max_replicas"
        plan.reasons.append(f"{uncapped} replicas are needed; capped at max_replicas={policy.max_replicas}, "
                            f"which serves about {policy.max_replicas * lo:.0f} of {need:.0f} tokens/s")
        target = policy.max_replicas
    clip = (lambda r: max(policy.min_replicas, r if policy.max_replicas is None else min(r, policy.max_replicas)))
    plan.replicas = {"target": int(target), "lower_bound": int(clip(low_bound)),
                     "upper_bound": int(clip(high_bound)), "uncapped": int(uncapped)}
    plan.reasons.append(f"replicas sized on the conservative throughput {lo:.0f} tokens/s per replica "
                        f"(point {p:.0f}) for demand {demand:.0f} tokens/s plus {policy.headroom:.0%} headroom")
    if price is not None:
        per_hour = price * deployment.accelerators * target
        served = min(demand, target * lo)
        plan.cost = {"per_hour": per_hour, "price_per_accelerator_hour": price, "price_source": price_source,
                     "per_million_output_tokens": per_hour / (served * 3600) * 1e6 if served > 0 else None}
    return plan


def plan(model, deployment: Deployment, demand: Demand, objectives: Objectives = Objectives(),
         policy: Policy = Policy(), alternatives: bool = True, top: int = 8,
         live: pd.DataFrame | None = None) -> Plan:
    """Recommend batch size and replicas for ``deployment`` from a fitted ALA ``model``.

    Parameters
    ----------
    model : ALA
        A fitted estimator.
    deployment, demand, objectives, policy
        What to plan for; see their classes.
    alternatives : bool
        Also plan every catalog accelerator and count whose memory holds the weights,
        ranked by cost per million output tokens.
    live : DataFrame, optional
        Measurements of running deployments (``deployment.query(batches)`` rows plus
        ``throughput_tokens_per_s``); they update the curve of their own configuration.

    Returns
    -------
    Plan
        ``outcome`` is ``ok``, ``infeasible`` (no batch meets the objectives) or
        ``insufficient_data`` (the model cannot bound throughput tightly enough).

    Examples
    --------
    >>> p = plan(model, Deployment("meta-llama/Llama-3.1-8B-Instruct", "H100"),
    ...          Demand(output_tokens_per_s=50000), Objectives(max_itl_ms=50))  # doctest: +SKIP
    """
    tokens = demand.tokens_per_s(deployment)
    grid = batch_grid(policy.max_batch)
    candidates = [deployment]
    if alternatives:
        candidates += _alternatives(model.catalog_, deployment)
    query = pd.concat([c.query(grid) for c in candidates], ignore_index=True)
    out = model.predict_interval(query, confidence_level=policy.confidence_level, live=live)
    n = grid.size
    plans = []
    for i, cand in enumerate(candidates):
        part = out.iloc[i * n:(i + 1) * n]
        # A price the user gave is for their accelerator; others use the catalog's.
        same = cand.accelerator.lower() == deployment.accelerator.lower()
        price, source = _price(cand, policy.price_per_hour if same else None, model.catalog_)
        plans.append(choose(grid, part["point"].to_numpy(), part["lower"].to_numpy(),
                            part["upper"].to_numpy(), part["confidence"].to_numpy(), cand, tokens,
                            objectives, policy, price, source))
    main = plans[0]
    if alternatives:
        ranked = sorted((p for p in plans[1:] if p.outcome == "ok" and p.cost and
                         p.cost.get("per_million_output_tokens") is not None),
                        key=lambda p: p.cost["per_million_output_tokens"])
        main.alternatives = [{"accelerator": p.deployment["accelerator"],
                              "accelerators": p.deployment["accelerators"], "batch_size": p.batch_size,
                              "replicas": p.replicas["target"], "confidence": p.confidence,
                              "throughput_per_replica": p.throughput_per_replica["value"],
                              "cost_per_hour": p.cost["per_hour"],
                              "cost_per_million_output_tokens": p.cost["per_million_output_tokens"],
                              "price_source": p.cost["price_source"]} for p in ranked[:top]]
    return main


def _alternatives(catalog: Catalog, deployment: Deployment) -> list[Deployment]:
    """Catalog accelerators and counts whose memory holds the model's weights."""
    try:
        params = float(catalog.model(deployment.model)["params_b"])
    except KeyError:
        return []
    weights_gb = params * precision_bytes(deployment.precision)
    out = []
    seen = set()
    for _, acc in catalog.accelerators.iterrows():
        if acc["name"] in seen or not np.isfinite(acc["memory_gb"]):
            continue
        seen.add(acc["name"])
        for count in ALTERNATIVE_COUNTS:
            same = acc["name"].lower() == deployment.accelerator.lower() and count == deployment.accelerators
            if not same and weights_gb <= 0.8 * count * acc["memory_gb"]:
                out.append(Deployment(deployment.model, acc["name"], count, deployment.engine,
                                      deployment.precision, deployment.input_tokens,
                                      deployment.output_tokens, deployment.workload))
    return out
