"""Names as clusters, checkpoints and benchmark files spell them, resolved by the catalog."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ala.catalog import (Catalog, UnknownAcceleratorError, UnknownModelError, model_family, model_from_config,
                         precision_from_name, size_from_name)

CONFIGS = Path(__file__).resolve().parents[1] / "fixtures" / "model_configs"
CAT = Catalog.load()

# Every model name of the shared benchmark files that is not a catalog id, and the
# quantised or renamed checkpoints users run, with the catalog row each must reach.
MODELS = {
    "amd/Llama-3.1-405B-Instruct-FP8-KV": "meta-llama/Llama-3.1-405B-Instruct",
    "neuralmagic/Meta-Llama-3-8B-Instruct-FP8": "meta-llama/Meta-Llama-3-8B",
    "nvidia/Llama-3.1-8B-Instruct-FP4-V2": "meta-llama/Llama-3.1-8B-Instruct",
    "openai/gpt-oss-120b-MXFP4-Preview": "openai/gpt-oss-120b",
    "Qwen/Qwen3-32B-GPTQ-Int4": "Qwen/Qwen3-32B",
    "TheBloke/Llama-2-70B-Chat-AWQ": "meta-llama/Llama-2-70b-hf",
    "Qwen/Qwen3-235B-A22B": "Qwen/Qwen3-235B-A22B-Instruct-2507",
    "deepseek-ai/DeepSeek-R1": "deepseek-ai/DeepSeek-R1",
    "llama2-70b": "meta-llama/Llama-2-70b-hf",
    "llama2-13b": "meta-llama/Llama-2-13b-hf",
    "llama2-7b": "meta-llama/Llama-2-7b-hf",
    "bloom-176b": "bigscience/bloom-176b",
    "internlm-20b": "internlm/internlm-20b",
    "Llama-3.1-8B-Instruct": "meta-llama/Llama-3.1-8B-Instruct",
}


@pytest.mark.parametrize("name,row", MODELS.items())
def test_model_spellings_reach_their_catalog_row(name, row):
    facts, route = CAT.resolve_model(name)
    assert facts["model"] == row and route.startswith("catalog"), route


def test_a_size_in_the_name_is_the_last_resort_and_says_so():
    facts, route = CAT.resolve_model("acme/Mystery-34B-Instruct")
    assert facts["params_b"] == 34 and route.startswith("size parsed") and "estimated" in route
    assert size_from_name("mixtral-8x22b") == (176.0, 176.0)
    assert size_from_name("qwen3-30b-a3b-instruct") == (30.0, 3.0)
    assert size_from_name("phi-4") is None and size_from_name("deepseek-v2-lite") is None
    with pytest.raises(UnknownModelError, match="no size in its name.*--model-config"):
        CAT.resolve_model("acme/mystery")
    # DeepSeek-V2 keeps its version: -v2 is dropped only after a quantisation suffix.
    with pytest.raises(UnknownModelError):
        CAT.resolve_model("deepseek-ai/DeepSeek-V2-Lite")


def test_precision_from_the_name():
    assert precision_from_name("nvidia/Llama-3.1-8B-Instruct-FP8") == "fp8"
    assert precision_from_name("TheBloke/Llama-2-70B-Chat-AWQ") == "awq"
    assert precision_from_name("Qwen/Qwen3-32B-GPTQ-Int4") == "gptq"
    assert precision_from_name("openai/gpt-oss-120b-MXFP4-Preview") == "mxfp4"
    assert precision_from_name("meta-llama/Llama-3.1-8B-Instruct") is None


@pytest.mark.parametrize("spelling,name", [
    ("NVIDIA H100-SXM5-80GB", "H100"), ("Nvidia H100 GPU", "H100"), ("H100 80GB HBM3", "H100"),
    ("NVIDIA H100-80GB (DGX-H100)", "H100"), ("NVIDIA H100-80GB power-capped (DGX-H100)", "H100"),
    ("H100 PCIe", "H100-PCIE"), ("NVIDIA A100-80GB (DGX-A100)", "A100-80GB"), ("NVIDIA A100-80GB", "A100-80GB"),
    ("A100-SXM4-40GB", "A100"), ("Nvidia A100 GPU", "A100"), ("AMD MI300X-192GB", "MI300X"),
    ("NVIDIA H200-SXM5-141GB", "H200"), ("Nvidia GH200 GPU", "GH200"), ("L4", "L4")])
def test_accelerator_spellings(spelling, name):
    assert CAT.accelerator(spelling)["name"] == name


def test_a_stated_memory_size_must_match():
    with pytest.raises(UnknownAcceleratorError, match="did you mean"):
        CAT.accelerator("NVIDIA H100-40GB")


def test_model_config_counts_the_catalog_facts():
    for file, name, tolerance in (("llama-3.1-8b", "meta-llama/Llama-3.1-8B-Instruct", 0.01),
                                  ("qwen3-30b-a3b", "Qwen/Qwen3-30B-A3B-Instruct-2507", 0.02),
                                  ("deepseek-v3", "deepseek-ai/DeepSeek-V3.1", 0.02),
                                  ("gemma-3-27b", "google/gemma-3-27b-it", 0.02)):
        row = model_from_config("x", json.loads((CONFIGS / f"{file}.json").read_text())).iloc[0]
        known = CAT.model(name)
        assert row["params_b"] == pytest.approx(known["params_b"], rel=tolerance), file
        assert row["active_params_b"] == pytest.approx(known["active_params_b"], rel=0.03), file
    mla = model_from_config("x", json.loads((CONFIGS / "deepseek-v3.json").read_text())).iloc[0]
    assert mla["kv_latent_dim"] == 576 and mla["architecture"] == "moe"


def test_families():
    assert model_family("meta-llama/Llama-3.1-8B-Instruct") == "llama"
    assert model_family("meta-llama/Meta-Llama-3-8B") == "llama"
    assert model_family("Qwen/Qwen3-32B") == "qwen"


def test_spelling_does_not_change_the_prediction(small_model):
    def query(model, hardware):
        return pd.DataFrame({"model": model, "hardware": hardware, "num_gpus": 1, "framework": "vLLM",
                             "precision": "bfloat16", "input_tokens": 1024.0, "output_tokens": 256.0,
                             "batch_size": [8.0, 64.0]})

    plain = small_model.predict_interval(query("meta-llama/Llama-3.1-8B-Instruct", "H100"))
    vendor = small_model.predict_interval(query("nvidia/Llama-3.1-8B-Instruct-FP4-V2", "NVIDIA H100-SXM5-80GB"))
    assert np.allclose(plain.to_numpy(float), vendor.to_numpy(float))


def test_a_typo_is_not_a_new_model():
    with pytest.raises(UnknownModelError, match="did you mean 'meta-llama/Llama-3.1-8B-Instruct'"):
        CAT.resolve_model("meta-llama/Llama-3.1-8B-Instrct")
    # A fine-tune with more words is a new model, sized from its name.
    assert CAT.resolve_model("acme/Llama-3.1-8B-Instruct-medical-finetune")[1].startswith("size parsed")
