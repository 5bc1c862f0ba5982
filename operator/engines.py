"""The metrics each serving engine exports, named once: the operator's queries, the live
points' pairing rules, the simulated fleet and the live-point benchmark all read them here.

Names, types and labels are as the engines' own exporters write them (read in their source,
December 2026):

- **vLLM** (v0 and v1): ``vllm:num_requests_running`` / ``vllm:num_requests_waiting``
  gauges, ``vllm:generation_tokens_total`` counted every engine step,
  ``vllm:request_success_total``, the ``vllm:e2e_request_latency_seconds`` histogram;
  labels ``model_name`` and, in v1, ``engine`` (one per data-parallel engine in a pod).
- **SGLang**: ``sglang:num_running_reqs`` / ``sglang:num_queue_reqs`` gauges per scheduler
  (labels ``tp_rank``, ``dp_rank``, ``pp_rank``; every tensor-parallel rank repeats them
  under ``--enable-metrics-for-all-schedulers``), ``sglang:generation_tokens_total`` counted
  when a request finishes, ``sglang:realtime_tokens_total{mode="decode"}`` counted as the
  scheduler decodes.
- **TGI**: ``tgi_batch_current_size`` / ``tgi_queue_size`` gauges, counters without
  ``_total`` (``tgi_request_count`` arrivals, ``tgi_request_success``), generated tokens only
  as the ``tgi_request_generated_tokens`` histogram, observed when a request finishes;
  ``tgi_request_duration`` histogram.
- **TensorRT-LLM** (``trtllm-serve``, on ``/prometheus/metrics``): ``trtllm_num_requests_running``
  / ``trtllm_num_requests_waiting`` gauges, ``trtllm_generation_tokens_total`` and
  ``trtllm_request_success_total`` counted per finished request,
  ``trtllm_e2e_request_latency_seconds``. Dynamo re-exports them as ``trtllm:...``.

Under OpenMetrics escaping a scrape may show ``vllm_generation_tokens_total`` instead of
``vllm:...``, so every pattern matches both spellings.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EngineMetrics:
    """One engine's exported series (None: the engine does not export it).

    ``running`` / ``waiting``: requests in the batch and in the queue (gauges).
    ``generated``: a counter of generated tokens; ``generated_on_completion`` says the engine
    adds a request's tokens when it finishes rather than as it decodes (the counter then lags
    the batch by a request's duration). ``generated_match``: extra label matchers on it.
    ``requests``: finished requests; ``arrivals``: requests received (None: not exported).
    ``latency``: the end-to-end request latency histogram (``_sum``/``_count``).
    ``split_labels``: labels that split one pod into engines whose batches add up (data
    parallelism); ``copy_labels``: labels under which ranks repeat the same numbers.
    """

    running: str
    waiting: str
    generated: str
    requests: str
    latency: str
    generated_on_completion: bool = False
    generated_match: str = ""
    arrivals: str | None = None
    prompt_counter: str | None = None
    prompt_histogram: str | None = None
    generated_histogram: str | None = None
    split_labels: tuple[str, ...] = ()
    copy_labels: tuple[str, ...] = ()
    metrics_path: str = "/metrics"


ENGINES: dict[str, EngineMetrics] = {
    "vllm": EngineMetrics(
        running="vllm:num_requests_running", waiting="vllm:num_requests_waiting",
        generated="vllm:generation_tokens_total", requests="vllm:request_success_total",
        latency="vllm:e2e_request_latency_seconds", prompt_counter="vllm:prompt_tokens_total",
        prompt_histogram="vllm:request_prompt_tokens", generated_histogram="vllm:request_generation_tokens",
        split_labels=("engine",)),
    "sglang": EngineMetrics(
        running="sglang:num_running_reqs", waiting="sglang:num_queue_reqs",
        generated="sglang:realtime_tokens_total", generated_match='mode="decode"',
        requests="sglang:num_requests_total", latency="sglang:e2e_request_latency_seconds",
        prompt_counter="sglang:prompt_tokens_total", split_labels=("dp_rank",),
        copy_labels=("tp_rank", "pp_rank", "moe_ep_rank")),
    "tgi": EngineMetrics(
        running="tgi_batch_current_size", waiting="tgi_queue_size",
        generated="tgi_request_generated_tokens_sum", generated_on_completion=True,
        requests="tgi_request_success", arrivals="tgi_request_count", latency="tgi_request_duration",
        prompt_histogram="tgi_request_input_length", generated_histogram="tgi_request_generated_tokens"),
    "tensorrt-llm": EngineMetrics(
        running="trtllm_num_requests_running", waiting="trtllm_num_requests_waiting",
        generated="trtllm_generation_tokens_total", generated_on_completion=True,
        requests="trtllm_request_success_total", latency="trtllm_e2e_request_latency_seconds",
        prompt_counter="trtllm_prompt_tokens_total", metrics_path="/prometheus/metrics"),
}

#: SGLang's counter of finished requests' tokens: what an SGLang older than
#: ``realtime_tokens_total`` has (the simulated fleet can export either).
SGLANG_COMPLETION_TOKENS = "sglang:generation_tokens_total"


def name_pattern(name: str, *, counter: bool = False, suffix: str = "") -> str:
    """A ``__name__`` regex matching ``name`` (plus ``suffix``) in both spellings:
    ``vllm:x`` also as ``vllm_x``; a counter with or without ``_total``."""
    engine, _, rest = name.replace(":", "_", 1).partition("_")
    if rest.endswith("_total"):
        rest = rest[:-len("_total")]
    return f"{engine}[:_]{rest}{suffix}" + ("(_total)?" if counter else "")
