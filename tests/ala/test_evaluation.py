"""The evaluation's own measures: width at equal coverage, the reliability table, and the
annealing ablation (random training subsets against annealed ones, on the same folds)."""

import numpy as np
import pandas as pd
import pytest

from ala import ALA, evaluation
from ala.annealing import anneal_subsets


def _predictions(truth, point, half, confidence=None):
    p = evaluation.Predictions()
    p.add(truth, point, np.full(len(truth), "src"), point * np.exp(-half), point * np.exp(half), confidence)
    return p


def test_width_at_equal_coverage_ignores_calibration_and_rewards_ranking():
    rng = np.random.default_rng(0)
    scale = np.exp(rng.normal(0, 0.5, 4000)) * 0.1  # each prediction's own error scale
    err = rng.normal(0, 1, 4000) * scale
    truth, point = np.exp(err), np.ones(4000)
    sharp = evaluation.summarise(_predictions(truth, point, scale))
    loose = evaluation.summarise(_predictions(truth, point, 3 * scale))  # the same ranking, miscalibrated
    blind = evaluation.summarise(_predictions(truth, point, np.full(4000, scale.mean())))  # no ranking
    assert sharp["coverage"] < 0.9 < loose["coverage"]
    assert sharp["width_at_90"] == pytest.approx(loose["width_at_90"], rel=1e-9)
    assert sharp["width_at_90"] < 0.9 * blind["width_at_90"]
    # Scaled to 90%: exactly that share is covered at the factor found.
    f = np.quantile(np.abs(err) / scale, 0.9)
    assert sharp["width_at_90"] == pytest.approx(np.median(2 * np.sinh(f * scale)), rel=1e-6)


def test_reliability_bins_say_how_often_each_confidence_was_within_ten_percent():
    truth = np.ones(6)
    point = np.array([1.0, 1.05, 1.5, 1.0, 2.0, 0.5])
    confidence = np.array([0.95, 0.92, 0.91, 0.1, 0.05, 0.5])
    rows = evaluation.reliability(_predictions(truth, point, np.full(6, 0.1), confidence))
    by_bin = {r["bin"]: r for r in rows}
    top = by_bin[(0.9, 1.0)]
    assert top["n"] == 3 and top["within"] == pytest.approx(2 / 3) and top["confidence"] == pytest.approx((0.95 + 0.92 + 0.91) / 3)
    assert by_bin[(0.0, 0.2)]["n"] == 2 and by_bin[(0.0, 0.2)]["within"] == 0.5
    assert by_bin[(0.4, 0.6)]["within"] == 0.0 and by_bin[(0.8, 0.9)]["n"] == 0
    assert sum(r["n"] for r in rows) == 6


def test_random_search_draws_every_subset_afresh_and_rejects_unknown_searches():
    with pytest.raises(ValueError, match="search"):
        anneal_subsets(lambda m, s: pd.DataFrame(), np.arange(4), n_iter=2, bins=len, n_bins=2, search="grid")
    masks = {"anneal": [], "random": []}

    def recorder(kind):
        def evaluate(mask, step):
            masks[kind].append(mask.copy())
            return pd.DataFrame({"v": np.flatnonzero(~mask) % 3})
        return evaluate

    bins = lambda r: r["v"].to_numpy()
    for kind in masks:
        a = anneal_subsets(recorder(kind), np.arange(200), n_iter=12, bins=bins, n_bins=3, rng=1, search=kind)
        assert a.nit == 12 and len(a.records) and a.fun <= a.energies.max()
    step = {k: np.mean([np.sum(m1 != m2) for m1, m2 in zip(v, v[1:])]) for k, v in masks.items()}
    # Annealing moves by a few groups from an accepted state; random draws are independent
    # (two draws keeping 80% differ in about 2 * 0.8 * 0.2 = 32% of the groups).
    assert step["anneal"] <= 25 and 45 <= step["random"] <= 85
    assert 0.7 < np.mean(masks["random"]) < 0.9


def test_the_model_refuses_an_unknown_subset_search(table):
    with pytest.raises(ValueError, match="subsets"):
        ALA(subsets="grid", n_anneal=2).fit(table)


def test_task_n_repeats_the_c_and_m_folds_with_random_subsets(table):
    """Small: a slice of the bundled data, tiny ensembles. Only N is asked: it runs the
    folds of C and M, each ALA twice, and the report adds the ablation and reliability."""
    ids = table.groupby("source")["config_id"].unique().map(lambda v: list(v[:30]))
    small = table[table["config_id"].isin([i for v in ids for i in v])]
    results = evaluation.run(small, folds=2, tasks="N", ala_params={"n_anneal": 2, "n_estimators": 10,
                                                                     "anneal_estimators": 10})
    assert set(results) == {"C", "M"}
    for task in ("C", "M"):
        annealed, random = (evaluation.summarise(results[task][m]) for m in ("ALA", "ALA, random subsets"))
        assert annealed["made"] == annealed["asked"] == random["asked"] > 0
        assert np.isfinite(random["width_at_90"]) and random["fit_s"] > 0
    text = evaluation.report(results)
    assert "### Task N: annealed against random training subsets" in text
    assert "| C | random | all |" in text and "### Reliability of the confidence score" in text


def test_task_x_asks_each_curve_beyond_its_kept_batches(table):
    """Small: the two largest batches of every curve of four or more points are asked; the
    curve's smaller batches stay in training, so ALA answers from them (not a guess)."""
    ids = table.groupby("source")["config_id"].unique().map(lambda v: list(v[:25]))
    small = table[table["config_id"].isin([i for v in ids for i in v])]
    results = evaluation.run(small, tasks="X", ala_params={"n_anneal": 2, "n_estimators": 10,
                                                           "anneal_estimators": 10})
    top = small.groupby("config_id")["batch_size"].agg(lambda b: sorted(set(b))[-2:] if b.nunique() >= 4 else [])
    asked = sum(len(v) for v in top)
    x = results["X"]
    for method in ("ALA", "analytical curve", "per-curve interpolation", "gradient boosting"):
        summary = evaluation.summarise(x[method])
        assert summary["asked"] == asked
    assert evaluation.summarise(x["ALA"])["made"] == asked
    # Beyond the batches it was fitted on, the analytical curve is answered for nearly every curve.
    assert evaluation.summarise(x["analytical curve"])["made"] >= 0.9 * asked
    assert evaluation.summarise(x["ALA"])["median_ape"] < 0.5
    assert "### Task X" in evaluation.report(results)


def test_task_u_holds_out_only_curves_whose_input_and_output_differ(table):
    """Small: a slice of the bundled data and of two held-out sources with input != output
    curves; every asked curve has input != output and comes from a held-out source, and the
    lockbox is never asked nor trained on."""
    from ala.benchmarks import group_curves
    from ala.sources import load_held_out

    held = load_held_out()
    extra = held[held["source"].isin(["lmdeploy-a100-static", "splitwise-sim", *evaluation.LOCKBOX_SOURCES])]
    ids = table.groupby("source")["config_id"].unique().map(lambda v: list(v[:15]))
    small = table[table["config_id"].isin([i for v in ids for i in v])]
    said = []
    results = evaluation.run(small, folds=3, tasks="U", held_out=extra, progress=said.append,
                             ala_params={"n_anneal": 2, "n_estimators": 10, "anneal_estimators": 10})
    configs = group_curves(extra).configs
    expected = configs[(configs["input_tokens"] != configs["output_tokens"])
                       & configs["source"].isin(["lmdeploy-a100-static", "splitwise-sim"])]
    asked = results["U"]["ALA"].arrays()
    assert set(asked["source"]) == {"lmdeploy-a100-static", "splitwise-sim"}
    points = extra[extra["config_id"].isin(expected["config_id"])].groupby(["config_id", "batch_size"]).ngroups
    assert asked["truth"].size == points
    for method in ("ALA", "gradient boosting", "nearest-neighbour transfer"):
        summary = evaluation.summarise(results["U"][method])
        assert summary["made"] == summary["asked"] == points
    assert len([m for m in said if m.startswith("task U")]) == 3
    assert "### Task U" in evaluation.report(results)
    # The folds: each deployment's curves spread over them, everything else always trained on.
    full = group_curves(pd.concat([small, extra], ignore_index=True)).configs.set_index("config_id")
    fold = evaluation.shape_folds(full, extra["source"].unique(), 3, np.random.default_rng(0))
    assert set(fold[fold >= 0].index) == set(expected["config_id"])
    assert (fold[full["source"].isin(evaluation.LOCKBOX_SOURCES)] == -1).all()


def test_accelerator_folds_join_spellings_and_skip_the_lockbox():
    from ala.catalog import Catalog
    configs = pd.DataFrame({"hardware": ["A100-SXM4-80GB", "A100-80GB", "A100", "NVIDIA H100 SXM5", "MyChip", "H100"],
                            "source": ["x", "y", "x", "y", "z", evaluation.LOCKBOX_SOURCES[0]]})
    fold = evaluation.accelerator_folds(configs, Catalog.load())
    assert fold.iloc[:5].tolist() == ["A100-80GB", "A100-80GB", "A100", "H100", "MyChip"]
    assert pd.isna(fold.iloc[5])


def test_task_h_holds_each_accelerator_out_whole_across_sources(table):
    """Small: a slice of the bundled data and two held-out sources; every curve outside the
    lockbox is asked exactly once, in the fold of its accelerator, zero-shot and with its two
    smallest batches live; the report has a line per accelerator."""
    from ala.benchmarks import group_curves
    from ala.catalog import Catalog
    from ala.sources import load_held_out

    held = load_held_out()
    extra = held[held["source"].isin(["lmdeploy-a100-static", "splitwise-sim", *evaluation.LOCKBOX_SOURCES])]
    ids = table.groupby("hardware")["config_id"].unique().map(lambda v: list(v[:2]))
    small = table[table["config_id"].isin([i for v in ids for i in v])]
    said = []
    results = evaluation.run(small, tasks="H", held_out=extra, progress=said.append,
                             ala_params={"n_anneal": 2, "n_estimators": 10, "anneal_estimators": 10})
    full = pd.concat([small, extra], ignore_index=True)
    configs = group_curves(full).configs.set_index("config_id")
    fold = evaluation.accelerator_folds(configs, Catalog.load())
    assert len([m for m in said if m.startswith("task H")]) == fold.nunique()
    asked = results["H"]["ALA"].arrays()
    usable = full[full["config_id"].isin(fold.dropna().index)]  # curves outside the lockbox
    expected = usable.groupby(["config_id", "batch_size"]).size().reset_index()["config_id"].map(fold)
    assert sorted(asked["source"]) == sorted(f"{a} held out" for a in expected)
    for method in ("ALA", "gradient boosting"):
        summary = evaluation.summarise(results["H"][method])
        assert summary["made"] == summary["asked"]
    assert evaluation.summarise(results["H k=2"]["ALA"])["made"] > 0
    ablated = evaluation.summarise(results["H k=2"]["ALA, no live hyperbola"])
    assert ablated["made"] == ablated["asked"] == evaluation.summarise(results["H k=2"]["ALA"])["asked"]
    text = evaluation.report(results)
    assert "### Task H" in text and "### Task H k=2" in text
    # A100 and A100-80GB are two accelerators, each on its own line.
    a100 = [line for line in text.splitlines() if line.startswith("| ALA | A100 held out |")]
    assert len(a100) == 2  # zero-shot and k=2
    assert f" {(expected == 'A100').sum()} / {(expected == 'A100').sum()} |" in a100[0]


def test_task_d_reveals_as_many_live_points_as_asked(table):
    """Small: with five live points, task D asks only the batches above each curve's fifth."""
    ids = table.groupby("source")["config_id"].unique().map(lambda v: list(v[:40]))
    small = table[table["config_id"].isin([i for v in ids for i in v])]
    results = evaluation.run(small, folds=2, tasks="D", shots=(5,),
                             ala_params={"n_anneal": 2, "n_estimators": 10, "anneal_estimators": 10})
    assert set(results) == {"D k=5"}
    from ala.benchmarks import group_curves
    points = group_curves(small).points.groupby("config_id").size()
    assert results["D k=5"]["ALA"].arrays()["truth"].size == int((points - 5).clip(lower=0).sum())


def test_the_hyperbola_ablation_is_a_view_of_the_same_fit(small_model, table):
    """``without_hyperbola`` leaves the fitted model as it was and answers inside the live
    points' span as it does (the hyperbola only weighs outside it)."""
    kernels = dict(small_model.kernels_)
    view = evaluation.without_hyperbola(small_model)
    assert small_model.kernels_ == kernels
    assert all(k.shape_weight(1.0) == 0.0 for k in view.kernels_.values())
    curve = table[table["config_id"] == table["config_id"].iloc[0]].sort_values("batch_size")
    live = evaluation.product_query(curve.iloc[[0, -1]])
    inside = evaluation.product_query(curve.iloc[1:-1].drop(columns=["throughput_tokens_per_s"]))
    assert np.allclose(view.predict(inside, live=live), small_model.predict(inside, live=live))
