"""Features of a serving configuration, and the roofline reference curve they imply.

Token lengths (the paper's features) plus model size, accelerator compute and memory,
accelerator count, engine and precision, so that knowledge transfers across hardware.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .catalog import (ACCELERATOR_COLUMNS, Catalog, UnknownModelError, kv_bytes_per_token,
                      precision_bytes)

FRAMEWORKS = ("vllm", "tensorrt-llm", "deepspeed-mii", "deepspeed", "sambaflow", "sglang", "tgi")
WORKLOAD_CLASSES = ("synthetic", "chat", "reasoning", "code", "image", "video")
VENDORS = ("nvidia", "amd", "intel", "sambanova")
#: Per-token KV bytes of Llama-3-8B, the anchor for architectures the catalog lacks.
_KV_ANCHOR_BYTES, _KV_ANCHOR_PARAMS, _KV_EXPONENT = 131072.0, 8.0, 0.42
#: Context assumed for the roofline when a table gives no input length (real-prompt sets).
_DEFAULT_INPUT_TOKENS = 1000.0


def workload_class(workload: str) -> str:
    """Map a workload name to a coarse class (synthetic, chat, reasoning, code, image, video)."""
    w = str(workload).lower()
    for key, cls in (("synthetic", "synthetic"), ("random", "synthetic"), ("fixed", "synthetic"),
                     ("video", "video"), ("image", "image"), ("vision", "image"),
                     ("gpqa", "reasoning"), ("reason", "reasoning"), ("math", "reasoning"),
                     ("code", "code"), ("fim", "code"), ("chat", "chat"), ("conv", "chat"),
                     ("sharegpt", "chat")):
        if key in w:
            return cls
    return "other"


def _framework_key(name: str) -> str:
    n = str(name).strip().lower().replace("_", "-").replace(" ", "-")
    aliases = {"trtllm": "tensorrt-llm", "trt-llm": "tensorrt-llm", "text-generation-inference": "tgi",
               "mii": "deepspeed-mii"}
    return aliases.get(n, n)


def _model_facts(row: pd.Series, catalog: Catalog) -> tuple[pd.Series, bool]:
    """Model facts for one configuration row, from per-row columns or the catalog."""
    given = {c: row.get(c) for c in ("params_b", "active_params_b")}
    try:
        facts = catalog.model(row["model"]).copy()
        # A size read from the name alone, or facts without the attention shape (a resource's
        # parametersB only), leave the shape to an estimate.
        estimated = str(facts.get("resolved_by", "")).startswith("size") \
            or not np.isfinite(float(pd.to_numeric(facts.get("layers"), errors="coerce")))
    except UnknownModelError:
        if not np.isfinite(pd.to_numeric(given["params_b"], errors="coerce") or np.nan):
            raise
        facts = pd.Series({"params_b": np.nan, "active_params_b": np.nan, "layers": np.nan,
                           "attention_layers": np.nan, "kv_heads": np.nan, "head_dim": np.nan,
                           "kv_latent_dim": np.nan, "architecture": "dense", "modality": "text"},
                          dtype=object)
        estimated = True
    for column, value in given.items():
        value = pd.to_numeric(value, errors="coerce")
        if value is not None and np.isfinite(value):
            facts[column] = float(value)
    if not np.isfinite(facts["active_params_b"]):
        facts["active_params_b"] = facts["params_b"]
    return facts, estimated


def config_features(configs: pd.DataFrame, catalog: Catalog) -> pd.DataFrame:
    """One row of numeric features per configuration row.

    Raises ``UnknownAcceleratorError`` / ``UnknownModelError`` (naming the entry) when the
    catalog lacks an accelerator or model and the row does not carry its facts.

    Notes
    -----
    Besides raw facts the frame holds the roofline terms of one decode step, per sequence:
    ``t_mem = W / (n * BW)`` (weights read once per step), ``t_comp = 2 * P_active / (n * F)``
    and ``t_kv = ctx * kv_bytes / (n * BW)``, and ``kv_capacity`` (sequences that fit).
    """
    rows = []
    for _, cfg in configs.iterrows():
        facts, estimated = _model_facts(cfg, catalog)
        acc = catalog.accelerator(cfg["hardware"]).copy()
        for column in ACCELERATOR_COLUMNS:
            value = pd.to_numeric(cfg.get(column), errors="coerce")
            if value is not None and np.isfinite(value):
                acc[column] = float(value)
        n = float(cfg["num_gpus"])
        bpp = precision_bytes(cfg["precision"])
        kv = (kv_bytes_per_token(facts) if np.isfinite(facts["layers"]) else
              _KV_ANCHOR_BYTES * (facts["params_b"] / _KV_ANCHOR_PARAMS) ** _KV_EXPONENT)
        input_tokens = float(cfg["input_tokens"]) if np.isfinite(cfg["input_tokens"]) else np.nan
        output_tokens = float(cfg["output_tokens"]) if np.isfinite(cfg["output_tokens"]) else np.nan
        ctx_in = input_tokens if np.isfinite(input_tokens) else _DEFAULT_INPUT_TOKENS
        ctx_out = output_tokens if np.isfinite(output_tokens) else 256.0
        weights = facts["params_b"] * 1e9 * bpp
        bandwidth = n * acc["memory_bandwidth_tbps"] * 1e12
        flops = n * acc["peak_bf16_dense_tflops"] * 1e12
        free = max(n * acc["memory_gb"] * 1e9 * 0.9 - weights, 0.02 * n * acc["memory_gb"] * 1e9)
        wclass = workload_class(cfg.get("workload", ""))
        fw = _framework_key(cfg["framework"])
        vendor = str(acc.get("vendor", "")).lower()
        semantics = str(cfg.get("batch_semantics", "")).lower()
        record = {
            "log_params": np.log(facts["params_b"]),
            "log_active_params": np.log(facts["active_params_b"]),
            "moe": float(facts["active_params_b"] < 0.95 * facts["params_b"]),
            "hybrid": float(str(facts.get("architecture", "")) == "hybrid"),
            "multimodal": float(str(facts.get("modality", "text")) != "text"),
            "bytes_per_param": bpp,
            "log_tflops": np.log(acc["peak_bf16_dense_tflops"]),
            "log_bandwidth": np.log(acc["memory_bandwidth_tbps"]),
            "log_memory": np.log(acc["memory_gb"]),
            "log_gpus": np.log(n),
            "log_input": np.log(input_tokens),
            "log_output": np.log(output_tokens),
            "log_ratio": np.log(input_tokens / output_tokens),
            "log_kv_bytes": np.log(kv),
            "static_batch": float("static" in semantics),
            "t_mem": weights / bandwidth,
            "t_comp": 2.0 * facts["active_params_b"] * 1e9 / flops,
            "t_kv": (ctx_in + 0.5 * ctx_out) * kv / bandwidth,
            "kv_capacity": free / (kv * (ctx_in + ctx_out)),
            "catalog_estimated": float(estimated),
        }
        for name in FRAMEWORKS:
            record[f"fw_{name}"] = float(fw == name)
        for name in WORKLOAD_CLASSES:
            record[f"wl_{name}"] = float(wclass == name)
        for name in VENDORS:
            record[f"vendor_{name}"] = float(vendor == name)
        rows.append(record)
    return pd.DataFrame(rows, index=configs.index)


def roofline(features: pd.DataFrame | pd.Series, batch: np.ndarray) -> np.ndarray:
    """Roofline throughput (generated tokens/s) of configurations at batch sizes.

    Notes
    -----
    ``thpt_ref(bb) = bb / (t_mem + bb * (t_comp + t_kv))``: each decode step reads the
    weights once and the KV cache of every sequence, and spends ``2 P_active`` FLOPs per
    token. It is a reference to learn a correction against, not a prediction.
    """
    t_mem = np.asarray(features["t_mem"], float)
    t_per_seq = np.asarray(features["t_comp"], float) + np.asarray(features["t_kv"], float)
    batch = np.asarray(batch, float)
    return batch / (t_mem + batch * t_per_seq)


def row_features(features: pd.DataFrame, batch: np.ndarray) -> np.ndarray:
    """Features of (configuration, batch) rows: ``features`` rows aligned with ``batch``."""
    batch = np.asarray(batch, float)
    base = features.drop(columns=["t_mem", "t_comp", "t_kv", "kv_capacity"]).to_numpy(float)
    log_b = np.log(batch)[:, None]
    ref = np.log(roofline(features, batch))[:, None]
    fill = np.log(batch / features["kv_capacity"].to_numpy(float))[:, None]
    compute_share = np.log(batch * features["t_comp"].to_numpy(float) /
                           features["t_mem"].to_numpy(float))[:, None]
    return np.hstack([base, log_b, ref, fill, compute_share])
