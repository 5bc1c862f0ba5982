"""Held-out error records: what the error predictor learns from, and what calibrates it.

A record is one held-out (configuration, batch) point of a model trained without it: the
situation it was predicted in (similarity, siblings, what training knew, live points) and
its log error. Simulated annealing over training subsets, few-shot reveals and plain
random splits all produce records through the functions here.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .annealing import AnnealingResult, anneal_subsets
from .extrapolation import CurveRegressor
from .posterior import update_log_curve
from .similarity import WorkloadEmbedding

#: ``live_gap`` of a record with no live point (log-batch distance to the nearest one).
NO_GAP = 9.0
#: Held-out curves used to fit the error kernel (more add time, not accuracy).
KERNEL_CURVES = 300
#: Folds of the plain random split whose held-out errors calibrate the intervals.
CALIBRATION_FOLDS = 10
#: Sources training needs before whole sources are held out for calibration (each split
#: then still trains on two or more).
MIN_SOURCES = 3
#: Accelerators training needs before whole accelerators are held out for calibration.
MIN_ACCELERATORS = 3
#: Splits of the accelerator family (each holds out one or more accelerators whole).
ACCELERATOR_FOLDS = 5
#: Similarity bins the annealing tries to fill evenly (times sibling / no sibling).
SIM_BINS = 5
#: Folds of (model, accelerator) pairs over which the calibration's expected errors are
#: cross-fitted: each score is scaled by an error predictor that never learnt from its pair.
SCORE_FOLDS = 5


@dataclass(frozen=True)
class TrainingSet:
    """What every record factory reads: the benchmarked curves and their features.

    ``configs`` and ``features`` are indexed by config_id; ``points`` holds one row per
    (config_id, batch_size) with its mean ``throughput``.
    """

    configs: pd.DataFrame
    features: pd.DataFrame
    points: pd.DataFrame
    embedding: WorkloadEmbedding
    n_estimators: int
    transport: bool
    seed: int
    #: Features as if each model were known by its size alone (``Catalog.blinded``): held-out
    #: unseen models are also asked that way in the calibration splits, so the calibration
    #: knows the estimated-facts stratum. None: not asked.
    estimated_features: pd.DataFrame | None = None

    def regressor(self, train: np.ndarray, seed: int) -> CurveRegressor:
        """A small regressor trained on the configurations where ``train`` is True."""
        ids = np.asarray(self.configs.index)[train]
        rows = np.concatenate([self._point_rows[c] for c in ids])
        return CurveRegressor(self.n_estimators, self.transport, seed).fit(
            self.configs.loc[ids], self.features.loc[ids], self.points.iloc[rows])

    def held_points(self, held: np.ndarray) -> pd.DataFrame:
        """The points of the configurations at ``held`` (a mask, or positions in order)."""
        ids = np.asarray(self.configs.index)[held]
        return self.points.iloc[np.concatenate([self._point_rows[c] for c in ids])]

    @functools.cached_property
    def _point_rows(self) -> dict:
        return self.points.groupby("config_id").indices


def seen(query: pd.DataFrame, train: pd.DataFrame) -> dict[str, np.ndarray]:
    """What training knows of each query row: its model on its accelerator, the model
    anywhere, the accelerator with any model (1.0 = yes)."""
    models, hardware = train["model"].str.lower(), train["hardware"].str.lower()
    pairs, known_models, known_hw = set(zip(models, hardware)), set(models), set(hardware)
    q_model, q_hw = query["model"].str.lower().to_numpy(), query["hardware"].str.lower().to_numpy()
    return {"pair_seen": np.array([(m, h) in pairs for m, h in zip(q_model, q_hw)], float),
            "model_seen": np.array([m in known_models for m in q_model], float),
            "hardware_seen": np.array([h in known_hw for h in q_hw], float)}


def record_frame(pred: pd.DataFrame, sim: pd.DataFrame, feats: pd.DataFrame, batch: np.ndarray,
                 seen_: dict[str, np.ndarray]) -> pd.DataFrame:
    """The situation of each prediction, in the error predictor's columns (no live point)."""
    return pd.DataFrame({
        "sim_max": sim["sim_max"].to_numpy(), "sim_top": sim["sim_top"].to_numpy(),
        "n_siblings": pred["n_siblings"].to_numpy(), **seen_,
        "sibling_gap": pred["sibling_gap"].to_numpy(),
        "log_batch": np.log(batch), "k_live": 0, "live_gap": NO_GAP,
        "static_batch": feats["static_batch"].to_numpy(), "log_gpus": feats["log_gpus"].to_numpy(),
        "log_params": feats["log_params"].to_numpy(), "multimodal": feats["multimodal"].to_numpy(),
        "catalog_estimated": feats["catalog_estimated"].to_numpy(),
        "prior_shift": pred["prior_shift"].to_numpy(),
    })


def held_out_records(data: TrainingSet, model: CurveRegressor, held_points: pd.DataFrame,
                     train_mask: np.ndarray, estimated: bool = False) -> pd.DataFrame:
    """Held-out error records of ``model`` with no live point, one per held-out point
    (``estimated``: with the features of a model known by its size alone)."""
    cfg = data.configs.loc[held_points["config_id"]]
    feats = (data.estimated_features if estimated else data.features).loc[held_points["config_id"]]
    batch = held_points["batch_size"].to_numpy(float)
    pred = model.predict_log(cfg, feats, batch)
    sim = data.embedding.summary(feats[~feats.index.duplicated()], mask=train_mask)
    sim = sim.loc[feats.index]
    truth = np.log(held_points["throughput"].to_numpy(float))
    base = record_frame(pred, sim, feats, batch, seen(cfg, data.configs[train_mask]))
    base["log_pred"] = pred["log_pred"].to_numpy()
    base["log_truth"] = truth
    base["log_error"] = base["log_pred"] - truth
    base["config_id"] = held_points["config_id"].to_numpy()
    return base


#: Appended to the config_id of records asked with size-only facts.
ESTIMATED_SUFFIX = "~size-only"


def with_estimated(data: TrainingSet, model: CurveRegressor, held: np.ndarray, train: np.ndarray,
                   records: pd.DataFrame) -> pd.DataFrame:
    """``records`` plus, for held-out configurations whose model training never saw, the
    same points asked as if the model were known by its size alone (a user's fine-tune
    named ``acme/house-70b``): the estimated-facts stratum."""
    if data.estimated_features is None:
        return records
    positions = np.flatnonzero(held) if np.asarray(held).dtype == bool else np.asarray(held)
    known = set(data.configs["model"].to_numpy()[train])
    unseen = np.array([m not in known for m in data.configs["model"].to_numpy()[positions]], bool)
    if not unseen.any():
        return records
    extra = held_out_records(data, model, data.held_points(positions[unseen]), train, estimated=True)
    # Curves of their own (shot records and prior scales are per curve), marked by the id.
    extra["config_id"] = extra["config_id"].astype(str) + ESTIMATED_SUFFIX
    return pd.concat([records, extra], ignore_index=True)


def annealed_records(data: TrainingSet, n_iter: int, rng: np.random.Generator,
                     progress=None, search: str = "anneal") -> AnnealingResult:
    """Simulated annealing over training subsets; every visited subset yields records
    (``progress(message)``, when given, hears of each). ``search="random"``: unsteered
    random subsets instead (the ablation's baseline)."""
    groups = (data.configs["model"] + "|" + data.configs["hardware"]).to_numpy()

    def evaluate(mask: np.ndarray, step: int) -> pd.DataFrame:
        step_rng = np.random.default_rng([data.seed, step])
        # Also hold out single curves inside the subset: their siblings stay in training.
        singles = mask & (step_rng.random(mask.size) < 0.12)
        train = mask & ~singles
        held = np.flatnonzero(~mask)
        if held.size > 150:
            held = step_rng.choice(held, 150, replace=False)
        held = np.concatenate([held, np.flatnonzero(singles)])
        model = data.regressor(train, data.seed + step)
        records = held_out_records(data, model, data.held_points(held), train)
        if progress is not None:
            progress(f"annealing subset {step + 1}")
        return records

    def bins(records: pd.DataFrame) -> np.ndarray:
        sim_bin = np.minimum((records["sim_max"].to_numpy() * SIM_BINS).astype(int), SIM_BINS - 1)
        return sim_bin * 2 + (records["n_siblings"].to_numpy() > 0)

    return anneal_subsets(evaluate, groups, n_iter=n_iter, bins=bins, n_bins=2 * SIM_BINS, rng=rng, search=search)


def curve_sd(records: pd.DataFrame, sd: np.ndarray) -> np.ndarray:
    """Per record, the mean expected error over its curve (one prior scale per curve)."""
    keys = records["config_id"].astype(str) + "#" + records.get("step", 0).astype(str)
    return pd.Series(sd, index=records.index).groupby(keys.to_numpy()).transform("mean").to_numpy()


def error_curves(base: pd.DataFrame, rng: np.random.Generator) -> list:
    """(log batch, log error, prior scale, prior log-throughput) per held-out curve, for
    fitting the error kernel and the hyperbola's weight."""
    keys = base["config_id"].astype(str) + "#" + base["step"].astype(str)
    groups = list(base.groupby(keys.to_numpy()).indices.values())
    if len(groups) > KERNEL_CURVES:
        groups = [groups[i] for i in rng.choice(len(groups), KERNEL_CURVES, replace=False)]
    lb, err, sd = base["log_batch"].to_numpy(), base["log_error"].to_numpy(), base["prior_sd"].to_numpy()
    prior = base["log_pred"].to_numpy()
    return [(lb[idx], err[idx], float(sd[idx][0]), prior[idx]) for idx in groups]


def shot_records(base: pd.DataFrame, kernels: dict, rng: np.random.Generator) -> pd.DataFrame:
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
                                   float(sd[idx[0]]), kernels[bool(sib[idx[0]])], prior_live=prior[live])
        upd = base.iloc[rest].copy()
        upd["k_live"] = k
        upd["live_gap"] = np.min(np.abs(log_b[rest][:, None] - log_b[live][None, :]), axis=1)
        upd["log_error"] = mean - truth[rest]
        frames.append(upd)
    return pd.concat(frames, ignore_index=True) if frames else base.iloc[:0]


def calibration_records(data: TrainingSet, error_predictor, kernels: dict,
                        rng: np.random.Generator, groups: list[WholeGroups] | None = None) -> pd.DataFrame:
    """Held-out records of plain random splits: whole (model, accelerator) pairs out,
    plus single curves whose siblings stay in training; with their few-shot records; then
    the whole-group families (``groups``, from :func:`whole_groups` unless given).

    Held-out configurations of models training never saw are also asked with size-only
    facts (:func:`with_estimated`): only here, for the calibration's own stratum, so that
    the error predictor and the answers for every other query stay as they were."""
    ids = np.asarray(data.configs.index)
    pairs = (data.configs["model"] + "|" + data.configs["hardware"]).to_numpy()
    labels, pair_of = np.unique(pairs, return_inverse=True)
    fold_of_pair = rng.permutation(labels.size) % CALIBRATION_FOLDS
    frames = []
    for fold in range(CALIBRATION_FOLDS):
        held = (fold_of_pair[pair_of] == fold) | (rng.random(ids.size) < 0.12)
        train = ~held
        if not held.any() or not train.any():  # a small table (a few pairs): nothing to hold out here
            continue
        model = data.regressor(train, data.seed + 1000 + fold)
        records = with_estimated(data, model, held, train, held_out_records(data, model, data.held_points(held), train))
        frames.append(records.assign(step=-1 - fold))
    base = pd.concat(frames, ignore_index=True)
    base["prior_sd"] = curve_sd(base, error_predictor.predict(base))
    # Size-only records after the others: the random draws of the others stay what they were.
    estimated = base["config_id"].astype(str).str.endswith(ESTIMATED_SUFFIX).to_numpy()
    pairs = pd.concat([base[~estimated], shot_records(base[~estimated], kernels, rng),
                       base[estimated], shot_records(base[estimated], kernels, rng)], ignore_index=True)
    groups = whole_groups(data) if groups is None else groups
    return pd.concat([pairs.assign(family=0)] + [group.records(error_predictor, kernels) for group in groups],
                     ignore_index=True)


@dataclass
class WholeGroups:
    """Held-out records of one whole-group family (``family`` 1: sources, 2: accelerators)
    before prior scales and live points: each group out in turn, the regressor trained on
    the rest. Its few-shot records are drawn from ``rng`` (the family's own draws)."""

    base: pd.DataFrame
    family: int
    rng: np.random.Generator

    def records(self, error_predictor, kernels: dict) -> pd.DataFrame:
        """The family's records with prior scales from ``error_predictor`` and few-shot records
        updated with ``kernels`` (call once: the few-shot records draw from ``rng``)."""
        base = self.base.copy()
        base["prior_sd"] = curve_sd(base, error_predictor.predict(base))
        return pd.concat([base, shot_records(base, kernels, self.rng)], ignore_index=True).assign(family=self.family)


def whole_groups(data: TrainingSet) -> list[WholeGroups]:
    """The whole-group families the training data allows (:func:`source_groups`,
    :func:`accelerator_groups`)."""
    return [g for g in (source_groups(data), accelerator_groups(data)) if g is not None]


def source_groups(data: TrainingSet) -> WholeGroups | None:
    """Whole sources held out (``family`` 1): each source of the training data out in turn.
    A deployment measured by a lab, harness or engine version that training never saw is
    what a user's own cluster is; pair splits inside one source do not show that shift.
    None with fewer than ``MIN_SOURCES`` sources: with two, each split would measure a model
    trained on one source alone (the bundled pair, static Argonne against saturated
    ML.ENERGY, gave intervals five times wider than the errors of a model trained on
    several sources)."""
    sources = data.configs["source"].astype(str).to_numpy()
    labels = np.unique(sources)
    if labels.size < MIN_SOURCES:
        return None
    rng = np.random.default_rng([data.seed, 2])  # its own draws: the pair family stays as it was
    return _whole_groups(data, [sources == label for label in labels], 1, rng)


def accelerator_groups(data: TrainingSet) -> WholeGroups | None:
    """Whole accelerators held out (``family`` 2): the accelerators of the training data
    split into up to ``ACCELERATOR_FOLDS`` groups, each group out in turn with every curve
    on it. Pair splits almost never leave an accelerator unmeasured, so without these the
    calibration has no score for a user's new accelerator (leave-one-accelerator-out found
    Gaudi2 and the Intel GPUs covered 0-13% at 90%). None with fewer than
    ``MIN_ACCELERATORS`` accelerators."""
    hardware = data.configs["hardware"].astype(str).str.lower().to_numpy()
    labels, acc_of = np.unique(hardware, return_inverse=True)
    if labels.size < MIN_ACCELERATORS:
        return None
    rng = np.random.default_rng([data.seed, 3])  # its own draws: the other families stay as they were
    fold_of = rng.permutation(labels.size) % min(ACCELERATOR_FOLDS, labels.size)
    return _whole_groups(data, [fold_of[acc_of] == f for f in np.unique(fold_of)], 2, rng)


def _whole_groups(data: TrainingSet, helds: list, family: int, rng: np.random.Generator) -> WholeGroups:
    """A whole-group family: each mask of ``helds`` out in turn, the regressor trained on the
    rest; regressor seeds and steps of its own per family, so no family moves another's
    records."""
    frames = []
    for i, held in enumerate(helds):
        model = data.regressor(~held, data.seed + 1000 * (family + 1) + i)
        frames.append(held_out_records(data, model, data.held_points(held), ~held).assign(step=-100 * family - i))
    return WholeGroups(pd.concat(frames, ignore_index=True), family, rng)


def pair_folds(configs: pd.DataFrame, records: pd.DataFrame, seed: int) -> np.ndarray:
    """Fold (``0 .. SCORE_FOLDS - 1``) of each record's (model, accelerator) pair, from its
    own random draws (every other family's stay as they were); -1 for a record whose curve
    is not one of ``configs`` (indexed by config_id)."""
    pairs = configs["model"].astype(str) + "|" + configs["hardware"].astype(str)
    labels = np.unique(pairs.to_numpy())
    rng = np.random.default_rng([seed, 4])
    fold_of_pair = dict(zip(labels, rng.permutation(labels.size) % min(SCORE_FOLDS, labels.size)))
    fold_of_curve = pd.Series(pairs.map(fold_of_pair).to_numpy(), index=configs.index.astype(str))
    curve = records["config_id"].astype(str).str.removesuffix(ESTIMATED_SUFFIX)
    return curve.map(fold_of_curve).fillna(-1).to_numpy(int)
