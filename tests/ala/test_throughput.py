import numpy as np
import pytest
from sklearn.base import clone

from ala import ThroughputCurve
from ala.throughput import curve


def test_recovers_known_parameters():
    bb = np.array([1, 8, 16, 32, 64, 128, 256], float)
    y = curve(bb, 4000.0, 0.02, 4200.0)
    est = ThroughputCurve().fit(bb, y)
    assert est.c_ == pytest.approx(4200, rel=1e-3)
    assert est.b_ == pytest.approx(0.02, rel=1e-3)
    assert est.a_ == pytest.approx(4000, rel=1e-3)
    assert est.r2_ > 0.999 and est.mape_ < 1e-4 and est.success_
    assert est.covariance_.shape == (3, 3)


def test_real_curve_fits_well(table):
    rows = table[table["config_id"] == "00185a4347"].groupby("batch_size")["throughput_tokens_per_s"].mean()
    est = ThroughputCurve().fit(rows.index.to_numpy(), rows.to_numpy())
    assert not est.falling_
    assert est.mape_ < 0.05
    # Saturation sits near the highest measurement (the exponential bends faster than
    # real curves, so it may sit a little under the last point), not absurdly far.
    assert 0.9 * rows.max() <= est.c_ < 3 * rows.max()


def test_falling_curve_is_capped_at_its_peak(table):
    # Llama-3-8B on 4x MI300X, L=2048: throughput drops after batch 64 (KV cache overflow).
    rows = table[table["config_id"] == "030143285b"].groupby("batch_size")["throughput_tokens_per_s"].mean()
    est = ThroughputCurve().fit(rows.index.to_numpy(), rows.to_numpy())
    assert est.falling_ and est.peak_batch_ == 64 and est.max_batch_ == 64
    assert est.n_fitted_ == 4
    assert est.predict([64])[0] == pytest.approx(rows.loc[64], rel=0.1)


def test_two_points_fix_the_origin():
    est = ThroughputCurve().fit([1, 16], [100.0, 1200.0])
    assert est.a_ == pytest.approx(est.c_)
    assert np.isnan(est.covariance_).all()


@pytest.mark.parametrize("bb,y,msg", [([1], [1.0], "at least 2"), ([1, 2], [1.0, -1.0], "positive"),
                                      ([1, 1], [1.0, 2.0], "distinct"), ([1, 2], [1.0], "but throughput")])
def test_bad_points_raise(bb, y, msg):
    with pytest.raises(ValueError, match=msg):
        ThroughputCurve().fit(bb, y)


def test_estimator_contract():
    est = ThroughputCurve(fall_tolerance=0.1)
    assert clone(est).get_params() == {"fall_tolerance": 0.1}
    from sklearn.exceptions import NotFittedError
    with pytest.raises(NotFittedError):
        est.predict([1])
    assert est.fit([1, 2, 4], [1.0, 1.8, 3.0]) is est
