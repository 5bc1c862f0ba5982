"""The analytical throughput curve ``thpt(bb) = c - a * exp(-b * bb)`` as an estimator."""

from __future__ import annotations

import logging

import numpy as np
from scipy.optimize import least_squares
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted

logger = logging.getLogger(__name__)


def curve(batch: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
    """Generated tokens/s at batch sizes ``batch``: ``c - a * exp(-b * batch)``."""
    return c - a * np.exp(-b * np.asarray(batch, float))


def _check_points(batch, throughput) -> tuple[np.ndarray, np.ndarray]:
    batch = np.asarray(batch, float).ravel()
    throughput = np.asarray(throughput, float).ravel()
    if batch.shape != throughput.shape:
        raise ValueError(f"batch has {batch.size} values but throughput has {throughput.size}.")
    if batch.size < 2:
        raise ValueError(f"a curve needs at least 2 points, got {batch.size}.")
    if not (np.all(np.isfinite(batch)) and np.all(batch > 0)):
        raise ValueError("batch sizes must be finite and positive.")
    if not (np.all(np.isfinite(throughput)) and np.all(throughput > 0)):
        raise ValueError("throughput values must be finite and positive.")
    if np.unique(batch).size < 2:
        raise ValueError("a curve needs at least 2 distinct batch sizes.")
    order = np.argsort(batch)
    return batch[order], throughput[order]


class ThroughputCurve(RegressorMixin, BaseEstimator):
    """Saturating throughput-versus-batch curve fitted by bounded least squares.

    Parameters
    ----------
    fall_tolerance : float, default=0.05
        A curve whose throughput drops more than this fraction below its peak at a larger
        batch is *falling* (KV-cache overflow, preemption): only its rising part is fitted
        and ``peak_batch_`` caps the usable range.

    Attributes
    ----------
    a_, b_, c_ : float
        Fitted scale, rate and saturation throughput.
    covariance_ : ndarray of shape (3, 3)
        Covariance of (a, b, c) from the Jacobian; NaN where the fit is not determined.
    r2_, mape_ : float
        Fit quality on the fitted points (R^2 and mean absolute percentage error).
    falling_ : bool
        Whether throughput fell after its peak.
    peak_batch_ : float
        Batch of the highest measured throughput.
    max_batch_ : float
        Largest batch the fitted curve is meant for (``peak_batch_`` if falling).
    n_fitted_ : int
        Points used by the fit.
    success_ : bool, message_ : str
        Outcome of the optimiser.

    Notes
    -----
    ``thpt(bb) = c - a * exp(-b * bb)`` with ``c > 0``, ``b > 0`` and ``0 <= a <= c`` (no
    negative throughput at batch 0). Residuals are relative, ``(thpt(bb_i) - y_i) / y_i``,
    so small and large batches weigh alike. With two points ``a = c`` is fixed.

    Examples
    --------
    >>> import numpy as np
    >>> bb = np.array([1, 16, 32, 64]); y = 5000 * (1 - np.exp(-0.03 * bb))
    >>> est = ThroughputCurve().fit(bb, y)
    >>> round(est.c_)
    5000
    """

    def __init__(self, fall_tolerance: float = 0.05):
        self.fall_tolerance = fall_tolerance

    def fit(self, X, y) -> "ThroughputCurve":
        """Fit to batch sizes ``X`` (1-D or one column) and throughputs ``y``."""
        batch, thpt = _check_points(np.asarray(X, float).reshape(-1), y)
        peak = int(np.argmax(thpt))
        self.peak_batch_ = float(batch[peak])
        after = thpt[peak + 1:]
        self.falling_ = bool(after.size and after.min() < (1 - self.fall_tolerance) * thpt[peak])
        if self.falling_:
            batch, thpt = batch[: peak + 1], thpt[: peak + 1]
            if batch.size < 2:
                # Peak at the smallest batch: nothing rising to fit; keep the two first points.
                batch, thpt = _check_points(np.asarray(X, float).reshape(-1), y)
                batch, thpt = batch[:2], thpt[:2]
        self.max_batch_ = float(self.peak_batch_ if self.falling_ else batch.max())
        self.n_fitted_ = int(batch.size)
        self._fit_points(batch, thpt)
        return self

    def _fit_points(self, batch: np.ndarray, thpt: np.ndarray) -> None:
        top = float(thpt.max())
        two = batch.size < 3

        def unpack(p):
            c, b = p[0], p[1]
            r = 1.0 if two else p[2]
            return r * c, b, c

        def residuals(p):
            a, b, c = unpack(p)
            return (curve(batch, a, b, c) - thpt) / thpt

        lower = [1e-9 * top, 1e-7] + ([] if two else [0.0])
        upper = [50.0 * top, 20.0] + ([] if two else [1.0])
        best = None
        for scale in (0.3, 1.0, 3.0, 10.0):
            b0 = min(max(scale / batch.max(), 2e-7), 19.0)
            c0 = min(max(top / max(1 - np.exp(-b0 * batch.max()), 1e-3), 1.01 * top), 49.0 * top)
            x0 = [c0, b0] + ([] if two else [0.95])
            res = least_squares(residuals, x0, bounds=(lower, upper), method="trf",
                                x_scale="jac", max_nfev=400)
            if best is None or res.cost < best.cost:
                best = res
        a, b, c = unpack(best.x)
        self.a_, self.b_, self.c_ = float(a), float(b), float(c)
        self.success_ = bool(best.success)
        self.message_ = str(best.message)
        fitted = curve(batch, a, b, c)
        resid = fitted - thpt
        ss_tot = float(np.sum((thpt - thpt.mean()) ** 2))
        self.r2_ = float(1 - np.sum(resid ** 2) / ss_tot) if ss_tot > 0 else 1.0
        self.mape_ = float(np.mean(np.abs(resid) / thpt))
        self.covariance_ = self._covariance(best, batch, two)

    def _covariance(self, res, batch: np.ndarray, two: bool) -> np.ndarray:
        dof = batch.size - res.x.size
        cov = np.full((3, 3), np.nan)
        if dof <= 0:
            return cov
        jac = res.jac
        try:
            inner = np.linalg.inv(jac.T @ jac)
        except np.linalg.LinAlgError:
            return cov
        s2 = 2 * res.cost / dof
        # Relative residuals: scale back to tokens/s by the mean throughput level.
        level = float(np.mean(curve(batch, self.a_, self.b_, self.c_)))
        cov_p = inner * s2 * level ** 2
        c = res.x[0]
        r = 1.0 if two else res.x[2]
        # d(a, b, c) / d(c, b[, r]) with a = r * c.
        jmap = np.array([[r, 0.0], [0.0, 1.0], [1.0, 0.0]]) if two else \
            np.array([[r, 0.0, c], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
        return jmap @ cov_p @ jmap.T

    def predict(self, X) -> np.ndarray:
        """Throughput at batch sizes ``X``."""
        check_is_fitted(self, "c_")
        return curve(np.asarray(X, float).reshape(-1), self.a_, self.b_, self.c_)

    @property
    def params_(self) -> dict[str, float]:
        check_is_fitted(self, "c_")
        return {"a": self.a_, "b": self.b_, "c": self.c_}
