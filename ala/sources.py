"""Held-out sources: public measurements the shipped model never trains on.

``data/heldout/more_sources_throughput_vs_batch.csv`` (Splitwise profiling, dstack
benchmarks, LMDeploy tables, Argonne's precision and parallelism figures; origin, licences
and caveats in the README beside it) is kept in its own schema, as its curators wrote it,
and converted here into the benchmark schema. The evaluation holds each of its sources out
whole (task S); nothing in the method was designed on it.

Names stay as the sources spell them (``llama2-70b``, ``NVIDIA H200-SXM5-141GB``): the
product resolves them as it resolves a user's names, so a refusal shows up as one.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from .benchmarks import BenchmarkError, configuration_key, validate_table

HELD_OUT_FILE = "more_sources_throughput_vs_batch.csv"
#: The source's columns this conversion reads.
RAW_COLUMNS = ("source", "model", "hardware", "num_gpus", "framework", "precision", "input_tokens",
               "output_tokens", "batch_size", "throughput_tokens_per_s", "e2e_latency_s", "itl_ms",
               "ttft_ms", "load_kind", "notes")
#: What each ``load_kind`` makes of the batch (the product's ``batch_semantics``).
BATCH_SEMANTICS = {
    "static_batch": "static batch of B prompts run together",
    "offline_all_prompts_at_once": "offline: B prompts handed to the engine at once (it may cap the running batch)",
    "online_max_concurrency": "client max concurrency B (bench_serving --max-concurrency)",
    "online_all_prompts_at_once": "B requests sent at once (request rate inf)",
}
#: Engines by the words their descriptions start with (the rest of the text is the variant).
ENGINES = (("vllm", "vLLM"), ("sglang", "SGLang"), ("tensorrt-llm", "TensorRT-LLM"), ("tgi", "TGI"),
           ("lmdeploy", "LMDeploy"))


def held_out_path() -> Path:
    return Path(str(resources.files("ala") / "data" / "heldout" / HELD_OUT_FILE))


def load_held_out(path: str | Path | None = None) -> pd.DataFrame:
    """The held-out sources as a validated benchmark table (see :func:`convert`)."""
    path = Path(path) if path is not None else held_out_path()
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise BenchmarkError(str(path), f"cannot read the file: {exc}") from None
    return convert(raw, str(path))


def weight_precision(text: str) -> str:
    """The weight precision a source's precision description names (``Weight = int8_sq, KV
    Cache = fp8`` is int8; ``model default (MXFP4 MoE weights)`` is mxfp4)."""
    t = text.lower()
    weights = re.search(r"weight\s*=\s*([a-z0-9_]+)", t)
    word = weights.group(1) if weights else t
    for key, name in (("mxfp4", "mxfp4"), ("fp4", "fp4"), ("int4", "int4"), ("int8", "int8"),
                      ("fp8", "fp8"), ("bf16", "bfloat16"), ("fp16", "16bit"), ("full_prec", "16bit")):
        if key in word:
            return name
    raise ValueError(f"no weight precision in {text!r}")


def engine(text: str) -> tuple[str, str]:
    """(engine, what else the description says): ``SGLang PD-disaggregated 1P3D (...)`` is
    SGLang with variant ``PD-disaggregated 1P3D (...)``; an unnamed engine is ``unspecified``."""
    t = text.strip()
    for key, name in ENGINES:
        if t.lower().replace(" ", "-").startswith(key):
            return name, t[len(key):].strip(" -")
    return "unspecified", t


def convert(raw: pd.DataFrame, where: str = "held-out table") -> pd.DataFrame:
    """Rows of the held-out file in the benchmark schema.

    Dropped, and why: the power-capped H100 of splitwise-sim (its decode numbers are
    byte-identical to the uncapped H100's, so they are not measurements of their own).
    """
    missing = [c for c in RAW_COLUMNS if c not in raw.columns]
    if missing:
        raise BenchmarkError(where, f"missing column(s) {', '.join(missing)}")
    raw = raw.reset_index(drop=True)
    keep = ~raw["hardware"].str.contains("power-capped", case=False)
    rows = []
    for i, r in raw[keep].iterrows():
        try:
            precision = weight_precision(r["precision"])
        except ValueError as exc:
            raise BenchmarkError(where, str(exc), i + 2, "precision") from None
        if r["load_kind"] not in BATCH_SEMANTICS:
            raise BenchmarkError(where, f"unknown load_kind {r['load_kind']!r}; known: "
                                 f"{', '.join(BATCH_SEMANTICS)}", i + 2, "load_kind")
        name, rest = engine(r["framework"])
        variant = "; ".join(p for p in (rest, r["precision"]) if p)
        rows.append({
            "source": r["source"], "model": r["model"], "hardware": r["hardware"],
            "num_gpus": r["num_gpus"], "framework": name, "precision": precision, "variant": variant,
            "disaggregated": "disaggregat" in r["framework"].lower(),
            "workload": "synthetic-fixed-length" if r["load_kind"] == "static_batch" else "unspecified",
            "input_tokens": r["input_tokens"], "output_tokens": r["output_tokens"],
            "batch_size": r["batch_size"], "batch_semantics": BATCH_SEMANTICS[r["load_kind"]],
            "throughput_tokens_per_s": r["throughput_tokens_per_s"], "e2e_latency_s": r["e2e_latency_s"],
            "itl_ms": r["itl_ms"], "ttft_ms": r["ttft_ms"],
        })
    table = pd.DataFrame(rows)
    for column in ("num_gpus", "input_tokens", "output_tokens", "batch_size", "throughput_tokens_per_s",
                   "e2e_latency_s", "itl_ms", "ttft_ms"):
        text = table[column].astype(str).str.strip()
        table[column] = text.where(text != "", np.nan)
    # One curve per configuration and *nominal* lengths: online runs report the lengths they
    # measured (totals / completed), which differ a little at every concurrency.
    nominal = _nominal_lengths(raw[keep].reset_index(drop=True), table)
    table = validate_table(table, where)
    table["config_id"] = configuration_key(table.assign(input_tokens=nominal[0], output_tokens=nominal[1]))
    # Two rows of one configuration at one batch are replicates, as in the bundled files.
    table["replicate"] = table.groupby(["config_id", "batch_size"], sort=False).cumcount()
    return table


def _nominal_lengths(raw: pd.DataFrame, table: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """The lengths a run asked for: ``nominal isl=X osl=Y`` where the notes give them, else
    the measured means of online runs to the nearest power of two, else the row's own."""
    given = raw["notes"].str.extract(r"nominal isl=(\d+) osl=(\d+)").astype(float)
    online = raw["load_kind"].str.startswith("online").to_numpy()
    out = []
    for k, column in enumerate(("input_tokens", "output_tokens")):
        value = pd.to_numeric(table[column], errors="coerce")
        rounded = np.where(online, 2.0 ** np.round(np.log2(value)), value)
        out.append(pd.Series(np.where(given[k].notna(), given[k], rounded), index=table.index))
    return out[0], out[1]
