"""The held-out sources: the shipped copy converts into the benchmark schema with names as
the sources spell them, and task S holds each source out whole through the product path."""

import numpy as np
import pandas as pd
import pytest

from ala.benchmarks import BenchmarkError, group_curves, load_benchmarks
from ala.catalog import Catalog
from ala.evaluation import LOCKBOX_SOURCES, product_query, source_folds
from ala.sources import convert, engine, held_out_path, load_held_out, weight_precision


@pytest.fixture(scope="module")
def held():
    return load_held_out()


def test_the_shipped_copy_converts_with_every_source_and_no_power_capped_duplicates(held):
    raw = pd.read_csv(held_out_path(), dtype=str, keep_default_na=False)
    capped = raw["hardware"].str.contains("power-capped").sum()
    assert capped == 76 and len(held) == len(raw) - capped
    assert set(held["source"]) == set(raw["source"])
    assert (held["throughput_tokens_per_s"] > 0).all()
    # The shipped model never trains on it.
    assert not set(held["source"]) & set(load_benchmarks()["source"])


def test_online_runs_group_by_their_nominal_lengths_into_curves(held):
    curves = group_curves(held)
    by_source = curves.configs.groupby("source").size()
    # 4 PD ratios x 5 nominal (in, out) pairs, one lost to a single concurrency.
    assert by_source["dstack-pd-ratio"] == 19
    pd_rows = held[held["source"] == "dstack-pd-ratio"]
    assert pd_rows.groupby("config_id")["output_tokens"].nunique().max() > 1  # measured lengths kept


def test_every_curve_is_asked_through_deployment_without_a_refusal(held):
    catalog = Catalog.load()
    query = product_query(held.drop(columns=["throughput_tokens_per_s"]))
    assert len(query) == len(held)
    for name in held["model"].unique():
        catalog.resolve_model(name)
    for name in held["hardware"].unique():
        catalog.accelerator(name)


@pytest.mark.parametrize("text, expected", [
    ("Weight = int8_sq, KV Cache = fp8", "int8"), ("Weight = full_prec, KV Cache = int8", "16bit"),
    ("model default (MXFP4 MoE weights)", "mxfp4"), ("fp8 weights + fp8 KV (AMD Quark)", "fp8"),
    ("bf16", "bfloat16"), ("fp16 (paper default)", "16bit")])
def test_the_weight_precision_is_read_from_the_description(text, expected):
    assert weight_precision(text) == expected


def test_the_engine_is_read_and_the_rest_kept_as_variant():
    assert engine("SGLang PD-disaggregated 1P3D (TP2 per worker, NIXL)") == \
        ("SGLang", "PD-disaggregated 1P3D (TP2 per worker, NIXL)")
    assert engine("TensorRT-LLM [PP]") == ("TensorRT-LLM", "[PP]")
    assert engine("unspecified (Splitwise profiling)")[0] == "unspecified"


def test_a_malformed_file_is_refused_naming_the_row_and_column(tmp_path):
    raw = pd.read_csv(held_out_path(), dtype=str, keep_default_na=False).head(5)
    bad = raw.copy()
    bad.loc[2, "precision"] = "mystery"
    with pytest.raises(BenchmarkError, match=r"row 4, column 'precision'"):
        convert(bad, "f.csv")
    bad = raw.copy()
    bad.loc[1, "throughput_tokens_per_s"] = "-3"
    with pytest.raises(BenchmarkError, match="throughput_tokens_per_s"):
        convert(bad, "f.csv")
    with pytest.raises(BenchmarkError, match="missing column"):
        convert(raw.drop(columns=["load_kind"]), "f.csv")
    path = tmp_path / "x.csv"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(BenchmarkError, match="x.csv"):
        load_held_out(path)


def test_the_lockbox_is_never_a_development_fold(held):
    configs = group_curves(pd.concat([load_benchmarks(), held], ignore_index=True)).configs
    development, lockbox = source_folds(configs, False), source_folds(configs, True)
    assert set(lockbox) == set(LOCKBOX_SOURCES) and not set(development) & set(lockbox)
    assert len(development) == 9  # 2 bundled sources + 7 held-out ones


def test_task_s_holds_each_source_out_whole_and_answers_every_point(table, held):
    """Small: a slice of every source, tiny ensembles; each fold trains on the others only."""
    from ala import evaluation

    def slice_of(frame, per_source):
        ids = frame.groupby("source")["config_id"].unique().map(lambda v: list(v[:per_source]))
        return frame[frame["config_id"].isin([i for v in ids for i in v])]

    small, extra = slice_of(table, 15), slice_of(held[held["source"].isin(
        ["lmdeploy-a100-static", "splitwise-sim", *LOCKBOX_SOURCES])], 8)
    said = []
    results = evaluation.run(small, tasks="S", held_out=extra, ala_params={"n_anneal": 2, "n_estimators": 10,
                                                                          "anneal_estimators": 10},
                             progress=said.append)
    folds = [m for m in said if m.startswith("task S")]
    assert len(folds) == 4 and not any(tag in m for m in folds for tag in LOCKBOX_SOURCES)
    for method in ("ALA", "gradient boosting"):
        for task in ("S", "S k=2"):
            summary = evaluation.summarise(results[task][method])
            assert summary["made"] == summary["asked"] > 0
    asked = set(results["S"]["ALA"].arrays()["source"])
    assert asked == set(small["source"]) | {"lmdeploy-a100-static", "splitwise-sim"}
    assert "### Task S k=2" in evaluation.report(results)


def test_a_curve_with_the_same_token_sum_but_another_shape_is_neither_the_same_nor_a_sibling(table, held):
    """LMDeploy's llama2-7b was measured at 128/2048 and 2048/128: as many tokens per request,
    one decode-bound, the other prefill-bound (about 5x apart here). Trained with 128/2048
    only, asking 2048/128 must not be answered from the 128/2048 measurements."""
    from ala import ALA
    from ala.planner import Deployment

    lm = held[(held["source"] == "lmdeploy-a100-static") & (held["model"] == "llama2-7b")]
    decode_bound = lm[(lm["input_tokens"] == 128) & (lm["output_tokens"] == 2048)]
    prefill_bound = lm[(lm["input_tokens"] == 2048) & (lm["output_tokens"] == 128)]
    alike = lm[(lm["input_tokens"] == 2048) & (lm["output_tokens"] == 2048)]
    some = table[table["config_id"].isin(table["config_id"].unique()[:60])]
    model = ALA(n_estimators=10, n_anneal=2, anneal_estimators=10, random_state=0).fit(
        pd.concat([some, decode_bound, alike], ignore_index=True))

    def ask(rows):
        d = Deployment.of_benchmark(rows.iloc[0])
        return model.predict_interval(d.query(rows["batch_size"].to_list())), rows["throughput_tokens_per_s"].to_numpy()

    answer, truth = ask(prefill_bound)
    assert (answer["n_siblings"] == 0).all()  # 128/2048 and 2048/2048 are other shapes (x16, x16)
    # Not answered from the other shape's measurements (which it would follow within a few %).
    assert np.median(np.abs(answer["point"] / decode_bound["throughput_tokens_per_s"].to_numpy() - 1)) > 0.1
    answer, truth = ask(decode_bound)  # measured: answered from its own points
    np.testing.assert_allclose(answer["point"], truth, rtol=0.05)
