"""Catalog of accelerators and models: the hardware and model facts that features need.

Both tables are small CSV files in ``ala/data/`` with a source for every row; users can
extend them with their own files or per-query columns.
"""

from __future__ import annotations

import difflib

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

ACCELERATOR_COLUMNS = ("peak_bf16_dense_tflops", "memory_bandwidth_tbps", "memory_gb")
MODEL_COLUMNS = ("params_b", "active_params_b", "layers", "attention_layers", "kv_heads",
                 "head_dim", "kv_latent_dim")
#: Bytes per weight for each precision spelling found in benchmark tables.
PRECISION_BYTES = {"16bit": 2.0, "bfloat16": 2.0, "float16": 2.0, "fp16": 2.0, "bf16": 2.0,
                   "fp8": 1.0, "int8": 1.0, "w8a8": 1.0, "fp4": 0.5, "mxfp4": 0.5,
                   "nvfp4": 0.5, "int4": 0.5, "awq": 0.5, "gptq": 0.5, "fp32": 4.0}


class UnknownAcceleratorError(KeyError):
    """An accelerator that is not in the catalog."""

    def __str__(self) -> str:
        return str(self.args[0])


class UnknownModelError(KeyError):
    """A model that is not in the catalog."""

    def __str__(self) -> str:
        return str(self.args[0])


def _norm(name: str) -> str:
    return str(name).strip().lower().replace("_", "-").replace(" ", "-")


def _did_you_mean(key: str, index: dict[str, int], names=None) -> str:
    """`` (did you mean 'H100'?)`` for the closest known names of a normalised ``key``."""
    close = difflib.get_close_matches(key, list(index), n=3, cutoff=0.6)
    if not close:
        return ""
    if names is None:
        shown = close
    else:
        shown = list(dict.fromkeys(str(names.iloc[index[c]]) for c in close))
    return " (did you mean " + " or ".join(repr(c) for c in shown) + "?)"


@dataclass(frozen=True)
class Catalog:
    """Accelerator and model facts, looked up by name (case-insensitive, with aliases)."""

    accelerators: pd.DataFrame
    models: pd.DataFrame

    @classmethod
    def load(cls, accelerators: str | Path | None = None,
             models: str | Path | None = None) -> "Catalog":
        """The bundled catalog, optionally extended by user CSV files in the same schema."""
        root = resources.files("ala") / "data"
        acc = pd.read_csv(str(root / "accelerators.csv"), keep_default_na=False)
        mod = pd.read_csv(str(root / "models.csv"), keep_default_na=False)
        if accelerators is not None:
            acc = pd.concat([pd.read_csv(accelerators, keep_default_na=False), acc]).drop_duplicates("name")
        if models is not None:
            mod = pd.concat([pd.read_csv(models, keep_default_na=False), mod]).drop_duplicates("model")
        for column in MODEL_COLUMNS:
            mod[column] = pd.to_numeric(mod[column], errors="coerce")
        for column in ACCELERATOR_COLUMNS + ("price_per_hour_usd",):
            acc[column] = pd.to_numeric(acc[column], errors="coerce")
        return cls(acc.reset_index(drop=True), mod.reset_index(drop=True))

    def _accelerator_index(self) -> dict[str, int]:
        index: dict[str, int] = {}
        for i, row in self.accelerators.iterrows():
            index[_norm(row["name"])] = i
            for alias in str(row.get("aliases", "")).split(";"):
                if alias.strip():
                    index.setdefault(_norm(alias), i)
        return index

    def accelerator(self, name: str) -> pd.Series:
        """The catalog row of an accelerator; raises ``UnknownAcceleratorError``."""
        index = self._accelerator_index()
        key = _norm(name)
        if key not in index:
            known = ", ".join(sorted(self.accelerators["name"]))
            raise UnknownAcceleratorError(
                f"unknown accelerator {name!r}{_did_you_mean(key, index, self.accelerators['name'])}; known: {known}. "
                f"Add it with a catalog file "
                f"(columns name, {', '.join(ACCELERATOR_COLUMNS)}) or give those columns in the query")
        return self.accelerators.loc[index[key]]

    def model(self, name: str) -> pd.Series:
        """The catalog row of a model; raises ``UnknownModelError``."""
        keys = {_norm(m): i for i, m in enumerate(self.models["model"])}
        key = _norm(name)
        if key not in keys:
            # Users often leave out the organisation prefix of a Hugging Face id.
            tails = {k.split("/")[-1]: i for k, i in keys.items()}
            if key.split("/")[-1] in tails:
                return self.models.loc[tails[key.split("/")[-1]]]
            raise UnknownModelError(
                f"unknown model {name!r}{_did_you_mean(key, {**keys, **tails}, self.models['model'])}; add it with "
                f"a catalog file (columns model, "
                f"{', '.join(MODEL_COLUMNS)}) or give params_b and active_params_b in the query")
        return self.models.loc[keys[key]]

    def accelerator_names(self) -> list[str]:
        return list(self.accelerators["name"])

    def extend(self, accelerators: pd.DataFrame | None = None, models: pd.DataFrame | None = None) -> "Catalog":
        """A catalog whose given rows come first: a name in both takes the new row's facts."""
        acc, mod = self.accelerators, self.models
        if accelerators is not None and len(accelerators):
            acc = pd.concat([accelerators, acc], ignore_index=True).drop_duplicates("name")
        if models is not None and len(models):
            mod = pd.concat([models, mod], ignore_index=True).drop_duplicates("model")
        for column in MODEL_COLUMNS:
            mod[column] = pd.to_numeric(mod[column], errors="coerce")
        for column in ACCELERATOR_COLUMNS + ("price_per_hour_usd",):
            acc[column] = pd.to_numeric(acc[column], errors="coerce")
        return Catalog(acc.fillna({"aliases": "", "vendor": "", "source": ""}).reset_index(drop=True),
                       mod.fillna({"architecture": "dense", "modality": "text", "source": ""}).reset_index(drop=True))


class CatalogFileError(ValueError):
    """A user's catalog file or model config that cannot be read; the message names it."""


def read_catalog_file(path: str | Path) -> tuple[str, pd.DataFrame]:
    """A user's catalog CSV: ``("accelerators", rows)`` when it has a ``name`` column,
    ``("models", rows)`` when it has a ``model`` column. Every fact column the features need
    must be there and hold positive numbers (``active_params_b`` and the attention shape may
    be blank: they default to ``params_b`` and a size-based KV estimate)."""
    path = Path(path)
    if not path.exists():
        raise CatalogFileError(f"{path}: no such file")
    try:
        frame = pd.read_csv(path, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise CatalogFileError(f"{path}: not a CSV file ({exc})") from None
    if "name" in frame.columns:
        kind, required = "accelerators", ACCELERATOR_COLUMNS
    elif "model" in frame.columns:
        kind, required = "models", ("params_b",)
    else:
        raise CatalogFileError(f"{path}: a catalog file needs a 'name' column (accelerators: name, "
                               f"{', '.join(ACCELERATOR_COLUMNS)}) or a 'model' column (models: model, params_b, "
                               f"optionally {', '.join(MODEL_COLUMNS[1:])})")
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise CatalogFileError(f"{path}: {kind} catalog lacks column(s) {', '.join(missing)}")
    for column in required:
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = ~(np.isfinite(values) & (values > 0))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise CatalogFileError(f"{path}, row {row + 2}, column {column!r}: {frame[column].iloc[row]!r} is not "
                                   f"a positive number")
    for column in (MODEL_COLUMNS if kind == "models" else ()):
        if column not in frame.columns:
            frame[column] = np.nan
    frame["source"] = frame["source"] if "source" in frame.columns else f"user catalog {path.name}"
    return kind, frame


def accelerator_row(name: str, tflops: float, bandwidth_tbps: float, memory_gb: float,
                    price_per_hour: float | None = None, vendor: str = "") -> pd.DataFrame:
    """One accelerator given by its specs (``--accelerator-tflops`` and friends)."""
    for label, value in (("dense BF16 TFLOPS", tflops), ("memory bandwidth (TB/s)", bandwidth_tbps),
                         ("memory (GB)", memory_gb)):
        if not (value is not None and np.isfinite(value) and value > 0):
            raise CatalogFileError(f"accelerator {name!r}: {label} must be a positive number, got {value}")
    return pd.DataFrame([{"name": name, "aliases": "", "vendor": vendor, "peak_bf16_dense_tflops": float(tflops),
                          "memory_bandwidth_tbps": float(bandwidth_tbps), "memory_gb": float(memory_gb),
                          "price_per_hour_usd": np.nan if price_per_hour is None else float(price_per_hour),
                          "source": "given on the command line"}])


def _config_int(config: dict, *keys: str, default=None):
    for key in keys:
        value = config.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
            return value
    return default


def model_from_config(name: str, config: dict, where: str = "config.json") -> pd.DataFrame:
    """Model facts (one catalog row) from a Hugging Face ``config.json``.

    Notes
    -----
    Parameters are counted from the shapes: embeddings (twice unless tied), per layer the
    attention projections (query, key/value for grouped-query attention or the low-rank
    projections of latent attention, output) and the MLP (gated, three matrices; a mixture
    of experts counts every expert in the total and ``num_experts_per_tok`` of them, plus
    shared experts, in the active count). Norms and biases are left out (well under 1%).
    Multimodal configs are read from their ``text_config``; vision towers are not counted.
    """
    if not isinstance(config, dict):
        raise CatalogFileError(f"{where}: expected a JSON object")
    text = config.get("text_config") if isinstance(config.get("text_config"), dict) else config
    hidden = _config_int(text, "hidden_size", "d_model", "n_embd")
    layers = _config_int(text, "num_hidden_layers", "n_layer", "num_layers")
    vocab = _config_int(text, "vocab_size", default=_config_int(config, "vocab_size"))
    heads = _config_int(text, "num_attention_heads", "n_head")
    missing = [k for k, v in (("hidden_size", hidden), ("num_hidden_layers", layers), ("vocab_size", vocab),
                              ("num_attention_heads", heads)) if v is None]
    if missing:
        raise CatalogFileError(f"{where}: lacks {', '.join(missing)} (is it a Hugging Face config.json of a "
                               f"decoder model?)")
    kv_heads = _config_int(text, "num_key_value_heads", default=heads)
    head_dim = _config_int(text, "head_dim", default=hidden // heads)
    tied = bool(text.get("tie_word_embeddings", config.get("tie_word_embeddings", False)))
    embed = vocab * hidden * (1 if tied else 2)
    latent = None
    if _config_int(text, "kv_lora_rank") is not None:  # latent attention (DeepSeek V2/V3)
        rank, rope = _config_int(text, "kv_lora_rank"), _config_int(text, "qk_rope_head_dim", default=64)
        nope = _config_int(text, "qk_nope_head_dim", default=128)
        v_dim = _config_int(text, "v_head_dim", default=128)
        q_rank = _config_int(text, "q_lora_rank")
        q = (hidden * q_rank + q_rank * heads * (nope + rope)) if q_rank else hidden * heads * (nope + rope)
        attn = q + hidden * (rank + rope) + rank * heads * (nope + v_dim) + heads * v_dim * hidden
        latent = rank + rope
    else:
        attn = hidden * heads * head_dim + 2 * hidden * kv_heads * head_dim + heads * head_dim * hidden
    inter = _config_int(text, "intermediate_size", "ffn_dim", "n_inner", default=4 * hidden)
    experts = _config_int(text, "num_experts", "num_local_experts", "n_routed_experts")
    dense_mlp = 3 * hidden * inter
    if experts:
        per_expert = 3 * hidden * _config_int(text, "moe_intermediate_size", default=inter)
        top_k = _config_int(text, "num_experts_per_tok", "moe_topk", default=2)
        shared = _config_int(text, "n_shared_experts", default=0) * per_expert
        if _config_int(text, "shared_expert_intermediate_size") is not None:
            shared = 3 * hidden * _config_int(text, "shared_expert_intermediate_size")
        dense_layers = min(int(_config_int(text, "first_k_dense_replace", default=0)), layers)
        moe_layers = layers - dense_layers
        total = embed + layers * attn + dense_layers * dense_mlp + moe_layers * (experts * per_expert + shared)
        active = embed + layers * attn + dense_layers * dense_mlp + moe_layers * (top_k * per_expert + shared)
    else:
        total = active = embed + layers * (attn + dense_mlp)
    return pd.DataFrame([{"model": name, "params_b": total / 1e9, "active_params_b": active / 1e9,
                          "layers": layers, "attention_layers": layers, "kv_heads": kv_heads, "head_dim": head_dim,
                          "kv_latent_dim": np.nan if latent is None else latent,
                          "architecture": "moe" if experts else "dense",
                          "modality": "text" if text is config else "vision",
                          "source": f"counted from {Path(where).name}"}])


def model_family(name: str) -> str:
    """The family a model id belongs to: ``meta-llama/Llama-3.1-8B-Instruct`` -> ``llama``."""
    tail = _norm(name).split("/")[-1]
    for prefix in ("meta-", "nvidia-"):
        if tail.startswith(prefix):
            tail = tail[len(prefix):]
    letters = ""
    for ch in tail:
        if not ch.isalpha():
            break
        letters += ch
    return letters or tail


def precision_bytes(precision: str) -> float:
    """Bytes per weight for a precision name; unknown names raise ``ValueError``."""
    key = _norm(precision)
    if key not in PRECISION_BYTES:
        raise ValueError(f"unknown precision {precision!r}; known: {', '.join(sorted(PRECISION_BYTES))}")
    return PRECISION_BYTES[key]


def kv_bytes_per_token(model: pd.Series, bytes_per_value: float = 2.0) -> float:
    """KV-cache bytes one token occupies across all attention layers.

    Notes
    -----
    ``2 * attention_layers * kv_heads * head_dim * bytes`` for grouped-query attention;
    ``attention_layers * kv_latent_dim * bytes`` for latent attention (MLA).
    """
    layers = model["attention_layers"] if np.isfinite(model["attention_layers"]) else model["layers"]
    latent = model.get("kv_latent_dim", np.nan)
    if np.isfinite(latent):
        return float(layers * latent * bytes_per_value)
    return float(2 * layers * model["kv_heads"] * model["head_dim"] * bytes_per_value)
