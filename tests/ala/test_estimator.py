import concurrent.futures
import pickle

import numpy as np
import pandas as pd
import pytest

from ala import ALA, UnknownAcceleratorError, UnknownModelError
from ala.annealing import anneal_subsets

QUERY = dict(model="meta-llama/Llama-3.1-8B-Instruct", hardware="H100", num_gpus=1, framework="vLLM",
             precision="bfloat16", input_tokens=1024, output_tokens=256)


def query(batches=(1, 8, 32, 128), **over):
    return pd.DataFrame([{**QUERY, **over, "batch_size": b} for b in batches])


def test_predict_interval_is_aligned_and_ordered(small_model):
    q = query()
    q.index = [10, 11, 12, 13]
    out = small_model.predict_interval(q, confidence_level=0.9)
    assert list(out.index) == [10, 11, 12, 13]
    assert (out["lower"] < out["point"]).all() and (out["point"] < out["upper"]).all()
    assert out["confidence"].between(0, 1).all()
    # Throughput grows with batch over this range for a dense 8B model on an H100.
    assert np.all(np.diff(out["point"].to_numpy()) > 0)
    np.testing.assert_allclose(small_model.predict(q), out["point"].to_numpy())


def test_wider_level_gives_wider_interval(small_model):
    q = query()
    narrow = small_model.predict_interval(q, confidence_level=0.5)
    wide = small_model.predict_interval(q, confidence_level=0.95)
    assert (wide["upper"] - wide["lower"] > narrow["upper"] - narrow["lower"]).all()


def test_same_seed_same_result(table):
    subset = table[table["source"].str.startswith("ml-energy")]
    kw = dict(n_estimators=10, n_anneal=3, anneal_estimators=5, random_state=3)
    a = ALA(**kw).fit(subset).predict_interval(query())
    b = ALA(**kw).fit(subset).predict_interval(query())
    pd.testing.assert_frame_equal(a, b)


def test_live_points_pull_prediction_and_narrow_interval(small_model):
    q = query(batches=(16, 32, 64))
    before = small_model.predict_interval(q)
    truth = before["point"].to_numpy() * 1.3  # the deployment runs 30% faster than predicted
    live = query(batches=(4, 8))
    live["throughput_tokens_per_s"] = small_model.predict(live) * 1.3
    after = small_model.predict_interval(q, live=live)
    assert np.all(np.abs(after["point"] / truth - 1) < np.abs(before["point"] / truth - 1))
    assert np.all(np.abs(after["point"] / truth - 1) < 0.1)
    width = lambda f: ((f["upper"] - f["lower"]) / f["point"]).to_numpy()
    # Near the live points the interval narrows. Three doublings beyond them it is the
    # two-live-point stratum's quantile that speaks, calibrated on its own scores: it may be
    # a little wider than the zero-shot one (both cover what they say), never much.
    assert np.all(width(after)[:2] < width(before)[:2])
    assert width(after)[2] < 1.05 * width(before)[2]
    assert (after["k_live"] == 2).all()
    # Expected error never grows with live points; next to them confidence rises. Far
    # from them it is calibrated on its own stratum and may stay where it was.
    assert (after["expected_error"] <= before["expected_error"]).all()
    assert after["confidence"].iloc[0] > before["confidence"].iloc[0]


def test_live_points_with_more_time_behind_them_pin_the_curve_closer(small_model):
    """``evidence_s``: the seconds of observation behind each live row. The interval at the
    observed batches narrows as they grow (down to the drift floor) and the confidence rises;
    far from them the calibrated interval stands."""
    from ala.estimator import EVIDENCE_FLOOR
    from scipy.stats import norm

    q = query(batches=(32, 512))
    live = query(batches=(24, 32, 40))
    live["throughput_tokens_per_s"] = small_model.predict(live) * 1.3
    plain = small_model.predict_interval(q, live=live)
    width = lambda f: ((f["upper"] - f["lower"]) / f["point"]).to_numpy()  # noqa: E731
    widths, confidence = [], []
    for seconds in (30.0, 600.0, 36000.0):
        frame = small_model.predict_interval(q, live=live.assign(evidence_s=seconds))
        widths.append(width(frame)[0])
        confidence.append(frame["confidence"].iloc[0])
        assert width(frame)[0] <= width(plain)[0] + 1e-12
    assert widths[0] > widths[1] > widths[2] and confidence[0] < confidence[1] < confidence[2]
    # No amount of evidence pins it closer than the floor (90%: 1.645 floor sds each side).
    assert widths[2] >= 2 * norm.ppf(0.95) * EVIDENCE_FLOOR * 0.99
    far = small_model.predict_interval(q, live=live.assign(evidence_s=36000.0))
    assert width(far)[1] > 3 * widths[2]  # batch 512, far from 24-40: the calibrated interval


def test_prediction_is_a_pure_function_of_model_and_arguments(small_model):
    """Live points enter only through ``live=``: the same call twice gives the same
    answer, a call without them is unaffected by an earlier call with them, and nothing
    a prediction does changes the pickled model."""
    small_model.__dict__.pop("_facts_memo", None)
    before = pickle.dumps(small_model)
    q = query(batches=(8, 32, 128))
    live = query(batches=(8,))
    live["throughput_tokens_per_s"] = small_model.predict(live) * 0.7
    first = small_model.predict_interval(q, live=live)
    second = small_model.predict_interval(q, live=live)
    pd.testing.assert_frame_equal(first, second)
    assert (first["k_live"] == 1).all()
    assert (small_model.predict_interval(q)["k_live"] == 0).all()
    assert "_facts_memo" in small_model.__dict__  # the memo was used ...
    assert pickle.dumps(small_model) == before  # ... and is not part of the model
    assert not hasattr(small_model, "update") and not hasattr(small_model, "live_")


def test_one_model_shared_by_threads_answers_as_alone(small_model):
    """The operator shares one model across resources with no lock around prediction."""
    queries = [query(batches=(4, 64), hardware=h, num_gpus=n) for h in ("H100", "A100") for n in (1, 2)]
    lives = [q.iloc[:1].assign(throughput_tokens_per_s=1000.0 * (i + 1)) for i, q in enumerate(queries)]
    alone = [small_model.predict_interval(q, live=lv) for q, lv in zip(queries, lives)]
    small_model.__dict__.pop("_facts_memo", None)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        shared = list(pool.map(lambda i: small_model.predict_interval(queries[i % 4], live=lives[i % 4]), range(16)))
    for i, got in enumerate(shared):
        pd.testing.assert_frame_equal(got, alone[i % 4])


def test_explain_names_sources_and_neighbours(small_model):
    info = small_model.explain(query(batches=(8,)))[0]
    assert set(info["parameters"]) == {"a", "b", "c"}
    assert info["parameters"]["c"] > 0
    assert len(info["nearest"]) == 3
    assert info["nearest"][0]["similarity"] >= info["nearest"][-1]["similarity"]
    assert 0 < info["expected_error"] < 2


def test_siblings_are_used_for_a_benchmarked_deployment(small_model, table):
    # Llama-2-7B on one A100 with vLLM is benchmarked at 5 token lengths; ask for a sixth.
    q = query(batches=(16, 32), model="meta-llama/Llama-2-7b-hf", hardware="A100", precision="16bit",
              input_tokens=768, output_tokens=768, batch_semantics="static offline batch")
    out = small_model.predict_interval(q)
    assert (out["n_siblings"] >= 2).all()


def test_unknown_catalog_entries_are_clear_errors(small_model):
    with pytest.raises(UnknownAcceleratorError, match="unknown accelerator 'TPU-v9'"):
        small_model.predict(query(hardware="TPU-v9"))
    with pytest.raises(UnknownModelError, match="unknown model 'acme/secret-1'"):
        small_model.predict(query(model="acme/secret-1"))
    # An unknown model with its size given is predicted, flagged as estimated.
    out = small_model.predict_interval(query(model="acme/secret-1", params_b=8.0))
    assert np.isfinite(out["point"]).all()


def test_fit_rejects_too_little_data(table):
    one = table[table["config_id"] == table["config_id"].iloc[0]]
    with pytest.raises(ValueError, match="at least 4 curves"):
        ALA(n_anneal=2).fit(one)


def test_fit_on_the_smallest_table_it_accepts(table):
    """Two (model, accelerator) pairs with four curves between them fit and answer with an
    interval around the point: some calibration splits then hold nothing out (it crashed
    there, 'need at least one array to concatenate'), and each cross-fitted scale learns
    from the other pair alone."""
    pair = table["model"] + "|" + table["hardware"]
    curves = table.groupby(pair)["config_id"].nunique()
    two = sorted(curves[curves == 2].index)[:2]
    small = table[pair.isin(two)]
    assert small["config_id"].nunique() == 4
    model = ALA(n_estimators=10, n_anneal=3, anneal_estimators=5, random_state=0).fit(small)
    out = model.predict_interval(small.drop(columns=["throughput_tokens_per_s"]).head(3))
    assert (out["lower"] < out["point"]).all() and (out["point"] < out["upper"]).all()


def test_fit_reports_exclusions_and_parameters(small_model):
    assert small_model.excluded_ and small_model.parameters_["success"].all()
    assert {"a", "b", "c", "falling", "r2", "source", "model"} <= set(small_model.parameters_.columns)
    assert small_model.annealing_.nit == 6 and len(small_model.annealing_.records) > 100


def test_annealing_validates_and_is_deterministic():
    with pytest.raises(ValueError, match="n_iter"):
        anneal_subsets(lambda m, s: pd.DataFrame(), np.arange(4), n_iter=0, bins=len, n_bins=2)

    def evaluate(mask, step):
        return pd.DataFrame({"v": np.flatnonzero(~mask) % 3})

    bins = lambda r: r["v"].to_numpy()
    a = anneal_subsets(evaluate, np.arange(40), n_iter=10, bins=bins, n_bins=3, rng=1)
    b = anneal_subsets(evaluate, np.arange(40), n_iter=10, bins=bins, n_bins=3, rng=1)
    assert np.array_equal(a.x, b.x) and a.fun == b.fun and a.nit == 10 and a.success
    assert a.fun <= a.energies.max()


def test_per_configuration_facts_kept_between_predictions_change_nothing(small_model):
    """The features kept per configuration give the answers a fresh computation gives,
    and a catalog override in the row is a different configuration."""
    mixed = pd.concat([query(), query(hardware="A100", num_gpus=2), query(model="acme/secret-1", params_b=8.0)],
                      ignore_index=True)
    small_model.__dict__.pop("_facts_memo", None)
    fresh = small_model.predict_interval(mixed)
    again = small_model.predict_interval(mixed.iloc[::-1])  # served from what was kept, in another order
    pd.testing.assert_frame_equal(fresh, again.loc[fresh.index])
    bigger = small_model.predict(query(model="acme/secret-1", params_b=70.0))
    assert (bigger < fresh["point"].to_numpy()[-4:]).all(), "an override must not be answered from another's facts"


def test_kept_facts_survive_surveys_and_a_small_cache(small_model, monkeypatch):
    import ala.estimator

    survey = pd.concat([query((8,), input_tokens=100 + k) for k in range(70)], ignore_index=True)
    small_model.__dict__.pop("_facts_memo", None)
    many = small_model.predict(survey)  # more configurations than are kept: computed afresh
    monkeypatch.setattr(ala.estimator, "FACTS_KEPT", 2)
    few = np.concatenate([small_model.predict(survey.iloc[i:i + 5]) for i in range(0, 70, 5)])
    np.testing.assert_allclose(few, many)
    assert len(small_model._facts_memo[1]) == 2
    small_model.__dict__.pop("_facts_memo", None)


def test_the_product_query_path_answers_what_evaluation_measures(small_model):
    """ala evaluate asks through Deployment (what ala plan and the operator build): the
    answers equal those for the benchmark rows themselves."""
    from ala.evaluation import product_query

    rows = small_model.training_.groupby(["config_id", "batch_size"], as_index=False).first()
    rows = rows.sample(300, random_state=0).drop(columns=["throughput_tokens_per_s"])
    raw = small_model.predict_interval(rows)
    product = small_model.predict_interval(product_query(rows))
    np.testing.assert_allclose(raw.to_numpy(float), product.to_numpy(float), rtol=1e-12)


def test_benchmarked_curves_are_answered_from_their_measurements(small_model):
    from ala.evaluation import reproduce

    frame = reproduce(small_model)
    assert len(frame) > 1000 and frame["ape"].median() < 0.03 and frame["covered"].mean() > 0.9


def test_a_benchmarked_configuration_beyond_its_largest_batch_follows_its_analytical_curve(small_model):
    """Above the measured range the answer is the paper's curve fitted on the configuration's
    own measurements; inside it, the measurements (not the fit) still answer."""
    from ala.planner import Deployment
    from ala.throughput import ThroughputCurve

    cfg = small_model.configs_.reset_index()
    row = cfg[cfg["source"].str.startswith("argonne")].iloc[0]
    ids = small_model.measured_ids(Deployment.of_benchmark(row).query([1.0]).pipe(small_model._canonical))
    pts = small_model.points_[small_model.points_["config_id"].isin(ids)]
    top = float(pts["batch_size"].max())
    expected = ThroughputCurve().fit(pts["batch_size"].to_numpy(float), pts["throughput"].to_numpy(float))
    beyond = np.array([2 * top, 4 * top])
    got = small_model.predict(Deployment.of_benchmark(row).query(beyond))
    np.testing.assert_allclose(got, expected.predict(beyond), rtol=1e-9)
    inside = small_model.predict(Deployment.of_benchmark(row).query([top]))
    measured = pts.loc[pts["batch_size"] == top, "throughput"].mean()
    assert abs(inside[0] / measured - 1) < 0.05 and abs(inside[0] / expected.predict([top])[0] - 1) < 0.5
