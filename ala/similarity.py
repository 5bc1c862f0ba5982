"""Vector-space similarity between a query workload and the observed ones.

Configurations are embedded as standardised feature vectors; similarity is a Gaussian
kernel of their distance, 1 for the same configuration and near 0 for a distant one.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Feature groups and their weight in the distance: what the deployment *is* counts most.
_WEIGHTS = {"log_params": 2.0, "log_active_params": 2.0, "log_tflops": 1.5, "log_bandwidth": 1.5,
            "log_memory": 1.0, "log_gpus": 1.5, "bytes_per_param": 1.0, "log_input": 1.0,
            "log_output": 1.0, "log_ratio": 0.5, "static_batch": 2.0, "log_kv_bytes": 1.0}
_EXCLUDE = ("t_mem", "t_comp", "t_kv", "kv_capacity", "catalog_estimated")


class WorkloadEmbedding:
    """Standardised, weighted feature vectors and kernel similarity between them.

    Parameters
    ----------
    bandwidth : float
        Kernel width in units of the root-mean-square standardised distance.

    Notes
    -----
    ``sim(q, j) = exp(-||e_q - e_j||^2 / (2 h^2))`` with ``e = w * (x - mean) / std``,
    distances averaged over dimensions so that ``h`` does not depend on their number.
    """

    def __init__(self, bandwidth: float = 0.35):
        self.bandwidth = bandwidth

    def fit(self, features: pd.DataFrame) -> "WorkloadEmbedding":
        cols = [c for c in features.columns if c not in _EXCLUDE]
        frame = features[cols].astype(float)
        self.columns_ = cols
        self.mean_ = frame.mean().fillna(0.0)
        self.scale_ = frame.std().replace(0.0, 1.0).fillna(1.0)
        self.weights_ = pd.Series([_WEIGHTS.get(c, 0.5) for c in cols], index=cols)
        self.observed_ = self.transform(features)
        self.ids_ = np.asarray(features.index)
        return self

    def transform(self, features: pd.DataFrame) -> np.ndarray:
        frame = features[self.columns_].astype(float)
        z = ((frame - self.mean_) / self.scale_).fillna(0.0)
        return (z * self.weights_).to_numpy() / np.sqrt(self.weights_.pow(2).sum())

    def similarity(self, features: pd.DataFrame, mask: np.ndarray | None = None) -> np.ndarray:
        """Similarity of each query row to each observed configuration (rows x observed)."""
        q = self.transform(features)
        obs = self.observed_ if mask is None else self.observed_[mask]
        d2 = (q ** 2).sum(1)[:, None] + (obs ** 2).sum(1)[None, :] - 2 * q @ obs.T
        return np.exp(-np.clip(d2, 0, None) / (2 * self.bandwidth ** 2))

    def summary(self, features: pd.DataFrame, mask: np.ndarray | None = None,
                top: int = 5) -> pd.DataFrame:
        """Per query row: highest similarity, mean of the top ``top``, and the nearest id."""
        sim = self.similarity(features, mask)
        ids = self.ids_ if mask is None else self.ids_[mask]
        if sim.shape[1] == 0:
            return pd.DataFrame({"sim_max": 0.0, "sim_top": 0.0, "nearest": ""}, index=features.index)
        k = min(top, sim.shape[1])
        part = -np.sort(-sim, axis=1)[:, :k]
        return pd.DataFrame({"sim_max": part[:, 0], "sim_top": part.mean(1),
                             "nearest": ids[np.argmax(sim, axis=1)]}, index=features.index)
