"""The metrics each serving engine exports, named once: the operator's query presets and
the development stack's simulated fleet both read them from here.

Names are as the engines' own exporters spell them (read from their source): vLLM
``vllm:generation_tokens_total``, SGLang ``sglang:num_running_reqs``, TGI
``tgi_batch_current_size``. Under OpenMetrics escaping a scrape may show
``vllm_generation_tokens_total`` instead, so the presets match both spellings.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EngineMetrics:
    """One engine's exported series (None: the engine does not export it).

    ``generated`` counts generated tokens; ``running`` is the running batch; ``requests``
    counts finished requests; ``prompt_counter`` counts prompt tokens; the histograms have
    ``_sum`` and ``_count`` series per request (prompt and generated tokens).
    """

    running: str
    requests: str
    generated: str | None = None
    prompt_counter: str | None = None
    prompt_histogram: str | None = None
    generated_histogram: str | None = None


ENGINES: dict[str, EngineMetrics] = {
    "vllm": EngineMetrics(running="vllm:num_requests_running", requests="vllm:request_success_total",
                          generated="vllm:generation_tokens_total",
                          prompt_histogram="vllm:request_prompt_tokens",
                          generated_histogram="vllm:request_generation_tokens"),
    "sglang": EngineMetrics(running="sglang:num_running_reqs", requests="sglang:num_requests_total",
                            generated="sglang:generation_tokens_total", prompt_counter="sglang:prompt_tokens_total"),
    "tgi": EngineMetrics(running="tgi_batch_current_size", requests="tgi_request_success",
                         prompt_histogram="tgi_request_input_length",
                         generated_histogram="tgi_request_generated_tokens"),
}
# TensorRT-LLM is served here through an OpenAI-compatible vLLM-style exporter.
ENGINES["tensorrt-llm"] = ENGINES["vllm"]


def name_pattern(name: str, *, counter: bool = False, suffix: str = "") -> str:
    """A ``__name__`` regex matching ``name`` (plus ``suffix``) in both spellings:
    ``vllm:x`` also as ``vllm_x``; a counter with or without ``_total``."""
    engine, _, rest = name.replace(":", "_", 1).partition("_")
    if rest.endswith("_total"):
        rest = rest[:-len("_total")]
    return f"{engine}[:_]{rest}{suffix}" + ("(_total)?" if counter else "")
