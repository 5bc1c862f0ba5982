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
