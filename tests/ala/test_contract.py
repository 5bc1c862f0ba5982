"""The scikit-learn contract for the estimator parts that are fitted objects.

``parametrize_with_checks`` does not apply to them, and this says why rather than listing
forty expected failures: ``ThroughputCurve`` takes exactly one feature, the batch size, and
positive throughputs (sklearn's checks fit it on random multi-column X and signed y, so
36 of its 52 checks fail on that alone, none on the contract itself); ``ErrorPredictor``
takes a record table with named columns, not an array; ``ConformalCalibrator`` takes scores
and strata, not (X, y); ``ALA`` takes a benchmark table. The parts of the contract that do
apply are checked here, on each: parameters through ``get_params``/``set_params`` and
``clone``, nothing learned in ``__init__``, ``NotFittedError`` before ``fit``, ``fit``
returning ``self``, a refit giving the same answer, pickling keeping it, and answers not
depending on the order of the rows asked about.
"""

import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from ala.estimator import ALA
from ala.throughput import ThroughputCurve
from ala.uncertainty import RECORD_FEATURES, ConformalCalibrator, ErrorPredictor

BATCH = np.array([1, 2, 4, 8, 16, 32, 64, 128], float)
THPT = 9000 * (1 - 0.9 * np.exp(-0.02 * BATCH))


def _records(n=400, seed=0):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.uniform(0, 1, (n, len(RECORD_FEATURES))), columns=list(RECORD_FEATURES))
    frame["log_error"] = rng.normal(0, 0.1 + 0.3 * frame["sim_max"].to_numpy())
    return frame


@pytest.mark.parametrize("estimator", [ThroughputCurve(fall_tolerance=0.1), ErrorPredictor(random_state=3),
                                       ALA(n_estimators=20, random_state=1)], ids=type)
def test_parameters_round_trip_and_clone(estimator):
    params = estimator.get_params()
    copy = clone(estimator)
    assert copy is not estimator and copy.get_params() == params
    assert type(estimator)(**params).get_params() == params
    assert copy.set_params(**params) is copy
    assert not [k for k in vars(estimator) if k.endswith("_")]  # nothing learned at construction


def test_throughput_curve_contract():
    with pytest.raises(NotFittedError):
        ThroughputCurve().predict(BATCH)
    est = ThroughputCurve()
    assert est.fit(BATCH.reshape(-1, 1), THPT) is est
    first = est.predict(BATCH)
    assert np.array_equal(ThroughputCurve().fit(BATCH, THPT).predict(BATCH), first)  # refit: same answer
    assert np.array_equal(pickle.loads(pickle.dumps(est)).predict(BATCH), first)
    order = np.random.default_rng(0).permutation(BATCH.size)
    assert np.allclose(est.predict(BATCH[order]), first[order])
    assert np.allclose(ThroughputCurve().fit(BATCH[order], THPT[order]).predict(BATCH), first, rtol=1e-6)
    assert 0 < est.score(BATCH, THPT) <= 1  # RegressorMixin's R^2 works on it
    with pytest.raises(ValueError):
        ThroughputCurve().fit(BATCH, -THPT)  # a clear refusal, not a silent fit


def test_error_predictor_contract():
    with pytest.raises(NotFittedError):
        ErrorPredictor().predict(_records())
    est = ErrorPredictor(random_state=0)
    records = _records()
    assert est.fit(records) is est
    first = est.predict(records)
    assert np.array_equal(ErrorPredictor(random_state=0).fit(records).predict(records), first)
    assert np.array_equal(pickle.loads(pickle.dumps(est)).predict(records), first)
    order = np.random.default_rng(1).permutation(len(records))
    assert np.allclose(est.predict(records.iloc[order]), first[order])
    assert (first > 0).all()


def test_conformal_calibrator_contract():
    rng = np.random.default_rng(0)
    scores, strata = rng.exponential(1.0, 600), rng.integers(0, 6, 600)
    est = ConformalCalibrator()
    assert est.fit(scores, strata) is est
    q = est.quantile(0.9, strata[:50])
    order = rng.permutation(50)
    assert np.array_equal(est.quantile(0.9, strata[:50][order]), q[order])
    assert np.array_equal(pickle.loads(pickle.dumps(est)).quantile(0.9, strata[:50]), q)
    assert np.array_equal(clone(est).fit(scores, strata).quantile(0.9, strata[:50]), q)


def test_ala_refuses_before_fit():
    query = pd.DataFrame({"model": "m", "hardware": "H100", "num_gpus": 1, "framework": "vLLM",
                          "precision": "bfloat16", "batch_size": [8.0]})
    with pytest.raises(NotFittedError):
        ALA().predict(query)
