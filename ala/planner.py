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
from .feasibility import memory_fit

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
    #: How batch sizes are meant: empty for a serving engine's concurrent sequences (what the
    #: operator sees); a text containing "static" for a static offline batch of B prompts.
    batch_semantics: str = ""
    tensor_parallel: int | None = None
    expert_parallel: int | None = None
    data_parallel: int | None = None

    def __post_init__(self):
        if int(self.accelerators) != self.accelerators or not 1 <= self.accelerators <= MAX_ACCELERATORS:
            raise ValueError(f"accelerators must be a whole number in [1, {MAX_ACCELERATORS:,}], "
                             f"got {self.accelerators}.")
        for name in ("input_tokens", "output_tokens"):
            value = getattr(self, name)
            if value is not None and not (np.isfinite(value) and MIN_TOKENS <= value <= MAX_TOKENS):
                raise ValueError(f"{name} (mean tokens per request) must lie in [{MIN_TOKENS}, {MAX_TOKENS:,}], "
                                 f"got {value}.")
        for name in ("tensor_parallel", "expert_parallel", "data_parallel"):
            value = getattr(self, name)
            if value is not None and (int(value) != value or not 1 <= value <= MAX_ACCELERATORS):
                raise ValueError(f"{name} must be a whole number in [1, {MAX_ACCELERATORS:,}], got {value}.")
        precision_bytes(self.precision)

    def query(self, batches: np.ndarray) -> pd.DataFrame:
        """Query rows for the ALA estimator at ``batches``: every column a benchmark row
        describes its configuration with, so a product query meets the same curves."""
        none = lambda v: np.nan if v is None else float(v)
        return pd.DataFrame({"model": self.model, "hardware": self.accelerator,
                             "num_gpus": int(self.accelerators), "framework": self.engine,
                             "precision": self.precision,
                             "input_tokens": none(self.input_tokens), "output_tokens": none(self.output_tokens),
                             "workload": self.workload, "batch_semantics": self.batch_semantics,
                             "tensor_parallel": none(self.tensor_parallel),
                             "expert_parallel": none(self.expert_parallel),
                             "data_parallel": none(self.data_parallel),
                             "batch_size": np.asarray(batches, float)})

    @classmethod
    def of_benchmark(cls, row) -> "Deployment":
        """The deployment a benchmark configuration row describes (``ALA.configs_`` rows)."""
        count = lambda v: None if v is None or not np.isfinite(pd.to_numeric(v, errors="coerce")) else int(v)
        tokens = lambda v: None if v is None or not np.isfinite(pd.to_numeric(v, errors="coerce")) else float(v)
        return cls(row["model"], row["hardware"], int(row["num_gpus"]), row["framework"], row["precision"],
                   tokens(row.get("input_tokens")), tokens(row.get("output_tokens")), row.get("workload") or
                   "unspecified", str(row.get("batch_semantics") or ""), count(row.get("tensor_parallel")),
                   count(row.get("expert_parallel")), count(row.get("data_parallel")))


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


#: Assumed coefficient of variation of each latency across requests (TTFT, TPOT), or across
#: tokens (ITL), used to turn the model's means into percentiles: a lognormal with this
#: spread and the predicted mean. Not measured by ALA (the bundled data has means only);
#: plans with a percentile objective say so.
LATENCY_CV = {"ttft": 0.5, "itl": 0.6, "tpot": 0.15, "request_latency": 0.3}
#: Prefill is taken at this share of the accelerators' dense peak FLOPS (TTFT approximation).
PREFILL_FLOPS_SHARE = 0.5


def latency_factor(metric: str, quantile: float | None) -> float:
    """Percentile over mean of ``metric`` under the assumed lognormal spread (1 for the mean)."""
    if quantile is None:
        return 1.0
    from scipy.stats import norm

    sigma = math.sqrt(math.log1p(LATENCY_CV[metric] ** 2))
    return float(math.exp(-sigma ** 2 / 2 + sigma * norm.ppf(quantile)))


@dataclass(frozen=True)
class Objectives:
    """Latency objectives, each optional.

    ``quantile`` says which statistic they bound: ``None`` the mean, 0.9 the 90th
    percentile across requests (tokens for ITL). Percentiles are approximated from the
    predicted means (see ``LATENCY_CV``).
    """

    max_itl_ms: float | None = None
    max_request_latency_s: float | None = None
    max_ttft_ms: float | None = None
    max_tpot_ms: float | None = None
    quantile: float | None = None

    def __post_init__(self):
        for name in ("max_itl_ms", "max_request_latency_s", "max_ttft_ms", "max_tpot_ms"):
            value = getattr(self, name)
            if value is not None and not (np.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be positive, got {value}.")
        if self.quantile is not None and not 0 < self.quantile < 1:
            raise ValueError(f"quantile must lie strictly between 0 and 1, got {self.quantile}.")

    @property
    def statistic(self) -> str:
        return "mean" if self.quantile is None else f"p{100 * self.quantile:g}"


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
    evidence: dict | None = None
    approximations: list[str] = field(default_factory=list)
    memory: dict | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


#: The most accelerators one replica may span (the resource's schema says the same).
MAX_ACCELERATORS = 100_000

#: A benchmarked curve that falls by more than this beyond its best batch caps the batch there.
MEASURED_DROP = 0.05


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
           policy: Policy, price: float | None, price_source: str, prefill_s: float = 0.0,
           itl_scale: float = 1.0, max_batch_fit: int | None = None,
           measured_peak: tuple[int, str] | None = None) -> Plan:
    """Plan from a predicted curve (pure arithmetic; see module docstring).

    Notes
    -----
    Latencies are taken at the conservative throughput ``lower(bb)``: the mean inter-token
    latency (and time per output token) ``itl(bb) = bb / lower(bb)``, the time to first
    token ``ttft(bb) = prefill_s + itl(bb)`` and the request latency
    ``ttft(bb) + (oo - 1) itl(bb)``; a percentile objective multiplies the mean by
    :func:`latency_factor`. The batch is the smallest within ``PLATEAU`` of the best
    feasible ``lower(bb)``; replicas are ``ceil(D (1 + headroom) / thpt)`` with ``thpt`` =
    lower (target), upper (lower bound) and the lower end of the doubled-tail interval
    (upper bound). ``itl_scale`` corrects ``itl`` where measured inter-token latencies
    differ from ``batch / throughput`` (see :func:`measured_itl_scale`); ``max_batch_fit``
    is the most sequences the replica's KV cache holds (:mod:`ala.feasibility`);
    ``measured_peak`` is ``(batch, why)`` beyond which a benchmark of this configuration
    was measured to fall (the fitted curve family cannot fall, so the cap is explicit).
    """
    plan = Plan(outcome="ok", deployment=asdict(deployment), demand_tokens_per_s=demand)
    q = objectives.quantile
    itl_ms = itl_scale * 1000.0 * batches / lower
    ttft_ms = 1000.0 * prefill_s + itl_ms
    req_s = None if deployment.output_tokens is None else (
        ttft_ms + (deployment.output_tokens - 1) * itl_ms) / 1000.0
    checks = []  # (objective name, value at the statistic, limit, unit)
    if objectives.max_itl_ms is not None:
        checks.append(("max_itl_ms", itl_ms * latency_factor("itl", q), objectives.max_itl_ms, "inter-token latency"))
    if objectives.max_tpot_ms is not None:
        checks.append(("max_tpot_ms", itl_ms * latency_factor("tpot", q), objectives.max_tpot_ms,
                       "time per output token"))
    if objectives.max_ttft_ms is not None:
        if deployment.input_tokens is None:
            raise ValueError("a time-to-first-token objective needs input_tokens.")
        checks.append(("max_ttft_ms", ttft_ms * latency_factor("ttft", q), objectives.max_ttft_ms,
                       "time to first token"))
    if objectives.max_request_latency_s is not None:
        if req_s is None:
            raise ValueError("a request-latency objective needs output_tokens.")
        checks.append(("max_request_latency_s", req_s * latency_factor("request_latency", q),
                       objectives.max_request_latency_s, "request latency"))
    feasible = np.isfinite(lower) & (lower > 0)
    if max_batch_fit is not None:
        feasible &= batches <= max_batch_fit
    if measured_peak is not None:
        feasible &= batches <= max(measured_peak[0], batches[0])
    for _, value, limit, _ in checks:
        feasible &= value <= limit
    if not feasible.any():
        plan.outcome = "infeasible"
        missed = [f"{label} {value[0]:.4g} > {name}={limit:g}" for name, value, limit, label in checks
                  if value[0] > limit]
        if max_batch_fit is not None and batches[0] > max_batch_fit:
            missed.append(f"the KV cache holds {max_batch_fit} sequence(s)")
        plan.reasons.append(f"no batch size meets the objectives even at batch {int(batches[0])}: predicted "
                            f"{objectives.statistic} " + ("; ".join(missed) or "throughput is not positive") +
                            " at the conservative throughput")
        return plan
    best = np.max(np.where(feasible, lower, -np.inf))
    pick = int(np.flatnonzero(feasible & (lower >= (1 - PLATEAU) * best))[0])
    overall = int(np.argmax(np.where(np.isfinite(lower), lower, -np.inf)))
    bb = batches[pick]
    violated = [c for c in checks if c[1][overall] > c[2]]
    measured_binds = measured_peak is not None and batches[overall] > measured_peak[0] \
        and (max_batch_fit is None or measured_peak[0] <= max_batch_fit)
    if overall > pick and not feasible[overall] and not violated and measured_binds:
        plan.batch_limited_by = "measured_peak"
        plan.reasons.append(f"batch {int(bb)}: {measured_peak[1]}")
    elif overall > pick and not feasible[overall] and not violated:
        plan.batch_limited_by = "kv_cache"
        plan.reasons.append(f"batch {int(bb)}: the KV cache holds at most {max_batch_fit} sequences at these "
                            f"token lengths")
    elif overall > pick and not feasible[overall]:
        # The objective violated at the unconstrained best batch is the one that binds.
        name, value, limit, label = violated[0]
        plan.batch_limited_by = name
        plan.reasons.append(f"batch {int(bb)} is the best whose {objectives.statistic} {label} "
                            f"({value[pick]:.4g}) meets {name}={limit:g}")
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
                    "ttft_ms": float(ttft_ms[pick]) if deployment.input_tokens is not None else None,
                    "request_latency_s": None if req_s is None else float(req_s[pick]),
                    "statistic": "mean"}
    if q is not None:
        plan.latency["at_statistic"] = {"statistic": objectives.statistic, **{
            name: float(value[pick]) for name, value, _, _ in checks}}
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
        # Said as its own outcome: zero demand is news (traffic stopped, or the demand is
        # not measured where it arrives), not a sizing to pass over.
        plan.outcome = "no_demand"
        plan.reasons.append(f"no demand: replicas set to min_replicas={policy.min_replicas}")
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
         live: pd.DataFrame | None = None, predicted: pd.DataFrame | None = None) -> Plan:
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
    predicted : DataFrame, optional
        ``model.predict_interval`` of ``deployment.query(batch_grid(policy.max_batch))`` at
        ``policy.confidence_level`` with ``live``, made by the caller (who may reuse it while
        ``live`` has not changed); only without alternatives.

    Returns
    -------
    Plan
        ``outcome`` is ``ok``, ``no_demand`` (sized for zero demand: ``min_replicas``),
        ``infeasible`` (no batch meets the objectives) or ``insufficient_data`` (the model
        cannot bound throughput tightly enough).

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
    if predicted is not None:
        if alternatives or len(predicted) != grid.size:
            raise ValueError("predicted must be the deployment's batch grid, without alternatives.")
        out = predicted.reset_index(drop=True)
    else:
        query = pd.concat([c.query(grid) for c in candidates], ignore_index=True)
        out = model.predict_interval(query, confidence_level=policy.confidence_level, live=live)
    prefill = prefill_seconds(model.catalog_, candidates)
    itl_scale = measured_itl_scale(live)
    known = Evidence.of_model(model)
    n = grid.size
    plans = []
    for i, cand in enumerate(candidates):
        fit = memory_fit(model.catalog_, cand.model, cand.accelerator, cand.accelerators, cand.precision,
                         cand.input_tokens, cand.output_tokens)
        if fit is not None and not fit.fits:
            one = Plan(outcome="infeasible", deployment=asdict(cand), demand_tokens_per_s=tokens,
                       batch_limited_by="memory", reasons=[fit.reason(cand.accelerator, cand.accelerators)])
        else:
            part = out.iloc[i * n:(i + 1) * n]
            # A price the user gave is for their accelerator; others use the catalog's.
            same = cand.accelerator.lower() == deployment.accelerator.lower()
            price, source = _price(cand, policy.price_per_hour if same else None, model.catalog_)
            one = choose(grid, part["point"].to_numpy(), part["lower"].to_numpy(),
                         part["upper"].to_numpy(), part["confidence"].to_numpy(), cand, tokens,
                         objectives, policy, price, source, prefill_s=prefill[i],
                         itl_scale=itl_scale if i == 0 else 1.0, max_batch_fit=None if fit is None else fit.max_batch,
                         measured_peak=known.measured_peak(model, cand))
        if fit is not None:
            one.memory = {"weights_gb": fit.weights_gb, "usable_gb": fit.usable_gb,
                          "kv_gb_per_sequence": fit.kv_gb_per_sequence, "max_batch": fit.max_batch,
                          "min_accelerators": fit.min_accelerators, "tokens_assumed": fit.tokens_assumed}
        else:
            one.reasons.append("memory not checked: the catalog lacks this model's size or this accelerator's "
                               "memory")
        one.evidence = known.of(cand, one, live_points=int(out.iloc[i * n:(i + 1) * n]["k_live"].max()))
        plans.append(one)
    main = plans[0]
    main.approximations = _approximations(deployment, objectives)
    if itl_scale != 1.0:
        main.reasons.append(f"inter-token latency scaled by {itl_scale:.2f}: the measured ITL against batch / "
                            f"throughput at the measured batches (median)")
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
                              "price_source": p.cost["price_source"],
                              "basis": p.evidence["basis"]} for p in ranked[:top]]
    return main


def measured_itl_scale(live: pd.DataFrame | None) -> float:
    """Median of measured ITL over ``1000 batch / throughput`` across measurements that give
    an ``itl_ms`` (1 without any): real engines stall decode steps for prefills, so the
    latency a user sees can exceed what throughput alone implies."""
    if live is None or "itl_ms" not in live.columns:
        return 1.0
    rows = live.dropna(subset=["itl_ms"])
    rows = rows[(rows["itl_ms"] > 0) & (rows["throughput_tokens_per_s"] > 0)]
    if rows.empty:
        return 1.0
    derived = 1000.0 * rows["batch_size"].to_numpy(float) / rows["throughput_tokens_per_s"].to_numpy(float)
    return float(np.clip(np.median(rows["itl_ms"].to_numpy(float) / derived), 0.5, 4.0))


def prefill_seconds(catalog: Catalog, deployments: list[Deployment]) -> list[float]:
    """Approximate prefill time of one request's prompt on each deployment (0 without an
    input length, or for a model or accelerator the catalog lacks): the larger of its
    compute, ``2 P_active in / (PREFILL_FLOPS_SHARE x n x peak FLOPS)``, and one read of the
    weights, ``W / (n x bandwidth)``."""
    if not deployments or deployments[0].input_tokens is None:  # candidates share the lengths
        return [0.0] * len(deployments)
    from .catalog import _norm

    try:
        facts = catalog.model(deployments[0].model)
    except KeyError:
        return [0.0] * len(deployments)
    params = float(facts["params_b"]) * 1e9
    active = float(facts["active_params_b"]) * 1e9 if np.isfinite(facts["active_params_b"]) else params
    index = catalog._accelerator_index()  # built once: a lookup per candidate would scan the table
    out = []
    for d in deployments:
        i = index.get(_norm(d.accelerator))
        if i is None:
            out.append(0.0)
            continue
        acc = catalog.accelerators.loc[i]
        n = float(d.accelerators)
        compute = 2.0 * active * float(d.input_tokens) / (PREFILL_FLOPS_SHARE * n * acc["peak_bf16_dense_tflops"] * 1e12)
        weights = params * precision_bytes(d.precision) / (n * acc["memory_bandwidth_tbps"] * 1e12)
        out.append(float(max(compute, weights)))
    return out


def _approximations(deployment: Deployment, objectives: Objectives) -> list[str]:
    notes = []
    if deployment.input_tokens is not None:
        notes.append(f"time to first token is approximated as the prefill of one prompt at "
                     f"{PREFILL_FLOPS_SHARE:.0%} of peak dense FLOPS (or one read of the weights, if longer) "
                     f"plus one decode step; queueing for a free slot is not included. Against 120 single-request "
                     f"measurements of two outside sources (Splitwise, LMDeploy) the prefill term came out at a "
                     f"median 0.69 of the measured TTFT, 90% within a factor 3: read it as optimistic")
    if objectives.quantile is not None:
        used = [m for m, attr in (("itl", "max_itl_ms"), ("tpot", "max_tpot_ms"), ("ttft", "max_ttft_ms"),
                                  ("request_latency", "max_request_latency_s"))
                if getattr(objectives, attr) is not None]
        notes.append(f"{objectives.statistic} latencies are the predicted means times a lognormal factor with an "
                     f"assumed spread (coefficient of variation " +
                     ", ".join(f"{m} {LATENCY_CV[m]:g}" for m in used) + "); the bundled benchmarks give means "
                     "only, so this factor is not validated: measure percentiles with your benchmark tool "
                     "before relying on them")
    return notes


#: Below this confidence a plan says what to benchmark next.
LOW_CONFIDENCE = 0.5


class Evidence:
    """What the fitted model has seen, to tell a plan from benchmarks apart from a guess.

    ``benchmarked``: this model, accelerator, count, engine and precision were measured;
    ``related``: the accelerator and the model's family were measured, not together in
    this configuration; ``guess``: the accelerator or the model family was never measured,
    and the curve is transferred by specs alone.
    """

    @classmethod
    def of_model(cls, model) -> "Evidence":
        """The model's evidence, kept on it until its catalog changes (never pickled)."""
        found = model.__dict__.get("_evidence")
        if found is None or found[0] is not model.catalog_ or found[1] is not model.configs_:
            found = (model.catalog_, model.configs_, cls(model))
            model.__dict__["_evidence"] = found
        return found[2]

    def __init__(self, model):
        from .catalog import model_family
        from .features import _framework_key

        self.catalog = model.catalog_
        self._family, self._engine = model_family, _framework_key
        self._names: dict[tuple[str, str], str] = {}
        configs = model.configs_[["model", "hardware", "num_gpus", "framework", "precision"]].drop_duplicates()
        self.hardware = {self._accelerator(h) for h in configs["hardware"]}
        self.families = {model_family(self._model(m)) for m in configs["model"]}
        self.exact = {(self._model(m), self._accelerator(h), int(g), _framework_key(f), str(pr).lower())
                      for m, h, g, f, pr in configs.itertuples(index=False)}
        self.pairs = {(k[0], k[1]) for k in self.exact}
        self._peaks: dict | None = None  # measured curves that fall, built on first use
        self._peak_of: dict = {}  # Deployment -> its measured_peak answer

    def _canonical(self, kind: str, name: str) -> str:
        key = (kind, str(name))
        if key not in self._names:  # catalog lookups scan the table: once per distinct name
            try:
                row = self.catalog.accelerator(name) if kind == "accelerator" else self.catalog.model(name)
                self._names[key] = str(row["name" if kind == "accelerator" else "model"]).lower()
            except KeyError:
                self._names[key] = str(name).lower()
        return self._names[key]

    def _accelerator(self, name: str) -> str:
        return self._canonical("accelerator", name)

    def _model(self, name: str) -> str:
        return self._canonical("model", name)

    def measured_peak(self, model, d: Deployment) -> tuple[int, str] | None:
        """The batch beyond which a benchmarked curve of this very configuration
        (``ALA.measured_ids``) was measured to fall by more than ``MEASURED_DROP``
        (KV-cache overflow, preemption), with the reason; None when none of them falls."""
        if self._peaks is None:
            self._peaks = {}
            for cid, g in model.points_.groupby("config_id"):
                g = g.sort_values("batch_size")
                b, thpt = g["batch_size"].to_numpy(float), g["throughput"].to_numpy(float)
                top = int(np.argmax(thpt))
                later = thpt[top + 1:]
                if later.size and later.min() < (1 - MEASURED_DROP) * thpt[top]:
                    j = top + 1 + int(np.argmin(later))
                    self._peaks[cid] = (int(b[top]), float(thpt[top]), int(b[j]), float(thpt[j]))
        if not self._peaks:
            return None
        if d in self._peak_of:  # the same deployments are planned again at every refit
            return self._peak_of[d]
        self._peak_of[d] = None
        found = [(self._peaks[c], c) for c in model.measured_ids(model._canonical(d.query([1.0]))) if c in self._peaks]
        if not found:
            return None
        (b, top, b2, low), cid = min(found, key=lambda f: f[0][0])
        source = model.configs_.loc[cid, "source"]
        self._peak_of[d] = b, (f"the measured curve of this configuration ({source}) falls beyond batch {b}: "
                               f"{top:,.0f} tokens/s at batch {b}, {low:,.0f} at batch {b2}")
        return self._peak_of[d]

    def of(self, d: Deployment, plan: Plan, live_points: int = 0) -> dict:
        m, h = self._model(d.model), self._accelerator(d.accelerator)
        key = (m, h, int(d.accelerators), self._engine(d.engine), str(d.precision).lower())
        family = self._family(m)
        if key in self.exact:
            basis, why = "benchmarked", "this configuration was benchmarked"
        elif h not in self.hardware:
            basis, why = "guess", f"no benchmark of {d.accelerator} in the data: transferred from other accelerators " \
                                  f"by their specs"
        elif family not in self.families:
            basis, why = "guess", f"no benchmark of the {family} family in the data: transferred from other models " \
                                  f"by size and shape"
        elif (m, h) in self.pairs:
            basis, why = "related", f"{d.model} was benchmarked on {d.accelerator}, not with this count, engine " \
                                    f"or precision"
        else:
            basis, why = "related", f"{d.accelerator} and the {family} family were benchmarked, not this model on it"
        if live_points:
            why += f"; {live_points} measurement(s) of it given"
        try:
            facts = self.catalog.resolve_model(d.model)[1]
        except KeyError:
            facts = "the query rows (not in the catalog)"
        if facts.startswith("size"):
            basis, why = "guess", f"{why}; model size read from its name only"
        out = {"basis": basis, "why": why, "confidence": plan.confidence, "benchmark_next": None,
               "model_facts": facts}
        runs = plan.batch_limited_by != "memory"  # a deployment that cannot run cannot be benchmarked
        if runs and live_points == 0 and (basis != "benchmarked" or plan.confidence is None
                                          or plan.confidence < LOW_CONFIDENCE):
            out["benchmark_next"] = _benchmark_next(d, plan)
        return out


def _benchmark_next(d: Deployment, plan: Plan) -> dict:
    """Which measurements would narrow this plan most: the configuration itself at a few
    concurrencies around the chosen batch (the curve's rise, its knee and the plateau)."""
    chosen = plan.batch_size or 32
    levels = sorted({1, max(2, chosen // 4), chosen, min(2 * chosen, 1024)})
    tokens = (f" --random-input-len {int(d.input_tokens)}" if d.input_tokens else "") + (
        f" --random-output-len {int(d.output_tokens)}" if d.output_tokens else "")
    return {"configuration": f"{d.model} on {d.accelerators}x {d.accelerator} ({d.engine}, {d.precision})",
            "batch_sizes": levels,
            "how": f"for N in {' '.join(map(str, levels))}: vllm bench serve --model {d.model} --dataset-name random"
                   f"{tokens} --max-concurrency $N --num-prompts $((N*20)) --percentile-metrics ttft,tpot,itl,e2el "
                   f"--save-result; then ala import *.json --accelerator {d.accelerator} --accelerators "
                   f"{d.accelerators} --out mine.csv and ala fit --data mine.csv --out mine.ala"}


def _alternatives(catalog: Catalog, deployment: Deployment) -> list[Deployment]:
    """Catalog accelerators and counts whose memory holds the model's weights and at least
    one sequence's KV cache."""
    out = []
    seen = set()
    for _, acc in catalog.accelerators.iterrows():
        if acc["name"] in seen or not np.isfinite(acc["memory_gb"]):
            continue
        seen.add(acc["name"])
        for count in ALTERNATIVE_COUNTS:
            same = acc["name"].lower() == deployment.accelerator.lower() and count == deployment.accelerators
            fit = memory_fit(catalog, deployment.model, acc["name"], count, deployment.precision,
                             deployment.input_tokens, deployment.output_tokens)
            if not same and fit is not None and fit.fits:
                out.append(Deployment(deployment.model, acc["name"], count, deployment.engine,
                                      deployment.precision, deployment.input_tokens,
                                      deployment.output_tokens, deployment.workload))
    return out
