"""The ALA estimator: analytical curves, learning augmentation, annealing, similarity."""

from __future__ import annotations

import collections
import logging
import time
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from .annealing import AnnealingResult, anneal_subsets
from .benchmarks import TableLike, _config_hash, group_curves, read_benchmarks
from .catalog import Catalog
from .database import fit_parameters
from .extrapolation import CurveRegressor
from .features import config_features
from .posterior import fit_kernel, update_log_curve
from .similarity import WorkloadEmbedding
from .throughput import ThroughputCurve
from .uncertainty import ConformalCalibrator, ErrorPredictor, stratum

logger = logging.getLogger(__name__)

_NO_GAP = 9.0
#: Held-out curves used to fit the error kernel (more add time, not accuracy).
_KERNEL_CURVES = 300
#: Folds of the plain random split whose held-out errors calibrate the intervals.
_CALIBRATION_FOLDS = 10
_SIM_BINS = 5
#: Distinct query configurations whose features are kept between predictions.
_FACTS_KEPT = 512
#: Queries with more distinct configurations than this are computed afresh, not kept.
_FACTS_QUERY_ROWS = 64


def _query_configs(table: pd.DataFrame) -> pd.DataFrame:
    """One row per query row, indexed by a configuration key derived from its description."""
    frame = table.copy()
    frame["query_key"] = _config_hash(frame.assign(source="query"))
    return frame


class ALA(BaseEstimator):
    """Throughput-versus-batch prediction with calibrated uncertainty (the ALA framework).

    Parameters
    ----------
    n_estimators : int, default=200
        Trees in each ensemble of the learning augmentation.
    n_anneal : int, default=30
        Training subsets visited by simulated annealing.
    anneal_estimators : int, default=40
        Trees per ensemble for the models fitted on annealing subsets.
    transport : bool, default=True
        Use benchmarked curves of the same deployment at other token lengths.
    random_state : int or None
        Seed for the ensembles and the annealing.

    Attributes
    ----------
    parameters_ : DataFrame
        The parameter database: fitted (a, b, c) per benchmarked configuration.
    excluded_ : list of (config_id, reason)
        Curves left out of the fit and why.
    annealing_ : AnnealingResult
        The subset search and its held-out records.
    fit_seconds_ : float

    Notes
    -----
    ``thpt(bb) = c - a * exp(-b * bb)`` per benchmarked curve; for other configurations a
    learned log-throughput, then an online Gaussian-process update from live points, and
    an interval ``exp(log_pred +/- q * e)`` with ``e`` the predicted error scale and ``q``
    a split-conformal quantile of held-out scaled errors.

    Examples
    --------
    >>> from ala import ALA, load_benchmarks
    >>> model = ALA(random_state=0, n_anneal=4).fit(load_benchmarks())  # doctest: +SKIP
    """

    def __init__(self, n_estimators: int = 200, n_anneal: int = 30, anneal_estimators: int = 40,
                 transport: bool = True, random_state: int | None = None):
        self.n_estimators = n_estimators
        self.n_anneal = n_anneal
        self.anneal_estimators = anneal_estimators
        self.transport = transport
        self.random_state = random_state

    # ------------------------------------------------------------------ fit
    def fit(self, X: TableLike, y: Any = None) -> "ALA":
        """Fit on a benchmark table (DataFrame or CSV path(s)); ``y`` is ignored."""
        start = time.perf_counter()
        table = read_benchmarks(X)
        curves = group_curves(table)
        if len(curves.configs) < 4:
            raise ValueError(f"need at least 4 curves with 2 or more batch sizes, got {len(curves.configs)}.")
        self.catalog_ = Catalog.load()
        configs = curves.configs.set_index("config_id")
        self.excluded_ = list(curves.excluded)
        self.parameters_ = fit_parameters(curves)
        self.features_ = config_features(configs, self.catalog_)
        self.configs_ = configs
        self.points_ = curves.points
        self.training_ = table
        self.regressor_ = CurveRegressor(self.n_estimators, self.transport, self.random_state).fit(
            configs, self.features_, curves.points)
        self.embedding_ = WorkloadEmbedding().fit(self.features_)
        rng = np.random.default_rng(self.random_state)
        self.annealing_ = self._anneal()
        base = self.annealing_.records
        # Pass 1: expected error with no live point; it scales the online update's prior.
        first = ErrorPredictor(self.random_state).fit(base)
        base = base.assign(prior_sd=self._curve_sd(base, first.predict(base)))
        # Errors of a sibling-based prior are small and mostly local, those of a transfer
        # mostly a shared offset: each kind gets its own kernel.
        has_sib = base["n_siblings"].to_numpy() > 0
        self.kernels_ = {kind: fit_kernel(self._error_curves(base[has_sib == kind], rng))[0]
                         for kind in (False, True)}
        shots = self._shot_records(base, rng)
        # Pass 2: expected error given live points too, from the annealing records.
        self.error_predictor_ = ErrorPredictor(self.random_state).fit(pd.concat([base, shots], ignore_index=True))
        # Calibration on plain random splits, apart from the records the predictor learnt from.
        cal = self._calibration_records(rng)
        scores = np.abs(cal["log_error"].to_numpy()) / self._expected_error(cal)
        strata = stratum(cal["k_live"].to_numpy(), cal["n_siblings"].to_numpy(), cal["pair_seen"].to_numpy())
        self.calibrator_ = ConformalCalibrator().fit(scores, strata)
        self.calibration_records_ = len(cal)
        self.live_ = {}
        self.fit_seconds_ = time.perf_counter() - start
        logger.info("fit curves=%d points=%d excluded=%d anneal steps=%d records=%d "
                    "kernels=%s calibration records=%d in %.1fs", len(configs), len(curves.points),
                    len(self.excluded_), self.annealing_.nit, len(base) + len(shots), self.kernels_,
                    len(cal), self.fit_seconds_)
        return self

    def _anneal(self) -> AnnealingResult:
        rng = np.random.default_rng(self.random_state)
        configs, features, points = self.configs_, self.features_, self.points_
        ids = np.asarray(configs.index)
        groups = (configs["model"] + "|" + configs["hardware"]).to_numpy()
        point_groups = points.groupby("config_id").indices
        seed = 0 if self.random_state is None else self.random_state

        def evaluate(mask: np.ndarray, step: int) -> pd.DataFrame:
            step_rng = np.random.default_rng([seed, step])
            # Also hold out single curves inside the subset: their siblings stay in training.
            singles = mask & (step_rng.random(mask.size) < 0.12)
            train = mask & ~singles
            held = np.flatnonzero(~mask)
            if held.size > 150:
                held = step_rng.choice(held, 150, replace=False)
            held = np.concatenate([held, np.flatnonzero(singles)])
            train_ids = ids[train]
            rows = np.concatenate([point_groups[c] for c in train_ids])
            sub_points = points.iloc[rows]
            model = CurveRegressor(self.anneal_estimators, self.transport, seed + step).fit(
                configs.loc[train_ids], features.loc[train_ids], sub_points)
            held_ids = ids[held]
            held_rows = np.concatenate([point_groups[c] for c in held_ids])
            held_points = points.iloc[held_rows]
            return self._records(model, held_points, train)

        def bins(records: pd.DataFrame) -> np.ndarray:
            sim_bin = np.minimum((records["sim_max"].to_numpy() * _SIM_BINS).astype(int), _SIM_BINS - 1)
            return sim_bin * 2 + (records["n_siblings"].to_numpy() > 0)

        return anneal_subsets(evaluate, groups, n_iter=self.n_anneal, bins=bins,
                              n_bins=2 * _SIM_BINS, rng=rng)

    def _records(self, model: CurveRegressor, held_points: pd.DataFrame,
                 train_mask: np.ndarray) -> pd.DataFrame:
        """Held-out error records of ``model`` with no live point, one per held-out point."""
        cfg = self.configs_.loc[held_points["config_id"]]
        feats = self.features_.loc[held_points["config_id"]]
        batch = held_points["batch_size"].to_numpy(float)
        pred = model.predict_log(cfg, feats, batch)
        sim = self.embedding_.summary(feats[~feats.index.duplicated()], mask=train_mask)
        sim = sim.loc[feats.index]
        truth = np.log(held_points["throughput"].to_numpy(float))
        base = self._record_frame(pred, sim, feats, batch, self._seen(cfg, self.configs_[train_mask]))
        base["log_pred"] = pred["log_pred"].to_numpy()
        base["log_truth"] = truth
        base["log_error"] = base["log_pred"] - truth
        base["config_id"] = held_points["config_id"].to_numpy()
        return base

    @staticmethod
    def _curve_sd(records: pd.DataFrame, sd: np.ndarray) -> np.ndarray:
        """Per record, the mean expected error over its curve (one prior scale per curve)."""
        keys = records["config_id"].astype(str) + "#" + records.get("step", 0).astype(str)
        return pd.Series(sd, index=records.index).groupby(keys.to_numpy()).transform("mean").to_numpy()

    @staticmethod
    def _error_curves(base: pd.DataFrame, rng: np.random.Generator) -> list:
        keys = base["config_id"].astype(str) + "#" + base["step"].astype(str)
        groups = list(base.groupby(keys.to_numpy()).indices.values())
        if len(groups) > _KERNEL_CURVES:
            groups = [groups[i] for i in rng.choice(len(groups), _KERNEL_CURVES, replace=False)]
        lb, err, sd = base["log_batch"].to_numpy(), base["log_error"].to_numpy(), base["prior_sd"].to_numpy()
        return [(lb[idx], err[idx], float(sd[idx][0])) for idx in groups]

    def _shot_records(self, base: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        """Records after revealing the 1-3 smallest batches of each held-out curve."""
        frames = []
        keys = base["config_id"].astype(str) + "#" + base["step"].astype(str)
        log_b = base["log_batch"].to_numpy()
        prior = base["log_pred"].to_numpy()
        truth = base["log_truth"].to_numpy()
        sd = base["prior_sd"].to_numpy()
        sib = base["n_siblings"].to_numpy() > 0
        for idx in base.groupby(keys.to_numpy()).indices.values():
            if idx.size < 2:
                continue
            k = int(rng.integers(1, min(3, idx.size - 1) + 1))
            order = idx[np.argsort(log_b[idx])]
            live, rest = order[:k], order[k:]
            mean, _ = update_log_curve(log_b[rest], prior[rest], log_b[live], truth[live] - prior[live],
                                       float(sd[idx[0]]), self.kernels_[bool(sib[idx[0]])])
            upd = base.iloc[rest].copy()
            upd["k_live"] = k
            upd["live_gap"] = np.min(np.abs(log_b[rest][:, None] - log_b[live][None, :]), axis=1)
            upd["log_error"] = mean - truth[rest]
            frames.append(upd)
        return pd.concat(frames, ignore_index=True) if frames else base.iloc[:0]

    def _calibration_records(self, rng: np.random.Generator) -> pd.DataFrame:
        """Held-out records of plain random splits: whole (model, accelerator) pairs out,
        plus single curves whose siblings stay in training."""
        ids = np.asarray(self.configs_.index)
        pairs = (self.configs_["model"] + "|" + self.configs_["hardware"]).to_numpy()
        labels, pair_of = np.unique(pairs, return_inverse=True)
        fold_of_pair = rng.permutation(labels.size) % _CALIBRATION_FOLDS
        point_groups = self.points_.groupby("config_id").indices
        frames = []
        for fold in range(_CALIBRATION_FOLDS):
            held = (fold_of_pair[pair_of] == fold) | (rng.random(ids.size) < 0.12)
            train = ~held
            rows = np.concatenate([point_groups[c] for c in ids[train]])
            model = CurveRegressor(self.anneal_estimators, self.transport,
                                   (self.random_state or 0) + 1000 + fold).fit(
                self.configs_.loc[ids[train]], self.features_.loc[ids[train]], self.points_.iloc[rows])
            held_rows = np.concatenate([point_groups[c] for c in ids[held]])
            base = self._records(model, self.points_.iloc[held_rows], train).assign(step=-1 - fold)
            frames.append(base)
        base = pd.concat(frames, ignore_index=True)
        base["prior_sd"] = self._curve_sd(base, self.error_predictor_.predict(base))
        return pd.concat([base, self._shot_records(base, rng)], ignore_index=True)

    def _configuration_facts(self, unique: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        """Features, similarity summary and what training knows, per distinct query
        configuration (``unique``, indexed by query key).

        They depend on the configuration and the fitted model only, and a running
        operator asks about the same few configurations at every refit: they are kept
        per configuration (the whole row, so that catalog overrides count) until the
        next ``fit``.
        """
        if len(unique) > _FACTS_QUERY_ROWS:  # a survey of many configurations: nothing to reuse
            return self._compute_facts(unique)
        cache = self.__dict__.get("_facts_cache")
        if cache is None or cache[0] is not self.embedding_:
            cache = (self.embedding_, collections.OrderedDict())
            self._facts_cache = cache
        store = cache[1]
        keys = [(index, *(None if isinstance(v, float) and v != v else v for v in row))
                for index, row in zip(unique.index, unique.to_numpy(dtype=object))]
        missing = [i for i, key in enumerate(keys) if key not in store]
        if missing:
            computed = self._compute_facts(unique.iloc[missing])
            for i, position in enumerate(missing):
                store[keys[position]] = tuple(part.iloc[[i]] for part in computed)
        rows = [store[key] for key in keys]
        for key in keys:
            store.move_to_end(key)
        while len(store) > _FACTS_KEPT:  # after reading: this call's rows are the newest
            store.popitem(last=False)
        if len(rows) == 1:
            return rows[0]
        return tuple(pd.concat([row[part] for row in rows]) for part in range(3))

    def _compute_facts(self, unique: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        feats = config_features(unique, self.catalog_)
        return feats, self.embedding_.summary(feats), pd.DataFrame(self._seen(unique, self.configs_),
                                                                    index=unique.index)

    @staticmethod
    def _seen(query: pd.DataFrame, train: pd.DataFrame) -> dict[str, np.ndarray]:
        """What training knows of each query row: its model on its accelerator, the
        model anywhere, the accelerator with any model (1.0 = yes)."""
        models, hardware = train["model"].str.lower(), train["hardware"].str.lower()
        pairs, known_models, known_hw = set(zip(models, hardware)), set(models), set(hardware)
        q_model, q_hw = query["model"].str.lower().to_numpy(), query["hardware"].str.lower().to_numpy()
        return {"pair_seen": np.array([(m, h) in pairs for m, h in zip(q_model, q_hw)], float),
                "model_seen": np.array([m in known_models for m in q_model], float),
                "hardware_seen": np.array([h in known_hw for h in q_hw], float)}

    @staticmethod
    def _record_frame(pred: pd.DataFrame, sim: pd.DataFrame, feats: pd.DataFrame,
                      batch: np.ndarray, seen: dict[str, np.ndarray]) -> pd.DataFrame:
        return pd.DataFrame({
            "sim_max": sim["sim_max"].to_numpy(), "sim_top": sim["sim_top"].to_numpy(),
            "n_siblings": pred["n_siblings"].to_numpy(), **seen,
            "sibling_gap": pred["sibling_gap"].to_numpy(),
            "log_batch": np.log(batch), "k_live": 0, "live_gap": _NO_GAP,
            "static_batch": feats["static_batch"].to_numpy(), "log_gpus": feats["log_gpus"].to_numpy(),
            "log_params": feats["log_params"].to_numpy(), "multimodal": feats["multimodal"].to_numpy(),
            "catalog_estimated": feats["catalog_estimated"].to_numpy(),
            "prior_shift": pred["prior_shift"].to_numpy(),
        })

    # ------------------------------------------------------------ online
    def update(self, live: TableLike) -> "ALA":
        """Add live (batch, throughput) measurements of running deployments.

        Later predictions for the same configuration combine them with the prior.
        """
        check_is_fitted(self, "regressor_")
        table = _query_configs(read_benchmarks(live))
        for key, group in table.groupby("query_key"):
            old = self.live_.get(key)
            new = group[["batch_size", "throughput_tokens_per_s"]]
            self.live_[key] = new if old is None else pd.concat([old, new], ignore_index=True)
        return self

    def clear_live(self) -> "ALA":
        """Forget every live measurement."""
        self.live_ = {}
        return self

    # ----------------------------------------------------------- predict
    def _frame(self, query: TableLike, live: TableLike | None) -> pd.DataFrame:
        check_is_fitted(self, "regressor_")
        table = _query_configs(read_benchmarks(query, measurements=False))
        live_map = dict(self.live_)
        if live is not None:
            lt = _query_configs(read_benchmarks(live))
            for key, group in lt.groupby("query_key"):
                live_map[key] = group[["batch_size", "throughput_tokens_per_s"]]
        unique = table.drop_duplicates("query_key").set_index("query_key")
        feats_u, sim_u, seen_u = self._configuration_facts(unique)
        feats = feats_u.loc[table["query_key"]]
        cfg = unique.loc[table["query_key"]]
        batch = table["batch_size"].to_numpy(float)
        pred = self.regressor_.predict_log(cfg, feats, batch)
        sim = sim_u.loc[table["query_key"]]
        seen = {name: column.loc[table["query_key"]].to_numpy() for name, column in seen_u.items()}
        rec = self._record_frame(pred, sim, feats, batch, seen)
        log_pred = pred["log_pred"].to_numpy().copy()
        log_b = np.log(batch)
        prior_sd = self.error_predictor_.predict(rec)
        for key, idx in table.reset_index(drop=True).groupby("query_key").indices.items():
            points = live_map.get(key)
            if points is None or not len(points):
                continue
            lb = np.log(points["batch_size"].to_numpy(float))
            one = cfg.iloc[[idx[0]] * lb.size]
            prior_live = self.regressor_.predict_log(one, feats.iloc[[idx[0]] * lb.size], np.exp(lb))
            resid = np.log(points["throughput_tokens_per_s"].to_numpy(float)) - prior_live["log_pred"].to_numpy()
            kernel = self.kernels_[bool(rec["n_siblings"].to_numpy()[idx[0]] > 0)]
            log_pred[idx], _ = update_log_curve(log_b[idx], log_pred[idx], lb, resid,
                                                float(np.mean(prior_sd[idx])), kernel)
            rec.loc[idx, "k_live"] = lb.size
            rec.loc[idx, "live_gap"] = np.min(np.abs(log_b[idx][:, None] - lb[None, :]), axis=1)
        rec["log_pred"] = log_pred
        rec["expected_error"] = self._expected_error(rec, without=prior_sd)
        rec["nearest"] = sim["nearest"].to_numpy()
        rec["stratum"] = stratum(rec["k_live"].to_numpy(), rec["n_siblings"].to_numpy(),
                                 rec["pair_seen"].to_numpy())
        rec.index = table.index
        return rec

    def _expected_error(self, records: pd.DataFrame, without: np.ndarray | None = None) -> np.ndarray:
        """Expected |log error| of each record's prediction.

        Live points never make it larger than it was without them (``without``, computed
        here unless the caller has it): a wider interval after a measurement would be an
        artefact of the error model, not of the data.
        """
        with_live = self.error_predictor_.predict(records)
        if without is None:
            without = self.error_predictor_.predict(records.assign(k_live=0, live_gap=_NO_GAP))
        return np.minimum(with_live, without)

    def predict(self, X: TableLike, live: TableLike | None = None) -> np.ndarray:
        """Point predictions of generated tokens/s, aligned with the query rows."""
        return np.exp(self._frame(X, live)["log_pred"].to_numpy())

    def predict_interval(self, X: TableLike, confidence_level: float = 0.9,
                         live: TableLike | None = None) -> pd.DataFrame:
        """Point, interval at ``confidence_level`` and confidence score per query row.

        Returns
        -------
        DataFrame
            Aligned with the query rows: ``point``, ``lower``, ``upper`` (tokens/s),
            ``confidence`` (probability of being within 10%, in [0, 1]),
            ``expected_error`` (log scale), ``n_siblings``, ``k_live``.
        """
        frame = self._frame(X, live)
        strata = frame["stratum"].to_numpy()
        q = self.calibrator_.quantile(confidence_level, strata)
        half = q * frame["expected_error"].to_numpy()
        log_pred = frame["log_pred"].to_numpy()
        return pd.DataFrame({
            "point": np.exp(log_pred), "lower": np.exp(log_pred - half), "upper": np.exp(log_pred + half),
            "confidence": self.calibrator_.confidence(frame["expected_error"].to_numpy(), strata),
            "expected_error": frame["expected_error"].to_numpy(),
            "n_siblings": frame["n_siblings"].to_numpy(int), "k_live": frame["k_live"].to_numpy(int),
        }, index=frame.index)

    def curve_parameters(self, X: TableLike, live: TableLike | None = None,
                         max_batch: float = 512.0) -> pd.DataFrame:
        """Analytical (a, b, c) of each distinct query configuration.

        The learned log-throughput is evaluated on a log-spaced batch grid up to
        ``max_batch`` and the analytical curve fitted to it.
        """
        first, keys = self._distinct(X)
        grid = np.unique(np.round(np.geomspace(1, max_batch, 12)))
        # One prediction call for every configuration's grid, then one fit per curve.
        query = first.loc[first.index.repeat(grid.size)].reset_index(drop=True).assign(
            batch_size=np.tile(grid, len(first)))
        y = self.predict(query, live).reshape(len(first), grid.size)
        rows = []
        for curve_y in y:
            est = ThroughputCurve().fit(grid, curve_y)
            rows.append({"a": est.a_, "b": est.b_, "c": est.c_, "fit_mape": est.mape_})
        return pd.DataFrame(rows, index=keys)

    @staticmethod
    def _distinct(X: TableLike) -> tuple[pd.DataFrame, np.ndarray]:
        """The first query row of each distinct configuration, and their keys."""
        table = _query_configs(read_benchmarks(X, measurements=False))
        first = table.drop_duplicates("query_key").reset_index(drop=True)
        return first.drop(columns=["query_key"]), first["query_key"].to_numpy()

    def explain(self, X: TableLike, live: TableLike | None = None, top: int = 3) -> list[dict]:
        """Why each distinct configuration of the query got its prediction.

        Per configuration: the analytical parameters, where the prediction came from
        (siblings or the global regressor), the nearest observed configurations with
        their similarity, the expected error and the live points used.
        """
        first, _ = self._distinct(X)
        params = self.curve_parameters(first, live)
        frame = self._frame(first, live)
        feats = config_features(first, self.catalog_)
        sim = self.embedding_.similarity(feats)
        out = []
        for i in range(len(first)):
            order = np.argsort(-sim[i])[:top]
            neighbours = [{"config_id": str(self.embedding_.ids_[j]),
                           "model": self.configs_.loc[self.embedding_.ids_[j], "model"],
                           "hardware": self.configs_.loc[self.embedding_.ids_[j], "hardware"],
                           "num_gpus": int(self.configs_.loc[self.embedding_.ids_[j], "num_gpus"]),
                           "workload": self.configs_.loc[self.embedding_.ids_[j], "workload"],
                           "similarity": round(float(sim[i, j]), 4)} for j in order]
            n_sib = int(frame["n_siblings"].iloc[i])
            out.append({
                "model": first.loc[i, "model"], "hardware": first.loc[i, "hardware"],
                "parameters": {k: float(params.iloc[i][k]) for k in ("a", "b", "c")},
                "source": (f"{n_sib} sibling curve(s) of the same deployment, blended with the global regressor"
                           if n_sib else "global regressor (no benchmarked sibling)"),
                "similarity": float(frame["sim_max"].iloc[i]),
                "expected_error": float(frame["expected_error"].iloc[i]),
                "live_points": int(frame["k_live"].iloc[i]),
                "nearest": neighbours,
            })
        return out
