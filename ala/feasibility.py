"""Whether a deployment can run at all: weights and KV cache against the replica's memory.

First principles, no fitted model: the engine keeps a share of each accelerator's memory
(vLLM's default ``gpu_memory_utilization`` 0.9) less an activation workspace; the weights
at their precision must fit in it, and what is left holds the KV cache, whose size per
sequence is the KV bytes per token times the request's input plus output tokens. That
bounds the batch: a plan never asks for more sequences than the cache can hold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .catalog import Catalog, kv_bytes_per_token, precision_bytes

#: Share of each accelerator's memory the engine uses (vLLM's ``gpu_memory_utilization``).
MEMORY_UTILIZATION = 0.9
#: Activation workspace, CUDA graphs and the runtime, per accelerator (GB).
WORKSPACE_GB = 2.0
#: Token lengths assumed for the KV cache when the deployment gives none.
DEFAULT_INPUT_TOKENS, DEFAULT_OUTPUT_TOKENS = 1000.0, 256.0
#: Accelerator counts tried when a deployment does not fit (tensor-parallel sizes).
COUNTS = (1, 2, 4, 8, 16, 32)
#: Per-token KV bytes of Llama-3-8B, the anchor for models whose attention shape is unknown.
_KV_ANCHOR_BYTES, _KV_ANCHOR_PARAMS, _KV_EXPONENT = 131072.0, 8.0, 0.42


@dataclass(frozen=True)
class MemoryFit:
    """Memory of one replica: what the weights take, what is left for the KV cache, and the
    largest batch it holds at the request's token lengths."""

    weights_gb: float
    usable_gb: float
    kv_gb_per_sequence: float
    max_batch: int
    tokens_assumed: bool
    min_accelerators: int | None

    @property
    def fits(self) -> bool:
        return self.max_batch >= 1

    def reason(self, accelerator: str, count: int) -> str:
        """Why it does not run, and the smallest count that would."""
        what = (f"{self.weights_gb:.0f} GB of weights" if self.weights_gb > self.usable_gb else
                f"{self.weights_gb:.0f} GB of weights and {self.kv_gb_per_sequence:.2f} GB of KV cache for one "
                f"sequence")
        fix = (f"; {self.min_accelerators}x {accelerator} would hold it" if self.min_accelerators else
               f"; no count up to {COUNTS[-1]} of {accelerator} holds it")
        return (f"{what} do not fit the {self.usable_gb:.0f} GB usable on {count}x {accelerator} "
                f"({MEMORY_UTILIZATION:.0%} of memory less {WORKSPACE_GB:g} GB workspace each){fix}")


def kv_bytes(model) -> float:
    """KV-cache bytes per token of a model's catalog row (a size-based estimate when the
    attention shape is unknown)."""
    if np.isfinite(model.get("layers", np.nan)):
        return kv_bytes_per_token(model)
    return _KV_ANCHOR_BYTES * (float(model["params_b"]) / _KV_ANCHOR_PARAMS) ** _KV_EXPONENT


def memory_fit(catalog: Catalog, model: str, accelerator: str, count: int, precision: str,
               input_tokens: float | None, output_tokens: float | None) -> MemoryFit | None:
    """The replica's memory budget, or None when the catalog lacks the model or accelerator
    (nothing to check against: the caller says so)."""
    try:
        facts = catalog.model(model)
        acc = catalog.accelerator(accelerator)
    except KeyError:
        return None
    memory = float(acc["memory_gb"])
    if not np.isfinite(memory) or not np.isfinite(facts["params_b"]):
        return None
    weights = float(facts["params_b"]) * precision_bytes(precision)
    tokens = (input_tokens or DEFAULT_INPUT_TOKENS) + (output_tokens or DEFAULT_OUTPUT_TOKENS)
    per_sequence = kv_bytes(facts) * tokens / 1e9

    def budget(n: int) -> tuple[float, int]:
        usable = n * (memory * MEMORY_UTILIZATION - WORKSPACE_GB)
        left = usable - weights
        return usable, (int(math.floor(left / per_sequence)) if left > 0 else 0)

    usable, max_batch = budget(int(count))
    smallest = next((n for n in COUNTS if budget(n)[1] >= 1), None)
    return MemoryFit(weights_gb=weights, usable_gb=usable, kv_gb_per_sequence=per_sequence, max_batch=max_batch,
                     tokens_assumed=input_tokens is None or output_tokens is None, min_accelerators=smallest)
