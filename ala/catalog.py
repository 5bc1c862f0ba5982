"""Catalog of accelerators and models: the hardware and model facts that features need.

Both tables are small CSV files in ``ala/data/`` with a source for every row; users can
extend them with their own files or per-query columns.
"""

from __future__ import annotations

import difflib
import re

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


#: A name this similar to a catalog model (difflib ratio) is taken for a typo of it, not
#: resolved by the size in its name.
TYPO_SIMILARITY = 0.9


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

    def __getstate__(self) -> dict:
        # The lookup indexes are rebuilt on demand: a saved model carries the tables only.
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_")}

    def _accelerator_index(self) -> dict[str, int]:
        # Built once per catalog (its tables are not changed after construction: ``extend``
        # makes a new one); a planner looks names up several times per plan.
        found = self.__dict__.get("_acc_index")
        if found is not None and found[0] is self.accelerators:
            return found[1]
        index = self._build_accelerator_index()
        self.__dict__["_acc_index"] = (self.accelerators, index)
        return index

    def _build_accelerator_index(self) -> dict[str, int]:
        index: dict[str, int] = {}
        for i, row in self.accelerators.iterrows():
            index[_norm(row["name"])] = i
            for alias in str(row.get("aliases", "")).split(";"):
                if alias.strip():
                    index.setdefault(_norm(alias), i)
        return index

    def accelerator(self, name: str) -> pd.Series:
        """The catalog row of an accelerator; raises ``UnknownAcceleratorError``.

        Besides names and aliases, vendor spellings resolve: a vendor prefix, ``GPU``, a
        parenthesised system (``(DGX-A100)``), a form factor (``SXM5``, ``HBM3``, ``OAM``) and a
        memory size that the catalog row has (``-80GB``, ``192GB``) are dropped in turn.
        """
        index = self._accelerator_index()
        key = _norm(name)
        for candidate in _accelerator_spellings(key):
            if candidate in index:
                row = self.accelerators.loc[index[candidate]]
                memory = re.search(r"(\d+)gb", key)
                # A memory size the name states must be the row's (A100-80GB is not the 40 GB A100).
                if memory is None or candidate == key or abs(float(memory.group(1)) - float(row["memory_gb"])) < 1:
                    return row
        known = ", ".join(sorted(self.accelerators["name"]))
        raise UnknownAcceleratorError(
            f"unknown accelerator {name!r}{_did_you_mean(key, index, self.accelerators['name'])}; known: {known}. "
            f"Give its specs (--accelerator-tflops, --accelerator-bandwidth-tbps, --accelerator-memory-gb) or a "
            f"catalog file (columns name, {', '.join(ACCELERATOR_COLUMNS)})")

    def model(self, name: str) -> pd.Series:
        """The catalog row of a model (see :meth:`resolve_model`); raises ``UnknownModelError``."""
        return self.resolve_model(name)[0]

    def resolve_model(self, name: str) -> tuple[pd.Series, str]:
        """A model's facts and how they were found, in this order:

        1. the catalog id, exactly or without the organisation prefix;
        2. the id without quantisation and packaging suffixes (``-FP8``, ``-FP4-V2``,
           ``-MXFP4-Preview``, ``-Instruct-FP8-KV``, ``-AWQ``, ``-GPTQ-Int4``, ...);
        3. the same stem as a catalog model up to ``-Instruct``/``-Chat``/``-it``/``-hf``, a date
           (``-2507``) and punctuation (``llama2-70b`` is ``meta-llama/Llama-2-70b-hf``);
        4. a size parsed from the name (``70b``, ``8x7B``, ``-A3B`` active), flagged estimated:
           the attention shape is then a size-based estimate.

        Raises ``UnknownModelError`` (with the closest names) when none answers.
        """
        found = self.__dict__.get("_model_keys")
        if found is None or found[0] is not self.models:
            keys = {_norm(m): i for i, m in enumerate(self.models["model"])}
            found = (self.models, keys, {k.split("/")[-1]: i for k, i in keys.items()})
            self.__dict__["_model_keys"] = found
        _, keys, tails = found
        key = _norm(name)
        tail = key.split("/")[-1]
        for route, found in (("catalog", keys.get(key)), ("catalog (without organisation)", tails.get(tail))):
            if found is not None:
                return self._tagged(found, route)
        stripped, _ = strip_quantisation(tail)
        if stripped != tail and stripped in tails:
            route = f"catalog ({tail!r} without its quantisation suffix)"
            return self._tagged(tails[stripped], route)
        stems: dict[str, list[int]] = {}
        for k, i in tails.items():
            stems.setdefault(_stem(k), []).append(i)
        match = stems.get(_stem(stripped), [])
        if len(set(match)) == 1:
            route = f"catalog (same model as {self.models['model'].iloc[match[0]]!r} by name)"
            return self._tagged(match[0], route)
        size = size_from_name(tail)
        typo = difflib.get_close_matches(stripped, list(tails), n=1, cutoff=TYPO_SIMILARITY)
        if size is not None and typo:
            # One or two characters from a catalog model: a typo far more often than a new model.
            known = self.models["model"].iloc[tails[typo[0]]]
            raise UnknownModelError(f"unknown model {name!r} (did you mean {known!r}?); if it is another model, "
                                    f"give its Hugging Face config.json (--model-config) or a catalog file")
        if size is not None:
            total, active = size
            route = f"size parsed from the name ({total:g}B" + (f", {active:g}B active" if active != total else "") + \
                    "; estimated, attention shape unknown)"
            row = pd.Series({"model": name, "params_b": total, "active_params_b": active, "layers": np.nan,
                             "attention_layers": np.nan, "kv_heads": np.nan, "head_dim": np.nan,
                             "kv_latent_dim": np.nan, "architecture": "moe" if active < total else "dense",
                             "modality": "text", "source": route, "resolved_by": route}, dtype=object)
            for column in MODEL_COLUMNS:
                row[column] = float(row[column])
            return row, route
        raise UnknownModelError(
            f"unknown model {name!r}{_did_you_mean(key, {**keys, **tails}, self.models['model'])} and no size in "
            f"its name; give its Hugging Face config.json (--model-config), a catalog file (columns model, "
            f"{', '.join(MODEL_COLUMNS)}), or params_b and active_params_b in the query")

    def _tagged(self, i: int, route: str) -> tuple[pd.Series, str]:
        row = self.models.loc[i].copy()
        if row.get("given", False) == True and str(row.get("source", "")):  # noqa: E712 (numpy bools)
            # A row a user added (config.json, a resource's facts, a catalog file): say whose.
            route = f"{row['source']}" + ("" if route == "catalog" else f" via {route}")
        row["resolved_by"] = route
        return row, route

    def blinded(self) -> "Catalog":
        """This catalog with every model's attention shape forgotten (sizes kept): what the
        product knows of a model it sizes from its name alone. Fitting uses it to learn how
        wrong such estimates are (the estimated-facts calibration stratum)."""
        models = self.models.copy()
        for column in ("layers", "attention_layers", "kv_heads", "head_dim", "kv_latent_dim"):
            models[column] = np.nan
        return Catalog(self.accelerators, models)

    def accelerator_names(self) -> list[str]:
        return list(self.accelerators["name"])

    def extend(self, accelerators: pd.DataFrame | None = None, models: pd.DataFrame | None = None) -> "Catalog":
        """A catalog whose given rows come first: a name in both takes the new row's facts."""
        acc, mod = self.accelerators, self.models
        if accelerators is not None and len(accelerators):
            acc = pd.concat([accelerators.assign(given=True), acc], ignore_index=True).drop_duplicates("name")
        if models is not None and len(models):
            mod = pd.concat([models.assign(given=True), mod], ignore_index=True).drop_duplicates("model")
        acc["given"] = acc["given"].eq(True) if "given" in acc.columns else False
        mod["given"] = mod["given"].eq(True) if "given" in mod.columns else False
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
                    price_per_hour: float | None = None, vendor: str = "",
                    source: str = "given on the command line", aliases: str = "") -> pd.DataFrame:
    """One accelerator given by its specs (``--accelerator-tflops`` and friends)."""
    for label, value in (("dense BF16 TFLOPS", tflops), ("memory bandwidth (TB/s)", bandwidth_tbps),
                         ("memory (GB)", memory_gb)):
        if not (value is not None and np.isfinite(value) and value > 0):
            raise CatalogFileError(f"accelerator {name!r}: {label} must be a positive number, got {value}")
    return pd.DataFrame([{"name": name, "aliases": aliases, "vendor": vendor, "peak_bf16_dense_tflops": float(tflops),
                          "memory_bandwidth_tbps": float(bandwidth_tbps), "memory_gb": float(memory_gb),
                          "price_per_hour_usd": np.nan if price_per_hour is None else float(price_per_hour),
                          "source": source}])


def model_row(name: str, facts: dict, base: pd.Series | None = None, source: str = "") -> pd.DataFrame:
    """One model row: ``facts`` (catalog columns: params_b, active_params_b, layers, kv_heads,
    head_dim, kv_latent_dim) over ``base`` (a known model's row, or nothing). A model without
    a base needs ``params_b``; an attention shape it lacks stays unknown (estimated from size)."""
    row = {column: np.nan for column in MODEL_COLUMNS}
    row.update({"architecture": "dense", "modality": "text"})
    if base is not None:
        row.update({k: base[k] for k in (*MODEL_COLUMNS, "architecture", "modality") if k in base.index})
    given = {k: float(v) for k, v in facts.items() if v is not None}
    if base is None and "params_b" not in given:
        raise CatalogFileError(f"model {name!r} is not in the catalog: its parameter count is needed")
    row.update(given)
    if "params_b" in given and "active_params_b" not in given \
            and (base is None or base.get("active_params_b") == base.get("params_b")):
        row["active_params_b"] = given["params_b"]  # dense unless told otherwise
    if "layers" in given:
        row["attention_layers"] = given["layers"]
    if row["active_params_b"] > row["params_b"]:
        raise CatalogFileError(f"model {name!r}: active parameters ({row['active_params_b']:g}B) exceed the "
                               f"total ({row['params_b']:g}B)")
    if row["active_params_b"] < row["params_b"]:
        row["architecture"] = "moe"
    row.update({"model": name, "source": source})
    return pd.DataFrame([row])


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


#: Quantisation and packaging suffixes of checkpoint names, with the precision they imply.
_QUANT_SUFFIXES = (("fp8-dynamic", "fp8"), ("fp8-kv", "fp8"), ("fp8", "fp8"), ("nvfp4", "nvfp4"), ("mxfp4", "mxfp4"),
                   ("fp4", "nvfp4"), ("awq", "awq"), ("gptq-int4", "gptq"), ("gptq-int8", "int8"), ("gptq", "gptq"),
                   ("int4", "int4"), ("int8", "int8"), ("w8a8", "w8a8"), ("w4a16", "int4"), ("bnb-4bit", "int4"),
                   ("kv", None), ("dynamic", None), ("quantized", None), ("preview", None))


def strip_quantisation(tail: str) -> tuple[str, str | None]:
    """A normalised model name without its quantisation and packaging suffixes, and the
    precision they imply (``llama-3.1-405b-instruct-fp8-kv`` -> ``llama-3.1-405b-instruct``,
    ``fp8``). A ``-v2`` is dropped only right after such a suffix (``-FP4-V2``): ``DeepSeek-V2``
    keeps its version."""
    precision = None
    changed = True
    while changed:
        changed = False
        for suffix, implied in _QUANT_SUFFIXES:
            for tagged in (f"-{suffix}", f"-{suffix}-v2", f"-{suffix}-v1"):
                if tail.endswith(tagged) and len(tail) > len(tagged):
                    tail = tail[: -len(tagged)]
                    precision = precision or implied
                    changed = True
                    break
            if changed:
                break
    return tail, precision


def precision_from_name(name: str) -> str | None:
    """The weight precision a checkpoint's name states (``-FP8``, ``-AWQ``), or None."""
    return strip_quantisation(_norm(name).split("/")[-1])[1]


def _stem(tail: str) -> str:
    """A model name without variant words, dates and punctuation, for matching families'
    spellings: ``Llama-2-70b-hf`` and ``llama2-70b`` are both ``llama270b``."""
    words = [w for w in re.split(r"[-_.]", tail) if w and w not in ("instruct", "chat", "it", "hf", "base")
             and not re.fullmatch(r"\d{4}", w)]
    return re.sub(r"[^a-z0-9]", "", "".join(words))


def size_from_name(tail: str) -> tuple[float, float] | None:
    """(total, active) billions of parameters stated in a model name: ``70b``, ``8x7b``
    (experts x size), ``30b-a3b`` (active); None when it states none."""
    experts = re.search(r"(?<![a-z0-9.])(\d+)x(\d+(?:\.\d+)?)b(?![a-z])", tail)
    if experts:
        total = float(experts.group(1)) * float(experts.group(2))
        return total, total
    sizes = re.findall(r"(?<![a-z0-9.])(\d+(?:\.\d+)?)b(?![a-z])", tail)
    if not sizes:
        return None
    total = float(sizes[0])
    active = re.search(r"(?<![a-z0-9.])a(\d+(?:\.\d+)?)b(?![a-z])", tail)
    return total, float(active.group(1)) if active else total


def _accelerator_spellings(key: str):
    """Successively plainer spellings of a normalised accelerator name."""
    yield key
    plain = re.sub(r"\(.*?\)", "", key)
    plain = re.sub(r"^(nvidia|amd|intel|habana|google)-", "", plain.strip("-"))
    plain = re.sub(r"-(gpu|accelerator|power-capped)(?=-|$)", "", plain).strip("-")
    yield plain
    bare = re.sub(r"-(sxm\d?|hbm\d?e?|oam|nvl)(?=-|$)", "", plain).strip("-")
    yield bare
    yield re.sub(r"-?\d+gb$", "", bare).strip("-")


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
