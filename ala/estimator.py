"""The ALA estimator: fit the framework on benchmark tables; predict throughput with
calibrated intervals. Prediction is a pure function of the fitted model and its
arguments: live points enter only through ``live=``.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from . import explanation
from .benchmarks import TableLike, group_curves, query_keys, read_benchmarks
from .catalog import Catalog
from .database import fit_parameters
from .extrapolation import CurveRegressor, context_coordinate, deployment_key, same_shape, shape_coordinate
from .features import config_features
from .memo import BoundedMemo
from .posterior import fit_kernel, fit_shape, shape_ramp, update_log_curve
from .records import (NO_GAP, TrainingSet, annealed_records, calibration_records, curve_sd, error_curves,
                      pair_folds, record_frame, seen, shot_records, whole_groups)
from .similarity import WorkloadEmbedding
from .throughput import ThroughputCurve, curve
from .uncertainty import ConformalCalibrator, ErrorPredictor, stratum

#: Token lengths (input plus output) within this factor count as the same configuration.
SAME_TOKENS = 1.05

#: Live points may say how much observation stands behind them (``evidence_s``: seconds of
#: believed intervals, as the operator accumulates them). One such second is worth
#: ``1 / EVIDENCE_SPACING_S`` of an independent observation of log sd ``EVIDENCE_SCATTER``
#: (neighbouring scrape intervals are correlated), and no amount of it pins the curve closer
#: than ``EVIDENCE_FLOOR`` (the curve drifts, and moves within a batch bin).
EVIDENCE_SCATTER = 0.05
EVIDENCE_SPACING_S = 60.0
EVIDENCE_FLOOR = 0.02
#: A benchmarked configuration asked beyond its largest measured batch is answered from the
#: analytical curve fitted on its measurements, when it has at least this many batch sizes
#: (with two, ``a = c``): task X of ``ala evaluate`` measured it against the learned curve there.
BEYOND_POINTS = 2
#: Log of the relative error the confidence score is about (within 10%).
WITHIN = float(np.log(1.1))

logger = logging.getLogger(__name__)

#: Distinct query configurations whose features are kept between predictions.
FACTS_KEPT = 512
#: Queries with more distinct configurations than this are computed afresh, not kept.
FACTS_QUERY_ROWS = 64
_MEMO_LOCK = threading.Lock()


def _query_configs(table: pd.DataFrame) -> pd.DataFrame:
    """The query rows with their configuration key (``query_key``)."""
    return table.assign(query_key=query_keys(table))


def _with_row_facts(catalog: Catalog, configs: pd.DataFrame) -> Catalog:
    """The catalog extended by the facts benchmark rows carry for models and accelerators it
    lacks, so that a model fitted on a user's rows answers queries that name them."""
    models, accelerators = [], []
    if "params_b" in configs.columns:
        for name, group in configs.dropna(subset=["params_b"]).groupby("model"):
            try:
                catalog.model(name)
            except KeyError:
                active = group["active_params_b"].iloc[0] if "active_params_b" in group else np.nan
                models.append({"model": name, "params_b": float(group["params_b"].iloc[0]),
                               "active_params_b": float(active) if pd.notna(active) else np.nan,
                               "source": "benchmark rows (params_b)"})
    specs = ["peak_bf16_dense_tflops", "memory_bandwidth_tbps", "memory_gb"]
    if set(specs) <= set(configs.columns):
        for name, group in configs.dropna(subset=specs).groupby("hardware"):
            try:
                catalog.accelerator(name)
            except KeyError:
                accelerators.append({"name": name, "aliases": "", "vendor": "",
                                     **{c: float(group[c].iloc[0]) for c in specs},
                                     "source": "benchmark rows"})
    if not models and not accelerators:
        return catalog
    return catalog.extend(accelerators=pd.DataFrame(accelerators) if accelerators else None,
                          models=pd.DataFrame(models) if models else None)


#: Bumped when ``ALA.fit`` computes something else from the same data (a cached model or
#: a saved fitted state of the same version would otherwise keep the old fit).
#: 2: whole-source calibration family; 3: that family only with three or more sources;
#: 4: whole-accelerator family and the "accelerator never measured" stratum; 5: calibration
#: scores scaled by error predictors cross-fitted over pairs; 6: the live points' hyperbola.
FIT_REVISION = 6


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
    subsets : {"anneal", "random"}, default="anneal"
        How the training subsets that teach the error predictor are chosen: simulated
        annealing towards an even cover of similarity and siblings, or unsteered random
        draws of as many subsets (the ablation ``ala evaluate`` task N measures).

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

    #: Models pickled before the parameter existed annealed.
    subsets = "anneal"

    def __init__(self, n_estimators: int = 200, n_anneal: int = 30, anneal_estimators: int = 40,
                 transport: bool = True, random_state: int | None = None, subsets: str = "anneal"):
        self.n_estimators = n_estimators
        self.n_anneal = n_anneal
        self.anneal_estimators = anneal_estimators
        self.transport = transport
        self.random_state = random_state
        self.subsets = subsets

    # ------------------------------------------------------------------ fit
    def fit(self, X: TableLike, y: Any = None, progress=None) -> "ALA":
        """Fit on a benchmark table (DataFrame or CSV path(s)); ``y`` is ignored.

        ``progress(message)``, when given, is called at each stage (``fit_steps()`` calls in
        all: one per annealing subset plus four), for a progress bar.
        """
        say = progress or (lambda message: None)
        if self.subsets not in ("anneal", "random"):
            raise ValueError(f"subsets must be 'anneal' or 'random', got {self.subsets!r}.")
        start = time.perf_counter()
        table = read_benchmarks(X)
        self.catalog_ = _with_row_facts(Catalog.load(), table)
        # Names as queries are spelt after canonicalisation (``NVIDIA A100-80GB`` is
        # ``A100-80GB``, ``llama2-7b`` the catalog's id): a user's own benchmark rows are then
        # found as measurements, siblings and seen pairs of the same deployment asked again.
        table = self._canonical(table)
        curves = group_curves(table)
        if len(curves.configs) < 4:
            raise ValueError(f"need at least 4 curves with 2 or more batch sizes, got {len(curves.configs)}.")
        configs = curves.configs.set_index("config_id")
        self.excluded_ = list(curves.excluded)
        self.parameters_ = fit_parameters(curves)
        self.features_ = config_features(configs, self.catalog_)
        self.configs_ = configs
        self.points_ = curves.points
        self.training_ = table
        self.regressor_ = CurveRegressor(self.n_estimators, self.transport, self.random_state).fit(
            configs, self.features_, curves.points)
        say("curve regressor")
        self.embedding_ = WorkloadEmbedding().fit(self.features_)
        data = TrainingSet(configs, self.features_, curves.points, self.embedding_, self.anneal_estimators,
                           self.transport, 0 if self.random_state is None else self.random_state,
                           config_features(configs, self.catalog_.blinded()))
        rng = np.random.default_rng(self.random_state)
        self.annealing_ = annealed_records(data, self.n_anneal, np.random.default_rng(self.random_state), say,
                                           search=self.subsets)
        base = self.annealing_.records
        # Pass 1: expected error with no live point; it scales the online update's prior.
        first = ErrorPredictor(self.random_state).fit(base)
        say("error predictor")
        base = base.assign(prior_sd=curve_sd(base, first.predict(base)))
        # Errors of a sibling-based prior are small and mostly local, those of a transfer
        # mostly a shared offset: each kind gets its own kernel.
        has_sib = base["n_siblings"].to_numpy() > 0
        held_curves = {kind: error_curves(base[has_sib == kind], rng) for kind in (False, True)}
        kernels = {kind: fit_kernel(held_curves[kind])[0] for kind in (False, True)}
        # How far to trust the live points' own hyperbola (two or more batch sizes): a query
        # without siblings is a deployment training never measured, so its weight is chosen on
        # whole sources or accelerators held out (where the fit's data has them), whose learned
        # curves miss in batch shape as a new deployment's do; one with siblings on the
        # annealing's held-out curves, whose siblings stayed in training as the query's have.
        groups = whole_groups(data)
        unmeasured = pd.concat([g.base[g.base["n_siblings"].to_numpy() == 0] for g in groups] or [pd.DataFrame()],
                               ignore_index=True)
        if len(unmeasured):
            unmeasured = unmeasured.assign(prior_sd=curve_sd(unmeasured, first.predict(unmeasured)))
            held_curves[False] = error_curves(unmeasured, np.random.default_rng([data.seed, 5]))
        self.kernels_ = {kind: fit_shape(held_curves[kind], kernels[kind])[0] for kind in (False, True)}
        shots = shot_records(base, self.kernels_, rng)
        say("live-point records")
        # Pass 2: expected error given live points too, from the annealing records.
        learnt = pd.concat([base, shots], ignore_index=True)
        self.error_predictor_ = ErrorPredictor(self.random_state).fit(learnt)
        # Calibration on held-out splits, each score scaled by a predictor that never learnt its pair.
        cal = calibration_records(data, self.error_predictor_, self.kernels_, rng, groups)
        scores = np.abs(cal["log_error"].to_numpy()) / self._held_out_expected_error(learnt, cal, configs, data.seed)
        strata = stratum(cal["k_live"].to_numpy(), cal["n_siblings"].to_numpy(), cal["pair_seen"].to_numpy(),
                         cal["catalog_estimated"].to_numpy(), cal["hardware_seen"].to_numpy())
        self.calibrator_ = ConformalCalibrator().fit(scores, strata, cal["family"].to_numpy())
        say("calibration")
        self.calibration_records_ = len(cal)
        self.fit_seconds_ = time.perf_counter() - start
        logger.info("fit curves=%d points=%d excluded=%d anneal steps=%d records=%d "
                    "kernels=%s calibration records=%d in %.1fs", len(configs), len(curves.points),
                    len(self.excluded_), self.annealing_.nit, len(base) + len(shots), self.kernels_,
                    len(cal), self.fit_seconds_)
        return self

    def _held_out_expected_error(self, learnt: pd.DataFrame, cal: pd.DataFrame, configs: pd.DataFrame,
                                 seed: int) -> np.ndarray:
        """Expected error of each calibration record from an error predictor that never learnt
        from its (model, accelerator) pair (cross-fitted over ``SCORE_FOLDS`` folds of pairs
        drawn from ``seed``, the training set's).

        The annealing holds every training curve out at some step, so the error predictor has
        learnt each calibration curve's own errors; scores scaled by it are smaller than a new
        deployment's, and the conformal quantile covers less than it says.
        """
        fold_learnt, fold_cal = pair_folds(configs, learnt, seed), pair_folds(configs, cal, seed)
        out = np.empty(len(cal))
        unknown = fold_cal < 0  # a record of no training pair (none today) keeps the full predictor's
        if unknown.any():
            out[unknown] = self._expected_error(cal[unknown])
        for fold in np.unique(fold_cal[fold_cal >= 0]):
            predictor = ErrorPredictor(self.random_state).fit(learnt[fold_learnt != fold])
            out[fold_cal == fold] = self._expected_error(cal[fold_cal == fold], predictor=predictor)
        return out

    def fit_steps(self) -> int:
        """How many times ``fit`` calls its ``progress`` (the bar's length)."""
        return self.n_anneal + 4

    def use_catalog(self, catalog: Catalog) -> "ALA":
        """Answer queries with ``catalog`` (for example the bundled one extended by a user's
        models and accelerators); training features keep the facts they were fitted with."""
        check_is_fitted(self, "regressor_")
        self.catalog_ = catalog
        self.__dict__.pop("_facts_memo", None)  # facts were computed from the old catalog
        self.__dict__.pop("_evidence", None)
        self.__dict__.pop("_names", None)
        return self

    def with_catalog(self, catalog: Catalog) -> "ALA":
        """A view of this fitted model answering with ``catalog`` (see :meth:`use_catalog`);
        this model is left as it is (the view shares its fitted parts)."""
        check_is_fitted(self, "regressor_")
        view = object.__new__(type(self))
        view.__dict__.update(self.__dict__)
        return view.use_catalog(catalog)

    # ------------------------------------------------------- kept facts
    def __getstate__(self) -> dict:
        # The memo is a cache of pure functions of the fitted model: never pickled, so a
        # model pickles to the same bytes before and after any number of predictions.
        state = super().__getstate__()
        state.pop("_facts_memo", None)
        state.pop("_evidence", None)  # the planner's index of what was benchmarked
        state.pop("_names", None)  # catalog spellings, resolved on demand
        state.pop("_point_rows", None)  # rows of each curve in points_, indexed on demand
        state.pop("_curve_fits", None)  # analytical curves of pooled measured curves, fitted on demand
        return state

    def _memo(self) -> BoundedMemo:
        """The memo of per-configuration facts, made once per fit (thread-safe)."""
        with _MEMO_LOCK:
            found = self.__dict__.get("_facts_memo")
            if found is None or found[0] is not self.embedding_:
                found = (self.embedding_, BoundedMemo(FACTS_KEPT))
                self.__dict__["_facts_memo"] = found
        return found[1]

    def _configuration_facts(self, unique: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        """Features, similarity summary and what training knows, per distinct query
        configuration (``unique``, indexed by query key).

        They depend on the configuration and the fitted model only, and a running
        operator asks about the same few configurations at every refit: they are kept
        (keyed by the whole row, so that catalog overrides count) until the next ``fit``.
        """
        if len(unique) > FACTS_QUERY_ROWS:  # a survey of many configurations: nothing to reuse
            return self._compute_facts(unique)
        # The batch of a configuration's first query row is not a fact of the configuration.
        config = unique.drop(columns=["batch_size"], errors="ignore")
        keys = [(index, *(None if isinstance(v, float) and v != v else v for v in row))
                for index, row in zip(config.index, config.to_numpy(dtype=object))]

        def compute(positions: list[int]) -> list[tuple]:
            computed = self._compute_facts(unique.iloc[positions])
            return [tuple(part.iloc[[i]] for part in computed) for i in range(len(positions))]

        rows = self._memo().get_many(keys, compute)
        if len(rows) == 1:
            return rows[0]
        return tuple(pd.concat([row[part] for row in rows]) for part in range(3))

    def _compute_facts(self, unique: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        feats = config_features(unique, self.catalog_)
        return feats, self.embedding_.summary(feats), pd.DataFrame(seen(unique, self.configs_), index=unique.index)

    # ----------------------------------------------------------- predict
    def _canonical(self, table: pd.DataFrame) -> pd.DataFrame:  # also used on the training table
        """Query rows with model and accelerator names as the catalog (and so training)
        spells them: ``NVIDIA H100-SXM5-80GB`` is ``H100``, ``...-Instruct-FP8`` is the
        catalog model, so that siblings and similarity see them. Names the catalog cannot
        place, or knows by a size in the name only, stay as given."""
        names = self.__dict__.setdefault("_names", {})
        catalog = self.catalog_

        def canonical(kind: str, name: str) -> str:
            key = (kind, name)
            if key not in names:
                try:
                    if kind == "hardware":
                        names[key] = str(catalog.accelerator(name)["name"])
                    else:
                        row, route = catalog.resolve_model(name)
                        names[key] = name if route.startswith("size") else str(row["model"])
                except KeyError:
                    names[key] = name
            return names[key]

        out = table.copy()
        for kind in ("model", "hardware"):
            out[kind] = [canonical(kind, str(v)) for v in out[kind]]
        return out

    def _frame(self, query: TableLike, live: TableLike | None) -> pd.DataFrame:
        check_is_fitted(self, "regressor_")
        table = _query_configs(self._canonical(read_benchmarks(query, measurements=False)))
        live_map = {}
        if live is not None:
            lt = _query_configs(self._canonical(read_benchmarks(live)))
            kept = ["batch_size", "throughput_tokens_per_s"] + (["evidence_s"] if "evidence_s" in lt else [])
            live_map = {key: group[kept] for key, group in lt.groupby("query_key")}
        unique = table.drop_duplicates("query_key").set_index("query_key")
        feats_u, sim_u, seen_u = self._configuration_facts(unique)
        feats = feats_u.loc[table["query_key"]]
        cfg = unique.loc[table["query_key"]]
        batch = table["batch_size"].to_numpy(float)
        pred = self.regressor_.predict_log(cfg, feats, batch)
        sim = sim_u.loc[table["query_key"]]
        known = {name: column.loc[table["query_key"]].to_numpy() for name, column in seen_u.items()}
        rec = record_frame(pred, sim, feats, batch, known)
        log_pred = pred["log_pred"].to_numpy().copy()
        log_b = np.log(batch)
        prior_sd = self.error_predictor_.predict(rec)
        k_given = np.zeros(len(table), int)
        evidence_sd = np.full(len(table), np.nan)
        # Deployment key and token coordinates of each distinct configuration, once per call.
        dkeys = dict(zip(unique.index, deployment_key(unique)))
        coords = dict(zip(unique.index, zip(context_coordinate(unique), shape_coordinate(unique))))
        # (rows of the configuration, log batches observed, log throughputs, given by the caller,
        # evidence weights, benchmarked curves answering it)
        jobs = []
        for key, idx in table.reset_index(drop=True).groupby("query_key").indices.items():
            points = live_map.get(key)
            given = points is not None and len(points) > 0
            weight, ids = None, []
            if given:
                observed = (np.log(points["batch_size"].to_numpy(float)),
                            np.log(points["throughput_tokens_per_s"].to_numpy(float)))
                if "evidence_s" in points and points["evidence_s"].notna().all():
                    weight = points["evidence_s"].to_numpy(float)
            else:
                # A configuration that was benchmarked is answered from its measurements: they
                # are observations of it, as live points are (and calibrated the same way).
                ids = self._measured(dkeys[key], *coords[key])
                observed = self._points_of(ids)
                if observed is None:
                    continue
            jobs.append((idx, *observed, given, weight, ids))
        if jobs:
            # The prior at every observed batch in one regressor call (one per configuration is slow).
            at = np.concatenate([np.full(lb.size, idx[0]) for idx, lb, *_ in jobs])
            prior_at = self.regressor_.predict_log(cfg.iloc[at], feats.iloc[at],
                                                   np.exp(np.concatenate([lb for _, lb, *_ in jobs])))["log_pred"]
            prior_at = prior_at.to_numpy()
            k_live, live_gap = rec["k_live"].to_numpy(int).copy(), rec["live_gap"].to_numpy(float).copy()
            siblings = rec["n_siblings"].to_numpy()
            start = 0
            for idx, lb, ly, given, weight, ids in jobs:
                resid = ly - prior_at[start:start + lb.size]
                start += lb.size
                kernel = self.kernels_[bool(siblings[idx[0]] > 0)]
                # A benchmarked configuration asked above its measurements: the analytical curve
                # answers those rows, so the hyperbola is fitted only if some other row is outside
                # the measured span.
                analytic = None if given else self._beyond_measured(log_b[idx], lb, ly, ids)
                shaped = analytic is None or bool(shape_ramp(log_b[idx][~analytic[0]], lb).any())
                if weight is None:
                    log_pred[idx], _ = update_log_curve(log_b[idx], log_pred[idx], lb, resid,
                                                        float(np.mean(prior_sd[idx])), kernel,
                                                        prior_live=ly - resid if shaped else None)
                else:
                    # The deployment's own curve: each point as sure as the time behind it.
                    noise = EVIDENCE_SCATTER * np.sqrt(EVIDENCE_SPACING_S / np.maximum(weight, 1.0))
                    log_pred[idx], sd = update_log_curve(log_b[idx], log_pred[idx], lb, resid,
                                                         float(np.mean(prior_sd[idx])), kernel, noise=noise,
                                                         prior_live=ly - resid)
                    evidence_sd[idx] = np.sqrt(sd ** 2 + EVIDENCE_FLOOR ** 2)
                if analytic is not None:
                    log_pred[idx[analytic[0]]] = analytic[1]
                k_live[idx] = lb.size
                k_given[idx] = lb.size if given else 0
                live_gap[idx] = np.min(np.abs(log_b[idx][:, None] - lb[None, :]), axis=1)
            rec["k_live"], rec["live_gap"] = k_live, live_gap
        rec["log_pred"] = log_pred
        rec["expected_error"] = self._expected_error(rec, without=prior_sd)
        rec["nearest"] = sim["nearest"].to_numpy()
        rec["stratum"] = stratum(rec["k_live"].to_numpy(), rec["n_siblings"].to_numpy(),
                                 rec["pair_seen"].to_numpy(), rec["catalog_estimated"].to_numpy(),
                                 rec["hardware_seen"].to_numpy())
        rec["k_measured"] = rec["k_live"].to_numpy(int)  # live points or, failing them, benchmark points
        rec["k_live"] = k_given
        rec["evidence_sd"] = evidence_sd
        rec.index = table.index
        return rec

    def measured_ids(self, config: pd.DataFrame) -> list:
        """Benchmarked curves of the configuration in the first row of ``config``
        (canonical names): the same deployment (model, accelerator, count, parallelism,
        engine, precision, batch semantics) at token lengths within ``SAME_TOKENS``."""
        first = config.iloc[[0]]
        return self._measured(deployment_key(first).iloc[0], float(context_coordinate(first)[0]),
                              float(shape_coordinate(first)[0]))

    def _measured(self, key: str, u: float, r: float = np.nan) -> list:
        members = self.regressor_.by_key_.get(key)
        if members is None:  # most queries: no curve of this deployment at all
            return []
        # The same input and output lengths within SAME_TOKENS (their sum alone would take
        # 8k/1k for 1k/8k); a curve without a given input length is held to the sum only.
        shapes = getattr(self.regressor_, "shape_", None)
        return [m for m in members if abs(float(self.regressor_.context_[m]) - u) < np.log(SAME_TOKENS)
                and (shapes is None or same_shape(float(shapes[m]), r, SAME_TOKENS ** 2))]

    def _beyond_measured(self, log_b: np.ndarray, lb: np.ndarray, ly: np.ndarray,
                         ids: list) -> tuple[np.ndarray, np.ndarray] | None:
        """Which query rows (log batches ``log_b``) of a configuration benchmarked as the curves
        ``ids`` (measured at log batches ``lb``, log throughputs ``ly``) lie above its largest
        measured batch, and their log throughput on the analytical curve of those measurements
        (the parameter database's fit for one curve, a fit of the pooled points for several);
        None where that curve does not answer.

        The learned curve is flat or wanders where training has few points of this kind; the
        paper's curve, fitted on the configuration's own points, saturates as they do (task X:
        9.9% median error where the learned curve was at 20.6%).
        """
        beyond = log_b > lb.max() + 1e-9
        if not beyond.any() or np.unique(lb).size < BEYOND_POINTS:
            return None
        if len(ids) == 1:
            fitted = self.parameters_.loc[ids[0]]
            params = (fitted["a"], fitted["b"], fitted["c"]) if bool(fitted["success"]) else None
        else:
            params = self._pooled_fit(lb, ly)
        if params is None:
            return None
        return beyond, np.log(np.maximum(curve(np.exp(log_b[beyond]), *params), 1e-9))

    def _pooled_fit(self, lb: np.ndarray, ly: np.ndarray) -> tuple[float, float, float] | None:
        """(a, b, c) fitted on the points of several curves of one configuration (None: no fit),
        kept per point set until the next fit."""
        fits = self.__dict__.setdefault("_curve_fits", {})
        key = (lb.tobytes(), ly.tobytes())
        if key not in fits:
            if len(fits) >= FACTS_KEPT:
                fits.clear()
            try:
                est = ThroughputCurve().fit(np.exp(lb), np.exp(ly))
                fits[key] = (est.a_, est.b_, est.c_) if est.success_ else None
            except ValueError:
                fits[key] = None
        return fits[key]

    def _points_of(self, ids: list) -> tuple[np.ndarray, np.ndarray] | None:
        """Log batch sizes and log throughputs measured on the curves ``ids`` (None: none)."""
        if not ids:
            return None
        rows = self.__dict__.get("_point_rows")
        if rows is None:
            rows = self.__dict__["_point_rows"] = self.points_.groupby("config_id").indices
        pts = self.points_.iloc[np.concatenate([rows[i] for i in ids if i in rows])]
        return np.log(pts["batch_size"].to_numpy(float)), np.log(pts["throughput"].to_numpy(float))

    def _expected_error(self, records: pd.DataFrame, without: np.ndarray | None = None,
                        predictor: ErrorPredictor | None = None) -> np.ndarray:
        """Expected |log error| of each record's prediction, by ``predictor`` (the model's own
        error predictor unless given).

        Live points never make it larger than it was without them (``without``, computed
        here unless the caller has it): a wider interval after a measurement would be an
        artefact of the error model, not of the data.
        """
        predictor = predictor or self.error_predictor_
        with_live = predictor.predict(records)
        if without is None:
            without = predictor.predict(records.assign(k_live=0, live_gap=NO_GAP))
        return np.minimum(with_live, without)

    def predict(self, X: TableLike, live: TableLike | None = None) -> np.ndarray:
        """Point predictions of generated tokens/s, aligned with the query rows.

        ``live``: measured rows (the query's columns plus ``throughput_tokens_per_s``, and
        optionally ``evidence_s``, the seconds of observation behind each row) of running
        deployments; each query configuration uses the rows of its own configuration. Nothing of them is kept: the next call sees only its own ``live``.
        """
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
        confidence = self.calibrator_.confidence(frame["expected_error"].to_numpy(), strata)
        # Where weighted live evidence (``evidence_s``) pins the curve closer than the
        # calibrated interval allows, its own posterior interval and confidence stand.
        own = frame["evidence_sd"].to_numpy()
        has = np.isfinite(own)
        if has.any():
            half = np.where(has, np.minimum(half, norm.ppf(0.5 + confidence_level / 2) * own), half)
            confidence = np.where(has, np.maximum(confidence, 2 * norm.cdf(WITHIN / np.where(has, own, 1.0)) - 1),
                                  confidence)
        log_pred = frame["log_pred"].to_numpy()
        return pd.DataFrame({
            "point": np.exp(log_pred), "lower": np.exp(log_pred - half), "upper": np.exp(log_pred + half),
            "confidence": confidence,
            "expected_error": frame["expected_error"].to_numpy(),
            "n_siblings": frame["n_siblings"].to_numpy(int), "k_live": frame["k_live"].to_numpy(int),
        }, index=frame.index)

    def curve_parameters(self, X: TableLike, live: TableLike | None = None,
                         max_batch: float = 512.0) -> pd.DataFrame:
        """Analytical (a, b, c) of each distinct query configuration (see
        :func:`ala.explanation.curve_parameters`)."""
        return explanation.curve_parameters(self, X, live, max_batch)

    def explain(self, X: TableLike, live: TableLike | None = None, top: int = 3) -> list[dict]:
        """Why each distinct configuration of the query got its prediction (see
        :func:`ala.explanation.explain`)."""
        return explanation.explain(self, X, live, top)
