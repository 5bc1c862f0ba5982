"""Online update: a few live (batch, throughput) points pin a predicted curve.

The prior curve's log-throughput error is modelled as a Gaussian process over log batch:
an unknown offset, an unknown tilt, and a smooth wiggle. Live points give its posterior.
"""

from __future__ import annotations

import numpy as np


def _kernel(x1: np.ndarray, x2: np.ndarray, offset: float, tilt: float, wiggle: float,
            length: float, centre: float) -> np.ndarray:
    d = x1[:, None] - x2[None, :]
    return (offset ** 2 + tilt ** 2 * (x1[:, None] - centre) * (x2[None, :] - centre)
            + wiggle ** 2 * np.exp(-0.5 * (d / length) ** 2))


def update_log_curve(query_log_batch: np.ndarray, prior_query: np.ndarray,
                     live_log_batch: np.ndarray, live_residual: np.ndarray, prior_sd: float,
                     noise_sd: float = 0.03, length: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
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
    ``k(x, x') = s^2 + (s/2)^2 (x - m)(x' - m) + (s/2)^2 exp(-(x - x')^2 / (2 l^2))`` with
    ``m`` the mean live log batch; posterior ``mu = prior + K_ql (K_ll + n^2 I)^-1 r``.
    """
    q = np.asarray(query_log_batch, float)
    prior_query = np.asarray(prior_query, float)
    if len(live_log_batch) == 0:
        return prior_query, np.full(q.shape, float(prior_sd))
    x = np.asarray(live_log_batch, float)
    r = np.asarray(live_residual, float)
    centre = float(x.mean())
    args = (prior_sd, 0.5 * prior_sd, 0.5 * prior_sd, length, centre)
    k_ll = _kernel(x, x, *args) + noise_sd ** 2 * np.eye(x.size)
    k_ql = _kernel(q, x, *args)
    solve = np.linalg.solve(k_ll, np.column_stack([r, k_ql.T]))
    mean = prior_query + k_ql @ solve[:, 0]
    var = np.diag(_kernel(q, q, *args)) - np.sum(k_ql * solve[:, 1:].T, axis=1)
    return mean, np.sqrt(np.clip(var, 1e-8, None) + noise_sd ** 2)
