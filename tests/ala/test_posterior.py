import pickle

import numpy as np
import pytest

from ala.posterior import (ErrorKernel, fit_hyperbola, fit_shape, hyperbola_log, shape_ramp,
                           update_log_curve)


def _hyperbola(batch, t0, t1):
    return np.log(batch / (t0 + t1 * batch))


def test_two_live_points_fix_the_hyperbola_through_them():
    x = np.log([4.0, 8.0])
    y = _hyperbola(np.exp(x), 0.02, 1e-4)
    theta = fit_hyperbola(x, y, y + 0.5, np.full(2, 0.035))  # a prior half a log unit off
    # The weak prior pulls a little at the per-sequence cost, which two small batches show least.
    assert np.allclose(np.exp(theta), [0.02, 1e-4], rtol=0.05)
    far = np.log([256.0, 2048.0])
    assert np.allclose(hyperbola_log(theta, far), _hyperbola(np.exp(far), 0.02, 1e-4), atol=0.05)
    # One batch size says nothing of the saturation.
    assert fit_hyperbola(np.log([8.0, 8.0]), y, y, np.full(2, 0.035)) is None


def test_proportional_points_keep_a_finite_saturation():
    x = np.log([1.0, 2.0])
    theta = fit_hyperbola(x, np.log([100.0, 205.0]), np.log([90.0, 170.0]), np.full(2, 0.035))
    assert np.all(np.isfinite(theta))
    assert np.exp(hyperbola_log(theta, np.log([1e6])))[0] < 1e7


def test_the_hyperbola_weighs_only_outside_the_live_span():
    assert list(shape_ramp(np.log([2.0, 4.0, 8.0, 8 * np.e, 1000.0]), np.log([2.0, 8.0]))) == \
        [0.0, 0.0, 0.0, 1.0, 1.0]
    x = np.log([2.0, 4.0])
    truth = _hyperbola(np.exp(x), 0.01, 1e-3)
    prior_live = truth - 0.3
    q = np.log([3.0, 1024.0])
    prior_q = _hyperbola(np.exp(q), 0.01, 1e-2) - 0.3  # the prior saturates ten times too early
    plain, sd = update_log_curve(q, prior_q, x, truth - prior_live, 0.3, ErrorKernel())
    shaped, sd2 = update_log_curve(q, prior_q, x, truth - prior_live, 0.3, ErrorKernel(shape_error=1e-6),
                                   prior_live=prior_live)
    assert shaped[0] == plain[0] and np.array_equal(sd, sd2)  # inside the span: the kernel's answer
    want = _hyperbola(1024.0, 0.01, 1e-3)
    assert abs(shaped[1] - want) < 0.02 < abs(plain[1] - want)


def test_a_kernel_pickled_before_the_weight_existed_has_none():
    old = ErrorKernel(0.6, 1.0, 2.0, 0.035)
    state = pickle.loads(pickle.dumps(old))
    del state.__dict__["shape_error"]
    assert state.shape_weight(0.3) == 0.0
    assert ErrorKernel(shape_error=0.3).shape_weight(0.3) == 0.5


def test_fit_shape_trusts_the_hyperbola_only_where_it_predicts_better():
    rng = np.random.default_rng(0)
    batch = np.array([1.0, 2, 4, 8, 16, 32, 64, 128, 256])
    x = np.log(batch)
    wrong_shape, offset_only = [], []
    for _ in range(40):
        t0, t1 = np.exp(rng.uniform(-5, -3)), np.exp(rng.uniform(-9, -7))
        truth = _hyperbola(batch, t0, t1)
        flat = _hyperbola(batch, t0, 20 * t1) + rng.normal(0, 0.3)  # saturates far too early
        wrong_shape.append((x, flat - truth, 0.3, flat))
        shifted = truth + rng.normal(0, 0.3) + 0.1 * np.sin(x)  # right shape, wrong level
        offset_only.append((x, shifted - truth, 0.3, shifted))
    kernel = ErrorKernel(0.9, 2.0, 2.0, 0.035)
    assert fit_shape(wrong_shape, kernel)[0].shape_error <= 0.05  # trust the points' shape
    assert fit_shape(offset_only, kernel)[0].shape_error >= 0.2  # trust the prior's


@pytest.mark.slow
def test_the_hyperbola_weight_of_new_deployments_is_chosen_on_whole_groups_held_out(table, monkeypatch):
    """A query without siblings is a deployment training never measured: its hyperbola
    weight is chosen on whole accelerators (or sources) held out, never on the annealing's
    curves; one with siblings on the annealing's. The whole-group regressors are fitted once
    (the calibration reuses them)."""
    from ala import ALA, estimator, records

    chosen, groups = [], []
    real_fit_shape, real_groups = estimator.fit_shape, records._whole_groups

    def spy_fit_shape(curves, kernel, *args, **kwargs):
        chosen.append(len(curves))
        return real_fit_shape(curves, kernel, *args, **kwargs)

    bases = []
    real_error_curves = estimator.error_curves

    def spy_error_curves(base, rng):
        bases.append(base)
        return real_error_curves(base, rng)

    def spy_groups(*args, **kwargs):
        groups.append(args[2])
        return real_groups(*args, **kwargs)

    monkeypatch.setattr(estimator, "fit_shape", spy_fit_shape)
    monkeypatch.setattr(estimator, "error_curves", spy_error_curves)
    monkeypatch.setattr(records, "_whole_groups", spy_groups)
    model = ALA(n_estimators=20, n_anneal=4, anneal_estimators=10, random_state=0).fit(table)
    assert groups == [2]  # the bundled data: two sources (too few), many accelerators; fitted once
    annealing_nosib, annealing_sib, new = bases
    assert (annealing_sib["n_siblings"] > 0).all() and (annealing_nosib["n_siblings"] == 0).all()
    assert (annealing_sib["step"] >= 0).all()
    assert (new["step"] <= -200).all() and (new["n_siblings"] == 0).all()
    assert len(chosen) == 2 and all(n > 0 for n in chosen)
    assert set(model.kernels_) == {False, True}
