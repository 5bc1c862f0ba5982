import numpy as np
import pandas as pd
import pytest

from ala.uncertainty import ConformalCalibrator, stratum


def test_conformal_quantile_covers_exchangeable_scores():
    rng = np.random.default_rng(0)
    cal = np.abs(rng.normal(size=2000))
    calibrator = ConformalCalibrator().fit(cal, np.zeros(2000, int))
    q = calibrator.quantile(0.9, np.zeros(1, int))[0]
    test = np.abs(rng.normal(size=20000))
    assert 0.88 < np.mean(test <= q) < 0.92


def test_strata_fall_back_when_small_and_level_is_checked():
    calibrator = ConformalCalibrator().fit(np.r_[np.ones(100), 5 * np.ones(5)], np.r_[np.zeros(100), np.ones(5)].astype(int))
    # Stratum 1 has 5 scores, too few: it uses all scores.
    assert calibrator.quantile(0.5, np.array([1]))[0] == 1.0
    with pytest.raises(ValueError, match="confidence_level"):
        calibrator.quantile(1.0, np.array([0]))
    assert list(stratum([0, 1, 2, 7], [0, 0, 3, 1], [0, 1, 1, 0])) == [0, 6, 12, 17]
    # A model known by its size alone is its own level when nothing else is known of it.
    assert list(stratum([0, 1, 0], [0, 0, 2], [0, 0, 0], [1, 1, 1])) == [3, 8, 2]


def test_an_accelerator_training_never_measured_is_its_own_level():
    # Siblings and a seen pair imply a measured accelerator; otherwise an unmeasured one
    # is level 4, whether or not the model's facts are estimated.
    got = stratum([0, 0, 1, 3, 0], [0, 0, 0, 0, 2], [0, 1, 0, 0, 0], [0, 0, 1, 0, 0], [0, 0, 0, 1, 1])
    assert list(got) == [4, 1, 9, 15, 2]
    assert list(stratum([0], [0], [0], [1], [1])) == [3]


def test_confidence_falls_with_expected_error():
    rng = np.random.default_rng(1)
    calibrator = ConformalCalibrator().fit(np.abs(rng.normal(size=500)), np.zeros(500, int))
    conf = calibrator.confidence(np.array([0.01, 0.05, 0.2, 1.0]), np.zeros(4, int))
    assert np.all(np.diff(conf) < 0) and conf[0] > 0.95 and conf[-1] < 0.2


def test_size_only_facts_have_their_own_calibration_stratum(small_model):
    """Held-out unseen models asked by size alone fill their own strata (level 3)."""
    from ala.uncertainty import LEVELS

    counts = {s: len(v) for s, v in small_model.calibrator_.scores_.items()}
    assert counts.get(3, 0) >= 30
    # The estimated stratum's scores are its own: intervals for a size-only model come from them.
    q_est, q_unseen = small_model.calibrator_.quantile(0.9, np.array([3, 0]))
    assert q_est != q_unseen and all(s % LEVELS in (0, 1, 2, 3, 4) for s in counts)


def test_a_new_accelerator_is_calibrated_on_whole_accelerators_held_out(small_model):
    """The bundled tables have ten accelerators: the calibration holds them out whole
    (family 2, level 4), and a query on an accelerator training never measured is answered
    from those scores, with a wider interval than the same model on a measured one."""
    from ala.uncertainty import LEVELS

    by_stratum, _, _ = small_model.calibrator_.families_[2]
    assert set(by_stratum) and all(s % LEVELS == 4 for s in by_stratum)
    assert by_stratum[4].size >= 30
    family_alone = ConformalCalibrator().fit(by_stratum[4], np.full(by_stratum[4].size, 4)).quantile(0.9, np.array([4]))
    assert small_model.calibrator_.quantile(0.9, np.array([4]))[0] >= family_alone[0]
    query = pd.DataFrame([{"model": "meta-llama/Meta-Llama-3-8B", "hardware": hw, "num_gpus": 1, "framework": "vLLM",
                           "precision": "bfloat16", "input_tokens": 1024, "output_tokens": 1024, "batch_size": 64}
                          for hw in ("H100", "H200")])
    frame = small_model._frame(query, None)
    assert frame["stratum"].iloc[0] % LEVELS != 4 and frame["stratum"].iloc[1] % LEVELS == 4
    out = small_model.predict_interval(query)
    width = (out["upper"] - out["lower"]) / out["point"]
    assert width.iloc[1] > width.iloc[0]



def test_a_whole_source_family_widens_the_interval_and_lowers_confidence_where_it_has_scores():
    rng = np.random.default_rng(2)
    pairs, sources = np.abs(rng.normal(size=1000)), 3 * np.abs(rng.normal(size=400))
    scores = np.r_[pairs, sources]
    family = np.r_[np.zeros(1000, int), np.ones(400, int)]
    # Stratum 0 has both families; stratum 5 only pair scores (the source family has 10 there).
    strata = np.r_[np.zeros(990, int), 5 * np.ones(10, int), np.zeros(390, int), 5 * np.ones(10, int)]
    both = ConformalCalibrator().fit(scores, strata, family)
    alone = ConformalCalibrator().fit(pairs, strata[:1000])
    q = both.quantile(0.9, np.array([0, 5]))
    assert q[0] == pytest.approx(ConformalCalibrator().fit(sources[:390], np.zeros(390, int)).quantile(0.9, np.zeros(1, int))[0])
    assert q[0] > 2 * alone.quantile(0.9, np.array([0]))[0]
    # In stratum 5 the source family has 10 scores: it answers from its level's pool.
    assert q[1] >= alone.quantile(0.9, np.array([5]))[0]
    expected = np.array([0.1])
    assert both.confidence(expected, np.array([0]))[0] < alone.confidence(expected, np.array([0]))[0]


def test_a_calibrator_pickled_before_families_answers_as_before():
    rng = np.random.default_rng(3)
    scores, strata = np.abs(rng.normal(size=300)), rng.integers(0, 3, 300)
    new = ConformalCalibrator().fit(scores, strata)
    old = ConformalCalibrator().fit(scores, strata)
    del old.families_
    s = np.array([0, 1, 2])
    np.testing.assert_array_equal(old.quantile(0.9, s), new.quantile(0.9, s))
    np.testing.assert_array_equal(old.confidence(np.full(3, 0.1), s), new.confidence(np.full(3, 0.1), s))


def test_pair_folds_follow_the_curves_pair():
    """Unit: a record's fold is its (model, accelerator) pair's, whether asked with the
    catalog's facts or by size alone; a curve training does not hold gets -1."""
    from ala.records import ESTIMATED_SUFFIX, SCORE_FOLDS, pair_folds

    configs = pd.DataFrame({"model": ["m1", "m1", "m2", "m3", "m4", "m5", "m6"],
                            "hardware": ["H100", "H100", "H100", "A100", "A100", "MI300X", "H100"]},
                           index=pd.Index([f"c{i}" for i in range(7)], name="config_id"))
    records = pd.DataFrame({"config_id": ["c0", "c1", "c1" + ESTIMATED_SUFFIX, "c2", "nope"]})
    folds = pair_folds(configs, records, seed=0)
    assert folds[0] == folds[1] == folds[2] and folds[4] == -1
    every = pair_folds(configs, pd.DataFrame({"config_id": configs.index}), seed=0)
    assert set(every) == set(range(SCORE_FOLDS))  # six pairs over five folds: none empty
    assert np.array_equal(every, pair_folds(configs, pd.DataFrame({"config_id": configs.index}), seed=0))


@pytest.mark.slow
def test_calibration_scores_are_scaled_by_predictors_that_never_learnt_their_pair(table, monkeypatch):
    """Conformal scores need a scale fitted without them: every calibration record's
    expected error comes from an error predictor whose training records hold no curve of
    its (model, accelerator) pair (the annealing holds every curve out at some step, so the
    model's own error predictor has learnt them all)."""
    from ala import ALA, estimator
    from ala.records import ESTIMATED_SUFFIX

    pair_of = {}

    def pairs(records):
        return set(records["config_id"].astype(str).str.removesuffix(ESTIMATED_SUFFIX).map(pair_of))

    calls, inside = [], [False]

    class Spy(estimator.ErrorPredictor):
        def fit(self, records):
            self.pairs_ = pairs(records)
            return super().fit(records)

        def predict(self, records):
            if inside[0]:
                calls.append((self.pairs_, pairs(records), len(records)))
            return super().predict(records)

    real = estimator.ALA._held_out_expected_error

    def scaled(self, learnt, cal, configs, seed):
        pair_of.update((configs["model"] + "|" + configs["hardware"]).set_axis(configs.index.astype(str)))
        inside[0] = True
        try:
            out = real(self, learnt, cal, configs, seed)
        finally:
            inside[0] = False
        scaled.records = len(cal)
        return out

    monkeypatch.setattr(estimator, "ErrorPredictor", Spy)
    monkeypatch.setattr(estimator.ALA, "_held_out_expected_error", scaled)
    ALA(n_estimators=20, n_anneal=4, anneal_estimators=10, random_state=0).fit(table)
    assert len(calls) == 10  # five folds, with and without live points
    assert all(learnt and asked and not (learnt & asked) for learnt, asked, _ in calls)
    assert sum(n for *_, n in calls) == 2 * scaled.records
