import numpy as np
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
    assert list(stratum([0, 1, 2, 7], [0, 0, 3, 1], [0, 1, 1, 0])) == [0, 5, 10, 14]
    # A model known by its size alone is its own level when nothing else is known of it.
    assert list(stratum([0, 1, 0], [0, 0, 2], [0, 0, 0], [1, 1, 1])) == [3, 7, 2]


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
    assert q_est != q_unseen and all(s % LEVELS in (0, 1, 2, 3) for s in counts)


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
