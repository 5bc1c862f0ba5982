"""Learning augmentation: throughput curves for configurations nobody benchmarked.

Two sources, blended by how much the data says about the query:

* a global regressor of log-throughput on (configuration features, log batch), trained on
  every benchmarked point, half directly and half against the roofline reference so that
  it transfers across accelerators and models;
* transport of *sibling* curves: benchmarked curves of the same deployment (model,
  accelerators, engine, precision, parallelism) at other token lengths, interpolated along
  the log-context axis at each batch size.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.ensemble import ExtraTreesRegressor
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline

from .catalog import precision_bytes
from .features import _DEFAULT_INPUT_TOKENS, roofline, row_features

#: Weight of the sibling transport against the global regressor, by number of siblings.
TRANSPORT_WEIGHT = {0: 0.0, 1: 0.5, 2: 0.8}
TRANSPORT_WEIGHT_MANY = 1.0
#: Siblings carry a curve along log(input + output) only between shapes of request alike:
#: input/output ratios within this factor. 128/2048 and 2048/128 hold as many tokens, but
#: one is decode-bound and the other prefill-bound. Curves whose input length is not given
#: (real-prompt sets) have no known ratio and are not held to it.
SAME_SHAPE = 2.0


_DEPLOYMENT_COLUMNS = ("model", "hardware", "num_gpus", "tensor_parallel", "expert_parallel", "data_parallel",
                       "framework", "precision", "batch_semantics")


def deployment_key(configs: pd.DataFrame) -> pd.Series:
    """Key of the deployment a curve belongs to: everything but workload and token lengths."""
    if not len(configs):
        return pd.Series([], dtype=str)
    columns = [configs[c].to_numpy(dtype=object) if c in configs.columns else np.full(len(configs), None, dtype=object)
               for c in _DEPLOYMENT_COLUMNS]
    return pd.Series([_deployment_key(*values) for values in zip(*columns)], index=configs.index, dtype=object)


@functools.lru_cache(maxsize=8192)  # query grids repeat one configuration row after row
def _deployment_key(model, hardware, num_gpus, tensor_parallel, expert_parallel, data_parallel, framework,
                    precision, batch_semantics) -> str:
    try:
        bits = f"{precision_bytes(precision):g}"
    except ValueError:
        bits = str(precision)
    static = "static" in str("" if batch_semantics is None else batch_semantics).lower()
    n = int(num_gpus)
    dp = _count(data_parallel, 1)
    # Missing parallelism means the usual layout: tensor parallel over the replica.
    parts = [model, hardware, n, _count(tensor_parallel, max(n // dp, 1)), _count(expert_parallel, 1), dp,
             framework, bits, static]
    return "|".join("" if (isinstance(p, float) and np.isnan(p)) else str(p).lower() for p in parts)


def _count(value, default: int) -> int:
    value = pd.to_numeric(value, errors="coerce")
    return int(value) if value is not None and np.isfinite(value) else int(default)


def context_coordinate(configs: pd.DataFrame) -> np.ndarray:
    """Log of the tokens a request holds (input plus output), the axis siblings vary along."""
    inp = pd.to_numeric(configs["input_tokens"], errors="coerce").fillna(_DEFAULT_INPUT_TOKENS)
    out = pd.to_numeric(configs["output_tokens"], errors="coerce").fillna(256.0)
    return np.log(inp.to_numpy(float) + out.to_numpy(float))


def shape_coordinate(configs: pd.DataFrame) -> np.ndarray:
    """Log of input over output tokens (NaN where the input length is not given)."""
    inp = pd.to_numeric(configs["input_tokens"], errors="coerce").to_numpy(float)
    out = pd.to_numeric(configs["output_tokens"], errors="coerce").fillna(256.0).to_numpy(float)
    return np.log(inp / out)


def same_shape(a: float, b: float, factor: float = SAME_SHAPE) -> bool:
    """Whether two request shapes (:func:`shape_coordinate`) are within ``factor``, or either unknown."""
    return not (np.isfinite(a) and np.isfinite(b)) or abs(a - b) <= np.log(factor)


@dataclass
class Transport:
    """Sibling-curve estimate at one (query, batch): value, siblings used, nearest distance."""

    value: float
    n_siblings: int
    nearest: float


class CurveRegressor:
    """Predict log-throughput of configurations at batch sizes (the learning augmentation).

    Parameters
    ----------
    n_estimators : int
        Trees in each of the two global ensembles.
    transport : bool
        Use sibling curves of the same deployment where they exist.
    random_state : int or None
        Seed of the tree ensembles.
    """

    def __init__(self, n_estimators: int = 200, transport: bool = True, random_state=None):
        self.n_estimators = n_estimators
        self.transport = transport
        self.random_state = random_state

    def _ensemble(self, seed_offset: int):
        seed = None if self.random_state is None else self.random_state + seed_offset
        return make_pipeline(SimpleImputer(strategy="mean", keep_empty_features=True),
                             ExtraTreesRegressor(n_estimators=self.n_estimators, min_samples_leaf=3,
                                                 max_features=0.5, random_state=seed, n_jobs=1))

    def fit(self, configs: pd.DataFrame, features: pd.DataFrame, points: pd.DataFrame) -> "CurveRegressor":
        """Fit on configurations (indexed by config_id), their features and measured points."""
        feats = features.loc[points["config_id"]]
        batch = points["batch_size"].to_numpy(float)
        X = row_features(feats, batch)
        y = np.log(points["throughput"].to_numpy(float))
        ref = np.log(roofline(feats, batch))
        self.direct_ = self._ensemble(0).fit(X, y)
        self.relative_ = self._ensemble(1).fit(X, y - ref)
        self.keys_ = deployment_key(configs)
        self.context_ = pd.Series(context_coordinate(configs), index=configs.index)
        self.shape_ = pd.Series(shape_coordinate(configs), index=configs.index)
        self.curves_ = {cid: (np.log(g["batch_size"].to_numpy(float)), np.log(g["throughput"].to_numpy(float)))
                        for cid, g in points.groupby("config_id")}
        self.by_key_ = self.keys_.groupby(self.keys_).groups
        return self

    def global_log(self, features: pd.DataFrame, batch: np.ndarray) -> np.ndarray:
        """Global regressor's log-throughput for feature rows aligned with ``batch``."""
        X = row_features(features, batch)
        ref = np.log(roofline(features, batch))
        return 0.5 * (_forest_predict(self.direct_, X) + _forest_predict(self.relative_, X) + ref)

    def _sibling_value(self, cid: str, log_batch: float) -> float:
        xs, ys = self.curves_[cid]
        # Only within the measured range (a little slack): no extrapolation in batch here.
        if log_batch < xs.min() - 0.05 or log_batch > xs.max() + 0.05:
            return np.nan
        return float(np.interp(log_batch, xs, ys))

    def transport_log(self, configs: pd.DataFrame, batch: np.ndarray,
                      exclude: set | None = None) -> list[Transport]:
        """Sibling-curve estimates for configuration rows aligned with ``batch``."""
        keys = deployment_key(configs)
        ctx = context_coordinate(configs)
        shapes = shape_coordinate(configs)
        known = getattr(self, "shape_", None)  # None: fitted before shapes were kept
        out = []
        for key, u, r, bb, cid in zip(keys, ctx, shapes, np.log(np.asarray(batch, float)), configs.index):
            members = [m for m in self.by_key_.get(key, []) if m != cid and not (exclude and m in exclude)
                       and (known is None or same_shape(known[m], r))]
            us, vs = [], []
            for m in members:
                v = self._sibling_value(m, bb)
                if np.isfinite(v):
                    us.append(self.context_[m])
                    vs.append(v)
            out.append(_interpolate(np.array(us), np.array(vs), u))
        return out

    def predict_log(self, configs: pd.DataFrame, features: pd.DataFrame, batch: np.ndarray,
                    exclude: set | None = None) -> pd.DataFrame:
        """Blended log-throughput per row, with what it rests on.

        Columns: ``log_pred``, ``log_global``, ``n_siblings``, ``sibling_gap`` (distance
        to the nearest sibling on the log-context axis) and ``prior_shift`` (how far the
        sibling estimate moved the global one).
        """
        glob = self.global_log(features, batch)
        if self.transport:
            local = self.transport_log(configs, batch, exclude)
        else:
            local = [Transport(np.nan, 0, np.nan)] * len(glob)
        values = np.array([t.value for t in local])
        counts = np.array([t.n_siblings for t in local])
        nearest = np.array([t.nearest for t in local])
        weight = np.array([TRANSPORT_WEIGHT.get(n, TRANSPORT_WEIGHT_MANY) for n in counts])
        # Siblings far away along the context axis say less: fade between 1 and 3 log units.
        weight = weight * np.clip(1.5 - 0.5 * np.nan_to_num(nearest, nan=9.0), 0.0, 1.0)
        blended = np.where(counts > 0, weight * np.nan_to_num(values) + (1 - weight) * glob, glob)
        return pd.DataFrame({"log_pred": blended, "log_global": glob, "n_siblings": counts,
                             "sibling_gap": np.nan_to_num(nearest, nan=9.0),
                             "prior_shift": np.abs(blended - glob)}, index=configs.index)


def _forest_predict(pipeline, X: np.ndarray) -> np.ndarray:
    """Mean of the trees' predictions, without joblib's per-tree overhead.

    Equal to ``pipeline.predict(X)``; for the small batches a planner sends, the
    dispatch per tree costs more than the trees themselves.
    """
    imputer, forest = pipeline[0], pipeline[-1]
    Xt = np.ascontiguousarray(imputer.transform(X), dtype=np.float32)
    total = np.zeros(Xt.shape[0])
    for tree in forest.estimators_:
        total += tree.tree_.predict(Xt).reshape(Xt.shape[0], -1)[:, 0]
    return total / len(forest.estimators_)


def _interpolate(us: np.ndarray, vs: np.ndarray, u: float) -> Transport:
    """Sibling values ``vs`` at context ``us``, read at the query's context ``u``.

    One sibling: its value. Two: the line through them. Three or more: the median of a
    quadratic through the three nearest, the line through the two nearest and a
    quadratic through all, so that one odd sibling cannot drag the estimate.
    """
    n = len(us)
    if n == 0:
        return Transport(np.nan, 0, np.nan)
    order = np.argsort(np.abs(us - u), kind="stable")
    nearest = float(abs(us[order[0]] - u))
    if n == 1 or np.unique(np.round(us, 6)).size == 1:
        return Transport(float(np.mean(vs)), n, nearest)
    i = order[0]
    j = next((k for k in order[1:] if abs(us[k] - us[i]) > 1e-6), None)
    line = vs[i] + (vs[j] - vs[i]) * (u - us[i]) / (us[j] - us[i])
    estimates = [line]
    distinct = np.unique(np.round(us, 6)).size
    if distinct >= 3:
        near3 = order[:3] if np.unique(np.round(us[order[:3]], 6)).size == 3 else order
        estimates.append(np.polyval(np.polyfit(us[near3], vs[near3], 2), u))
        estimates.append(np.polyval(np.polyfit(us, vs, 2), u))
    value = float(np.median(estimates))
    # An estimate must not wander far outside what the siblings span.
    value = float(np.clip(value, vs.min() - 0.7, vs.max() + 0.7))
    return Transport(value, n, nearest)
