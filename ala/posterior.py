"""Online update: a few live (batch, throughput) points pin a predicted curve.

The prior curve's log-throughput error is a Gaussian process over log batch: a shared
offset plus a part that decorrelates with distance in log batch. Its scale comes from
the error predictor (how wrong the prior is expected to be for this query); its shape
is fitted once, by marginal likelihood, to held-out error curves.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product

import numpy as np


@dataclass(frozen=True)
class ErrorKernel:
    """Covariance of a prior curve's log error between two batch sizes.

    Notes
    -----
    ``k(x, x') = (g s)^2 [w + (1 - w) exp(-(x - x')^2 / (2 l^2))] + n^2 [x = x']`` over
    ``x = log(batch)``, with ``s`` the expected error of the prior, ``w`` the share of
    the error that is a plain offset, ``l`` the decorrelation length and ``n`` the
    measurement noise.
    """

    offset_share: float = 0.8
    length: float = 1.5
    scale: float = 1.25
    noise: float = 0.03

    def __call__(self, x1: np.ndarray, x2: np.ndarray, sd: float) -> np.ndarray:
        d = x1[:, None] - x2[None, :]
        shape = self.offset_share + (1 - self.offset_share) * np.exp(-0.5 * (d / self.length) ** 2)
        return (self.scale * sd) ** 2 * shape


def update_log_curve(query_log_batch: np.ndarray, prior_query: np.ndarray, live_log_batch: np.ndarray,
                     live_residual: np.ndarray, prior_sd: float,
                     kernel: ErrorKernel = ErrorKernel()) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mean and standard deviation of log-throughput at ``query_log_batch``.

    Parameters
    ----------
    query_log_batch, prior_query : ndarray
        Where to predict, and the prior's log-throughput there.
    live_log_batch, live_residual : ndarray
        Live points: log batch and ``log(observed) - log(prior)`` at that batch.
    prior_sd : float
        Expected size of the prior's log error (from the error predictor).

    Notes
    -----
    ``mu = prior + K_ql (K_ll + n^2 I)^-1 r`` and
    ``var = k_qq - K_ql (K_ll + n^2 I)^-1 K_lq + n^2``.
    """
    q = np.asarray(query_log_batch, float)
    prior_query = np.asarray(prior_query, float)
    if len(live_log_batch) == 0:
        return prior_query, np.full(q.shape, float(kernel.scale * prior_sd))
    x = np.asarray(live_log_batch, float)
    r = np.asarray(live_residual, float)
    k_ll = kernel(x, x, prior_sd) + kernel.noise ** 2 * np.eye(x.size)
    k_ql = kernel(q, x, prior_sd)
    solve = np.linalg.solve(k_ll, np.column_stack([r, k_ql.T]))
    mean = prior_query + k_ql @ solve[:, 0]
    var = (kernel.scale * prior_sd) ** 2 - np.sum(k_ql * solve[:, 1:].T, axis=1)
    return mean, np.sqrt(np.clip(var, 1e-10, None) + kernel.noise ** 2)


def fit_kernel(curves: list[tuple[np.ndarray, np.ndarray, float]],
               grid: dict | None = None) -> tuple[ErrorKernel, float]:
    """Kernel maximising the marginal likelihood of held-out error curves.

    Parameters
    ----------
    curves : list of (log_batch, log_error, expected_sd)
        One entry per held-out curve: where it was measured, the prior's log error
        there, and the error predictor's expected error for it.

    Returns
    -------
    (ErrorKernel, float)
        The best kernel on the grid and its mean log likelihood per point.
    """
    grid = grid or {"offset_share": (0.5, 0.7, 0.85, 0.95), "length": (0.5, 1.0, 2.0, 4.0),
                    "scale": (0.8, 1.25, 1.8, 2.6, 3.6), "noise": (0.01, 0.02, 0.04, 0.08, 0.15)}
    usable = [(np.asarray(x, float), np.asarray(e, float), float(s)) for x, e, s in curves if len(x) >= 2]
    if not usable:
        return ErrorKernel(), float("nan")
    best, best_ll = ErrorKernel(), -np.inf
    n_points = sum(len(x) for x, _, _ in usable)
    for w, length, scale, noise in product(*(grid[k] for k in ("offset_share", "length", "scale", "noise"))):
        kernel = ErrorKernel(w, length, scale, noise)
        ll = 0.0
        for x, e, s in usable:
            cov = kernel(x, x, s) + noise ** 2 * np.eye(x.size)
            try:
                chol = np.linalg.cholesky(cov)
            except np.linalg.LinAlgError:
                ll = -np.inf
                break
            z = np.linalg.solve(chol, e)
            ll += -0.5 * z @ z - np.log(np.diag(chol)).sum() - 0.5 * x.size * np.log(2 * np.pi)
        if ll > best_ll:
            best, best_ll = kernel, ll
    return best, best_ll / n_points
