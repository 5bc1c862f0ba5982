"""Importers: result files of common serving benchmarks into the benchmark schema.

Each result file gives one point of a curve (a concurrency level); the deployment it ran
on (accelerator, count, precision) is not in the files and comes from the caller.
Formats checked (see docs/importers.md): vLLM's serving benchmark (``--save-result``),
GuideLLM ``benchmarks.json``, inference-perf ``stage_*_lifecycle_metrics.json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from .benchmarks import BenchmarkError, validate_table


@dataclass(frozen=True)
class Context:
    """What the result files do not say: the deployment they measured."""

    hardware: str
    num_gpus: int = 1
    precision: str = "bfloat16"
    framework: str | None = None
    model: str | None = None
    workload: str = "unspecified"


def _number(where: str, value: Any, field: str, *, positive: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BenchmarkError(where, f"{value!r} is not a number", column=field)
    value = float(value)
    if not np.isfinite(value) or (positive and value <= 0):
        raise BenchmarkError(where, f"{value!r} must be a finite positive number", column=field)
    return value


def _get(where: str, data: Any, path: str, *, required: bool = True) -> Any:
    node = data
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node or node[key] is None:
            if required:
                raise BenchmarkError(where, "field is missing", column=path)
            return None
        node = node[key]
    return node


def _row(ctx: Context, where: str, *, model: str | None, framework: str, batch: float, semantics: str,
         throughput: float, input_tokens: float | None, output_tokens: float | None,
         itl_ms: float | None = None, ttft_ms: float | None = None, e2e_s: float | None = None) -> dict:
    name = ctx.model or model
    if not name:
        raise BenchmarkError(where, "the file names no model; pass --model", column="model")
    return {"source": "import", "model": name, "hardware": ctx.hardware,
            "num_gpus": ctx.num_gpus, "framework": ctx.framework or framework, "precision": ctx.precision,
            "workload": ctx.workload, "input_tokens": input_tokens, "output_tokens": output_tokens,
            "batch_size": batch, "batch_semantics": semantics, "throughput_tokens_per_s": throughput,
            "itl_ms": itl_ms, "ttft_ms": ttft_ms, "e2e_latency_s": e2e_s}


def _little(where: str, rate: float | None, latency_s: float | None, field: str) -> float:
    # Little's law: mean requests in the system = arrival rate x time in the system.
    if rate is None or latency_s is None:
        raise BenchmarkError(where, "no concurrency and no request rate with latency to derive it", column=field)
    return _number(where, rate, field) * _number(where, latency_s, field)


def read_vllm(data: dict, where: str, ctx: Context) -> list[dict]:
    """vLLM ``benchmark_serving.py --save-result`` / ``vllm bench serve`` JSON.

    ``mean_e2el_ms`` is there only when ``--percentile-metrics`` named ``e2el``; without
    it the mean request latency is derived as ``TTFT + TPOT x (output tokens - 1)`` (the
    definition of TPOT), and the batch semantics say so.
    """
    completed = _number(where, _get(where, data, "completed"), "completed")
    throughput = _number(where, _get(where, data, "output_throughput"), "output_throughput")
    concurrency = _get(where, data, "max_concurrency", required=False)
    output_tokens = _number(where, _get(where, data, "total_output_tokens"), "total_output_tokens") / completed
    opt = lambda key: (None if _get(where, data, key, required=False) is None
                       else _number(where, data[key], key, positive=False))
    e2e_ms, derived = opt("mean_e2el_ms"), False
    if e2e_ms is None and opt("mean_ttft_ms") is not None and opt("mean_tpot_ms") is not None:
        e2e_ms, derived = opt("mean_ttft_ms") + opt("mean_tpot_ms") * max(output_tokens - 1, 0), True
    if concurrency is not None:
        batch, semantics = _number(where, concurrency, "max_concurrency"), "client max_concurrency"
    else:
        if e2e_ms is None:
            raise BenchmarkError(where, "a rate-driven run (max_concurrency null) needs the request latency to "
                                        "derive concurrency: rerun with --percentile-metrics ttft,tpot,itl,e2el "
                                        "or --max-concurrency N", column="mean_e2el_ms")
        batch = _little(where, _get(where, data, "request_throughput", required=False), e2e_ms / 1000,
                        "max_concurrency")
        semantics = "mean concurrency by Little's law (request rate x latency" + (
            ", latency derived as TTFT + TPOT x (output tokens - 1))" if derived else ")")
    return [_row(ctx, where, model=_get(where, data, "model_id", required=False), framework="vLLM",
                 batch=batch, semantics=semantics, throughput=throughput,
                 input_tokens=_number(where, _get(where, data, "total_input_tokens"), "total_input_tokens") / completed,
                 output_tokens=output_tokens,
                 itl_ms=opt("mean_itl_ms") if opt("mean_itl_ms") is not None else opt("mean_tpot_ms"),
                 ttft_ms=opt("mean_ttft_ms"), e2e_s=None if e2e_ms is None else e2e_ms / 1000)]


def read_guidellm(data: dict, where: str, ctx: Context) -> list[dict]:
    """GuideLLM ``benchmarks.json`` (one row per benchmark of a sweep).

    GuideLLM 0.3 keeps the strategy under ``config.strategy`` (earlier: ``args.strategy``)
    and the model under ``args.model`` or ``worker.backend_model``; 0.4 and later keep
    the same metric names and add ``config.backend``. YAML output is not read: rerun with
    ``--outputs json``.
    """
    benchmarks = _get(where, data, "benchmarks")
    if not isinstance(benchmarks, list) or not benchmarks:
        raise BenchmarkError(where, "expected a non-empty list of benchmarks (did the run finish?)",
                             column="benchmarks")
    rows = []
    for i, bench in enumerate(benchmarks):
        at = f"{where} benchmarks[{i}]"
        if not isinstance(bench, dict):
            raise BenchmarkError(at, "expected an object", column="benchmarks")
        mean = lambda name, required=True: _get(at, bench, f"metrics.{name}.successful.mean", required=required)
        strategy = (_get(at, bench, "config.strategy", required=False)
                    or _get(at, bench, "args.strategy", required=False) or {})
        streams = strategy.get("streams") if isinstance(strategy, dict) else None
        if isinstance(strategy, dict) and strategy.get("type_") == "concurrent" and streams:
            batch, semantics = _number(at, streams, "config.strategy.streams"), "client concurrent streams"
        else:
            batch = _number(at, mean("request_concurrency"), "metrics.request_concurrency.successful.mean")
            semantics = "measured mean request concurrency"
        model = (_get(at, bench, "config.requests.model", required=False)
                 or _get(at, bench, "config.backend.model", required=False)
                 or _get(where, data, "args.model", required=False)
                 or _get(at, bench, "worker.backend_model", required=False))
        latency = mean("request_latency", False)
        itl = mean("inter_token_latency_ms", False)
        rows.append(_row(ctx, where, model=model, framework="vLLM", batch=batch, semantics=semantics,
                         throughput=_number(at, mean("output_tokens_per_second"),
                                            "metrics.output_tokens_per_second.successful.mean"),
                         input_tokens=_number(at, mean("prompt_token_count"),
                                              "metrics.prompt_token_count.successful.mean"),
                         output_tokens=_number(at, mean("output_token_count"),
                                               "metrics.output_token_count.successful.mean"),
                         itl_ms=itl if itl is not None else mean("time_per_output_token_ms", False),
                         ttft_ms=mean("time_to_first_token_ms", False), e2e_s=latency))
    return rows


def read_inference_perf(data: dict, where: str, ctx: Context) -> list[dict]:
    """inference-perf ``stage_*_lifecycle_metrics.json`` (one stage, one row).

    Token lengths: ``successes.prompt_tokens`` / ``successes.output_tokens`` (current
    reports: server-counted where the server said) or ``prompt_len`` / ``output_len``
    (0.2 reports). Latencies are in seconds.
    """
    load = _get(where, data, "load_summary")
    successes = _get(where, data, "successes")
    if not isinstance(successes, dict) or not successes.get("count"):
        raise BenchmarkError(where, "no successful requests in this stage; check the server and the stage's "
                                    "failures", column="successes.count")
    concurrency = load.get("concurrency") if isinstance(load, dict) else None
    latency = _get(where, successes, "latency.request_latency.mean", required=False)
    if concurrency:
        batch, semantics = _number(where, concurrency, "load_summary.concurrency"), "client concurrency"
    else:
        rate = (_get(where, successes, "throughput.requests_per_sec", required=False)
                or (load.get("achieved_rate") if isinstance(load, dict) else None))
        batch = _little(where, rate, latency, "load_summary.concurrency")
        semantics = "mean concurrency by Little's law (request rate x latency)"

    def length(names: tuple[str, ...]) -> float:
        for name in names:
            value = _get(where, successes, f"{name}.mean", required=False)
            if value is not None:
                return _number(where, value, f"successes.{name}.mean")
        raise BenchmarkError(where, "field is missing (newer reports: successes." + names[0] +
                             ".mean; 0.2 reports: successes." + names[-1] + ".mean)",
                             column=f"successes.{names[-1]}.mean")

    seconds_to_ms = lambda v: None if v is None else 1000 * float(v)
    itl = _get(where, successes, "latency.inter_token_latency.mean", required=False)
    if itl is None:
        itl = _get(where, successes, "latency.time_per_output_token.mean", required=False)
    return [_row(ctx, where, model=None, framework="vLLM", batch=batch, semantics=semantics,
                 throughput=_number(where, _get(where, data, "successes.throughput.output_tokens_per_sec"),
                                    "successes.throughput.output_tokens_per_sec"),
                 input_tokens=length(("prompt_tokens", "prompt_len")),
                 output_tokens=length(("output_tokens", "output_len")),
                 itl_ms=seconds_to_ms(itl),
                 ttft_ms=seconds_to_ms(_get(where, successes, "latency.time_to_first_token.mean", required=False)),
                 e2e_s=latency)]


READERS: dict[str, Callable[[dict, str, Context], list[dict]]] = {
    "vllm": read_vllm, "guidellm": read_guidellm, "inference-perf": read_inference_perf}


def detect_format(data: Any) -> str | None:
    """Which benchmark tool wrote a parsed JSON document, or None."""
    if not isinstance(data, dict):
        return None
    if "benchmarks" in data:
        return "guidellm"
    if "load_summary" in data and "successes" in data:
        return "inference-perf"
    if "output_throughput" in data and "completed" in data:
        return "vllm"
    return None


def import_results(paths: list[str | Path], ctx: Context, fmt: str = "auto") -> pd.DataFrame:
    """Read result files into one validated table in the benchmark schema.

    Raises ``BenchmarkError`` naming the file and field of the first problem.
    """
    if fmt != "auto" and fmt not in READERS:
        raise BenchmarkError("import", f"unknown format {fmt!r}; known: auto, {', '.join(READERS)}")
    rows: list[dict] = []
    for path in map(Path, paths):
        where = str(path)
        if not path.exists():
            raise BenchmarkError(where, "no such file")
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise BenchmarkError(where, f"not valid JSON ({exc})") from None
        kind = detect_format(data) if fmt == "auto" else fmt
        if kind is None:
            raise BenchmarkError(where, "not a result file of vLLM's serving benchmark, GuideLLM or "
                                        "inference-perf (pass --format to say which)")
        rows += READERS[kind](data, where, ctx)
    return validate_table(pd.DataFrame(rows), "import")
