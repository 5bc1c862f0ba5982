"""Exposition text as each engine writes it: its metric names, types and own label sets
(read in the engines' source; see ``engines``), for the simulated fleet's ``/metrics`` and
for the live-point benchmark's backfilled Prometheus.

The engines' own labels are written here; the labels a ServiceMonitor or PodMonitor adds
(``namespace``, ``pod``, ``service``, ...) come in as ``target_labels``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class EngineState:
    """One engine process of a pod (one data-parallel rank): gauges and counters so far.

    ``decoded`` counts tokens as they are generated; ``finished_tokens`` counts a request's
    tokens when it finishes (what TGI, TensorRT-LLM and SGLang's ``generation_tokens_total``
    count); ``latency_sum`` / ``finished`` the finished requests' end-to-end seconds.
    """

    running: float = 0.0
    waiting: float = 0.0
    decoded: float = 0.0
    finished_tokens: float = 0.0
    prompt_tokens: float = 0.0
    arrived: float = 0.0
    finished: float = 0.0
    latency_sum: float = 0.0
    #: Tokens/s being decoded now (not exported: a simulator's counters move between its ticks).
    rate: float = 0.0


Sample = tuple[str, str, dict, float]  # name, type, labels, value
#: A request batch in flight: (due time, rank, tokens, requests, latency in seconds).
InFlight = tuple[float, int, float, float, float]


def finish_due(ranks: list[EngineState], in_flight: list[InFlight], now: float) -> list[InFlight]:
    """Requests due by ``now`` reach their engines' completion counters (tokens, requests,
    latency); the ones still in flight are returned."""
    for due, i, made, requests, latency in in_flight:
        if due <= now:
            rank = ranks[i]
            rank.finished_tokens += made
            rank.finished += requests
            rank.latency_sum += requests * latency
    return [f for f in in_flight if f[0] > now]


def engine_samples(engine: str, ranks: list[EngineState], target_labels: dict, model: str = "model",
                   tensor_parallel: int = 1, all_schedulers: bool = False, sglang_realtime: bool = True
                   ) -> list[Sample]:
    """The samples one pod exports: ``ranks`` are its data-parallel engines.

    vLLM v1 writes one series per engine (label ``engine``); SGLang one per scheduler
    (``tp_rank``, ``dp_rank``; only rank 0 of each tensor-parallel group unless
    ``all_schedulers``, which repeats them on every rank) and its tokenizer's request
    counters once per pod; TGI and TensorRT-LLM have no data parallelism here (one rank).
    """
    out: list[Sample] = []

    def add(name: str, kind: str, labels: dict, value: float) -> None:
        out.append((name, kind, {**target_labels, **labels}, value))

    total = EngineState(**{k: sum(getattr(r, k) for r in ranks) for k in EngineState.__dataclass_fields__})

    if engine == "vllm":
        for i, r in enumerate(ranks):
            own = {"model_name": model, "engine": str(i)}
            add("vllm:num_requests_running", "gauge", own, r.running)
            add("vllm:num_requests_waiting", "gauge", own, r.waiting)
            add("vllm:generation_tokens_total", "counter", own, r.decoded)
            add("vllm:prompt_tokens_total", "counter", own, r.prompt_tokens)
            add("vllm:request_success_total", "counter", {**own, "finished_reason": "stop"}, r.finished)
            _histogram(add, "vllm:e2e_request_latency_seconds", own, r.latency_sum, r.finished)
            _histogram(add, "vllm:request_generation_tokens", own, r.finished_tokens, r.finished)
            _histogram(add, "vllm:request_prompt_tokens", own, r.prompt_tokens, r.finished)
    elif engine == "sglang":
        for d, r in enumerate(ranks):
            for t in range(tensor_parallel if all_schedulers else 1):
                own = {"model_name": model, "engine_type": "unified", "tp_rank": str(d * tensor_parallel + t),
                       "pp_rank": "0"}
                if len(ranks) > 1:
                    own["dp_rank"] = str(d)
                add("sglang:num_running_reqs", "gauge", own, r.running)
                add("sglang:num_queue_reqs", "gauge", own, r.waiting)
                if sglang_realtime:
                    add("sglang:realtime_tokens_total", "counter", {**own, "mode": "decode"}, r.decoded)
        own = {"model_name": model, "engine_type": "unified"}
        add("sglang:generation_tokens_total", "counter", own, total.finished_tokens)
        add("sglang:prompt_tokens_total", "counter", own, total.prompt_tokens)
        add("sglang:num_requests_total", "counter", own, total.finished)
        _histogram(add, "sglang:e2e_request_latency_seconds", own, total.latency_sum, total.finished)
    elif engine == "tgi":
        r = total
        add("tgi_batch_current_size", "gauge", {}, r.running)
        add("tgi_queue_size", "gauge", {}, r.waiting)
        add("tgi_request_count", "counter", {}, r.arrived)
        add("tgi_request_success", "counter", {}, r.finished)
        _histogram(add, "tgi_request_generated_tokens", {}, r.finished_tokens, r.finished)
        _histogram(add, "tgi_request_input_length", {}, r.prompt_tokens, r.finished)
        _histogram(add, "tgi_request_duration", {}, r.latency_sum, r.finished)
    elif engine == "tensorrt-llm":
        r = total
        own = {"model_name": model, "engine_type": "trtllm"}
        add("trtllm_num_requests_running", "gauge", own, r.running)
        add("trtllm_num_requests_waiting", "gauge", own, r.waiting)
        add("trtllm_generation_tokens_total", "counter", own, r.finished_tokens)
        add("trtllm_prompt_tokens_total", "counter", own, r.prompt_tokens)
        add("trtllm_request_success_total", "counter", {**own, "finished_reason": "stop"}, r.finished)
        _histogram(add, "trtllm_e2e_request_latency_seconds", own, r.latency_sum, r.finished)
    else:
        raise ValueError(f"no exposition for engine {engine!r}")
    return out


def _histogram(add, name: str, labels: dict, total: float, count: float) -> None:
    """A histogram's ``_sum``, ``_count`` and its ``+Inf`` bucket (the one every histogram has)."""
    add(name + "_sum", "histogram", labels, total)
    add(name + "_count", "histogram", labels, count)
    add(name + "_bucket", "histogram", {**labels, "le": "+Inf"}, count)


def _labels(labels: dict) -> str:
    return ",".join(f'{k}="{v}"' for k, v in labels.items())


def text(samples: list[Sample]) -> str:
    """Prometheus text format 0.0.4 (what a scrape of ``/metrics`` returns)."""
    families: dict[str, list[str]] = {}
    for name, kind, labels, value in samples:
        family = name
        if kind == "histogram":
            family = name.rsplit("_", 1)[0] if not name.endswith("_bucket") else name[:-len("_bucket")]
        lines = families.setdefault(family, [f"# TYPE {family} {kind}"])
        lines.append(f"{name}{{{_labels(labels)}}} {value:.6f}")
    return "\n".join(line for lines in families.values() for line in lines) + "\n"


def openmetrics_lines(samples: list[Sample], at: float) -> list[str]:
    """Timestamped sample lines for ``promtool tsdb create-blocks-from openmetrics``
    (untyped, so counters without ``_total`` stay as the engine spells them)."""
    return [f"{name}{{{_labels(labels)}}} {value:.6f} {at:.3f}" for name, _, labels, value in samples]
