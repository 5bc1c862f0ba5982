"""Parameter database: fitted (a, b, c) of every benchmarked configuration, with provenance."""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pandas as pd

from .benchmarks import CurveSet
from .throughput import ThroughputCurve, curve

logger = logging.getLogger(__name__)

PARAMETER_COLUMNS = ("a", "b", "c", "r2", "mape", "falling", "peak_batch", "usable_batch",
                     "n_fitted", "success", "message")


def fit_parameters(curves: CurveSet) -> pd.DataFrame:
    """Fit the analytical curve to every configuration of ``curves``.

    Returns one row per configuration (indexed by ``config_id``) with the fitted
    parameters, their standard errors, fit quality, the falling-curve cap, and the
    descriptive columns as provenance. A failed fit is kept with ``success=False`` and its
    message, never skipped.
    """
    rows = []
    points = curves.points.groupby("config_id", sort=False)
    for config_id, group in points:
        est = ThroughputCurve()
        record = {"config_id": config_id}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                est.fit(group["batch_size"].to_numpy(), group["throughput"].to_numpy())
        except (ValueError, np.linalg.LinAlgError) as exc:
            record.update(success=False, message=str(exc))
            rows.append(record)
            continue
        std = np.sqrt(np.clip(np.diag(est.covariance_), 0, None))
        record.update(a=est.a_, b=est.b_, c=est.c_, a_se=std[0], b_se=std[1], c_se=std[2],
                      r2=est.r2_, mape=est.mape_, falling=est.falling_,
                      peak_batch=est.peak_batch_, usable_batch=est.max_batch_,
                      n_fitted=est.n_fitted_, success=est.success_, message=est.message_)
        rows.append(record)
    table = pd.DataFrame(rows).set_index("config_id")
    table = curves.configs.set_index("config_id").join(table)
    failed = int((~table["success"].astype(bool)).sum())
    logger.info("parameter database: %d curves, %d falling, %d failed fits, median fit mape=%.1f%%",
                len(table), int(table["falling"].fillna(False).astype(bool).sum()), failed,
                100 * float(table["mape"].median()))
    return table


def evaluate(parameters: pd.DataFrame, config_id: str, batch: np.ndarray) -> np.ndarray:
    """Throughput of a stored configuration at ``batch`` from its fitted parameters."""
    row = parameters.loc[config_id]
    return curve(batch, row["a"], row["b"], row["c"])
