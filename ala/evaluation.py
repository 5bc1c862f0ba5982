"""Accuracy benchmark: the evaluation protocol's four tasks, ALA beside simple baselines.

Tasks (see README): A interpolate one inner point; B unseen token length within a
deployment; C unseen (model, accelerator) pair; D few-shot with the k smallest batches
revealed; M unseen models; S leave one source out (every source tag of the bundled and the
held-out files, trained on all the others), zero-shot and with two live points; L the same
on the lockbox sources, which no design decision may look at (run once per release); N the
annealing ablation: on the folds of C and M, ALA again with its error predictor taught by
unsteered random training subsets instead of annealed ones; X beyond the measured batch:
each curve's largest batches held out, the rest of it kept in training, so that the answer
extrapolates in batch (the analytical curve fitted on the kept points beside it); U unseen
token lengths where input and output differ: the held-out sources' curves with input !=
output, held out in folds that keep their deployment's other lengths in training. Every
method sees the same folds in the same run. ALA is asked through the
product's own query path (:func:`product_query`: ``Deployment`` rows, as ``ala plan`` and
the operator ask); :func:`reproduce` asks every benchmarked curve again that way.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.ensemble import HistGradientBoostingRegressor

from .benchmarks import configuration_key, group_curves
from .catalog import Catalog, UnknownAcceleratorError
from .database import fit_parameters
from .features import config_features, row_features
from .estimator import ALA
from .similarity import WorkloadEmbedding
from .throughput import curve

logger = logging.getLogger(__name__)

GROUP_COLUMNS = ("source", "model", "hardware", "num_gpus", "tensor_parallel", "expert_parallel",
                 "data_parallel", "framework", "framework_version", "precision", "variant")
#: Held-out sources kept as a lockbox: chosen on 2026-12-07, before any figure on the held-out
#: file was seen, as the two lowest sha256("ala lockbox 2026-12-07: " + tag); never change.
LOCKBOX_SOURCES = ("dstack-deepseek-r1-offline", "argonne-fig5-parallelism")
#: Live points revealed per held-out curve in task S (its smallest batches).
SOURCE_SHOTS = 2
METHODS = ("ALA", "ALA, size only", "ALA, random subsets", "ALA, no live hyperbola", "analytical curve",
           "ALA and analytical curve, mean",
           "per-curve interpolation", "nearest-neighbour transfer", "gradient boosting")
#: Task X holds out each curve's BEYOND_HELD largest batches, on curves of BEYOND_MIN or more.
BEYOND_HELD = 2
BEYOND_MIN = 4
#: Tasks whose folds the annealing ablation (task N) repeats with random subsets.
ABLATION_TASKS = ("C", "M")
#: Confidence bins of the reliability table (the score is P(within 10%)).
RELIABILITY_BINS = (0.0, 0.2, 0.4, 0.6, 0.8, 0.9, 1.0)


@dataclass
class Predictions:
    """Predictions of one method on one task: truth, point, optional interval and confidence."""

    truth: list = field(default_factory=list)
    point: list = field(default_factory=list)
    lower: list = field(default_factory=list)
    upper: list = field(default_factory=list)
    confidence: list = field(default_factory=list)
    source: list = field(default_factory=list)
    fit_seconds: float = 0.0
    predict_seconds: float = 0.0

    def add(self, truth, point, source, lower=None, upper=None, confidence=None):
        n = len(truth)
        nan = np.full(n, np.nan)
        self.truth.append(np.asarray(truth, float))
        self.point.append(np.asarray(point, float))
        self.source.append(np.asarray(source))
        self.lower.append(nan if lower is None else np.asarray(lower, float))
        self.upper.append(nan if upper is None else np.asarray(upper, float))
        self.confidence.append(nan if confidence is None else np.asarray(confidence, float))

    def arrays(self) -> dict[str, np.ndarray]:
        cat = (lambda xs: np.concatenate(xs) if xs else np.empty(0))
        return {k: cat(getattr(self, k)) for k in ("truth", "point", "lower", "upper", "confidence", "source")}


def summarise(pred: Predictions, mask_source: str | None = None) -> dict:
    """Median and p90 APE, made/asked, coverage, median relative width, Spearman, seconds."""
    a = pred.arrays()
    sel = np.ones(a["truth"].size, bool) if mask_source is None else np.char.startswith(
        a["source"].astype(str), mask_source)
    truth, point = a["truth"][sel], a["point"][sel]
    made = np.isfinite(point) & (point > 0)
    ape = np.abs(point[made] / truth[made] - 1)
    lo, hi = a["lower"][sel][made], a["upper"][sel][made]
    has_interval = np.isfinite(lo).any()
    out = {"asked": int(truth.size), "made": int(made.sum()),
           "median_ape": float(np.median(ape)) if ape.size else np.nan,
           "p90_ape": float(np.quantile(ape, 0.9)) if ape.size else np.nan,
           "coverage": float(np.mean((truth[made] >= lo) & (truth[made] <= hi))) if has_interval else np.nan,
           "median_width": float(np.median((hi - lo) / point[made])) if has_interval else np.nan,
           "spearman": np.nan, "fit_s": pred.fit_seconds, "predict_s": pred.predict_seconds}
    if has_interval:
        out["width_at_90"] = width_at_coverage(truth[made], point[made], lo, hi)
    conf = a["confidence"][sel][made]
    if np.isfinite(conf).sum() > 10 and np.ptp(conf) > 0 and np.ptp(ape) > 0:  # undefined when constant
        out["spearman"] = float(spearmanr(conf, ape).statistic)
    return out


def width_at_coverage(truth: np.ndarray, point: np.ndarray, lower: np.ndarray, upper: np.ndarray,
                      level: float = 0.9) -> float:
    """Median relative width of the intervals widened or narrowed (in log, by one factor for
    all) until they cover exactly ``level`` of the truths: how sharp the error predictor's
    ranking is, apart from how well it is calibrated."""
    up, down = np.log(upper / point), np.log(point / lower)
    ratio = np.log(truth / point)
    with np.errstate(divide="ignore", invalid="ignore"):
        need = np.where(ratio >= 0, ratio / up, -ratio / down)
    need = np.where(np.isnan(need), 0.0, need)  # truth on the point: covered at any width
    if not need.size:
        return np.nan
    f = float(np.quantile(need, level))
    if not np.isfinite(f):
        return np.inf
    return float(np.median(np.exp(f * up) - np.exp(-f * down)))


def reliability(pred: Predictions, bins=RELIABILITY_BINS) -> list[dict]:
    """Per confidence bin: predictions in it, their mean confidence, and the share
    actually within 10% of the truth (what the confidence claims)."""
    a = pred.arrays()
    made = np.isfinite(a["point"]) & (a["point"] > 0) & np.isfinite(a["confidence"])
    conf = a["confidence"][made]
    within = np.abs(a["point"][made] / a["truth"][made] - 1) <= 0.1
    rows = []
    for lo, hi in zip(bins[:-1], bins[1:]):
        sel = (conf >= lo) & ((conf < hi) if hi < bins[-1] else (conf <= hi))
        rows.append({"bin": (lo, hi), "n": int(sel.sum()),
                     "confidence": float(conf[sel].mean()) if sel.any() else np.nan,
                     "within": float(within[sel].mean()) if sel.any() else np.nan})
    return rows


def _group_key(configs: pd.DataFrame) -> pd.Series:
    return configuration_key(configs, GROUP_COLUMNS)


def _stratified_folds(configs: pd.DataFrame, k: int, rng: np.random.Generator) -> pd.Series:
    """Fold per curve such that curves of one deployment land in different folds."""
    key = _group_key(configs)
    order = configs.assign(_g=key, _r=rng.random(len(configs))).sort_values(["_g", "_r"]).groupby("_g").cumcount()
    offset = key.map({g: int(rng.integers(k)) for g in key.unique()})
    return (order + offset) % k


def _held_rows(table: pd.DataFrame, configs: pd.DataFrame, ids) -> pd.DataFrame:
    rows = table[table["config_id"].isin(ids)].copy()
    # A curve's measured mean output length varies per row (ML.ENERGY): use the curve's.
    rows["output_tokens"] = rows["config_id"].map(configs["output_tokens"])
    return (rows.groupby(["config_id", "batch_size"], as_index=False)
            .agg({**{c: "first" for c in rows.columns if c not in ("config_id", "batch_size",
                                                                      "throughput_tokens_per_s")},
                  "throughput_tokens_per_s": "mean"}))


class _Baselines:
    """The three simple baselines, fitted on one training split."""

    def __init__(self, train: pd.DataFrame, catalog: Catalog, random_state: int):
        curves = group_curves(train)
        self.configs = curves.configs.set_index("config_id")
        self.params = fit_parameters(curves)
        self.features = config_features(self.configs, catalog)
        self.embedding = WorkloadEmbedding().fit(self.features)
        self.points = curves.points
        self.catalog = catalog
        self.random_state = random_state

    def gbr(self, extra: pd.DataFrame | None = None) -> Callable[[pd.DataFrame, pd.DataFrame], tuple]:
        feats = self.features.loc[self.points["config_id"]]
        X = row_features(feats, self.points["batch_size"].to_numpy(float))
        y = np.log(self.points["throughput"].to_numpy(float))
        if extra is not None and len(extra):
            ef = config_features(extra, self.catalog)
            X = np.vstack([X, row_features(ef, extra["batch_size"].to_numpy(float))])
            y = np.concatenate([y, np.log(extra["throughput_tokens_per_s"].to_numpy(float))])
        kw = dict(max_iter=300, learning_rate=0.1, random_state=self.random_state)
        point = HistGradientBoostingRegressor(**kw).fit(X, y)
        low = HistGradientBoostingRegressor(loss="quantile", quantile=0.05, **kw).fit(X, y)
        high = HistGradientBoostingRegressor(loss="quantile", quantile=0.95, **kw).fit(X, y)

        def predict(rows: pd.DataFrame, feats: pd.DataFrame):
            Xq = row_features(feats, rows["batch_size"].to_numpy(float))
            return tuple(np.exp(m.predict(Xq)) for m in (point, low, high))

        return predict

    def nearest(self, rows: pd.DataFrame, feats: pd.DataFrame, revealed: pd.DataFrame | None) -> np.ndarray:
        sim = self.embedding.similarity(feats)
        ids = self.embedding.ids_[np.argmax(sim, axis=1)]
        p = self.params.loc[ids]
        out = curve(rows["batch_size"].to_numpy(float), p["a"].to_numpy(), p["b"].to_numpy(), p["c"].to_numpy())
        out = np.where(out > 0, out, np.nan)
        if revealed is not None and len(revealed):
            rsim = self.embedding.similarity(config_features(revealed, self.catalog))
            rp = self.params.loc[self.embedding.ids_[np.argmax(rsim, axis=1)]]
            ratio = np.log(revealed["throughput_tokens_per_s"].to_numpy(float) /
                           curve(revealed["batch_size"].to_numpy(float), rp["a"].to_numpy(),
                                 rp["b"].to_numpy(), rp["c"].to_numpy()).clip(1e-9))
            shift = pd.Series(ratio, index=revealed["config_id"].to_numpy()).groupby(level=0).mean()
            out = out * np.exp(rows["config_id"].map(shift).fillna(0.0).to_numpy())
        return out


def interpolate_curve(batch: np.ndarray, thpt: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Per-curve log-log interpolation; end segments extrapolate; one point scales linearly."""
    order = np.argsort(batch)
    x, y = np.log(batch[order]), np.log(thpt[order])
    q = np.log(np.asarray(query, float))
    if x.size == 1:
        return np.exp(y[0] + (q - x[0]))
    inner = np.interp(q, x, y)
    left = y[0] + (q - x[0]) * (y[1] - y[0]) / (x[1] - x[0])
    right = y[-1] + (q - x[-1]) * (y[-1] - y[-2]) / (x[-1] - x[-2])
    return np.exp(np.where(q < x[0], left, np.where(q > x[-1], right, inner)))


def run(table: pd.DataFrame, *, folds: int = 5, random_state: int = 0, tasks: str = "ABCD",
        shots=(1, 2, 3), ala_params: dict | None = None, held_out: pd.DataFrame | None = None,
        progress: Callable[[str], None] | None = None) -> dict:
    """Run the protocol; returns ``{task: {method: Predictions}}``. ``held_out`` (the
    held-out sources, :func:`ala.sources.load_held_out`) joins ``table`` for tasks S and L
    only."""
    rng = np.random.default_rng(random_state)
    catalog = Catalog.load()
    curves = group_curves(table)
    configs = curves.configs.set_index("config_id")
    group = _group_key(configs)
    sizes = group.map(group.value_counts())
    results: dict[str, dict[str, Predictions]] = {}
    say = progress or (lambda msg: None)
    plans = []
    if "B" in tasks:
        fb = _stratified_folds(configs, folds, rng)
        plans.append(("B", fb.where(sizes >= 3, -1)))
    if "C" in tasks or "N" in tasks:
        pair = configs["model"] + "|" + configs["hardware"]
        labels = pair.unique()
        fc = pair.map(dict(zip(labels, rng.permutation(len(labels)) % folds)))
        plans.append(("C", fc))
    if "A" in tasks or "D" in tasks:
        plans.append(("AD", _stratified_folds(configs, folds, rng)))
    if "M" in tasks or "N" in tasks:  # last: the folds of A-D stay what they were
        labels = configs["model"].unique()
        plans.append(("M", configs["model"].map(dict(zip(labels, rng.permutation(len(labels)) % folds)))))
    for name, fold_of in plans:
        for k in range(folds):
            held_ids = fold_of.index[fold_of == k]
            if not len(held_ids):
                continue
            train = table[~table["config_id"].isin(held_ids)]
            held = _held_rows(table, configs, held_ids)
            say(f"task {name} fold {k + 1}/{folds}: train {train['config_id'].nunique()} curves, "
                f"hold {len(held_ids)}")
            _run_fold(name, train, held, configs, catalog, results, random_state + k, tasks, shots,
                      ala_params or {})
    if "X" in tasks:
        _beyond_measured(table, configs, catalog, results, random_state, ala_params or {}, say)
    if "U" in tasks:
        _unseen_shapes(table, held_out, catalog, results, folds, random_state, ala_params or {}, say)
    for name in [t for t in "SL" if t in tasks]:
        _leave_source_out(name, table, held_out, catalog, results, random_state, ala_params or {}, say)
    if "H" in tasks:
        _leave_accelerator_out(table, held_out, catalog, results, random_state, ala_params or {}, say)
    return results


def shape_folds(configs: pd.DataFrame, sources, folds: int, rng: np.random.Generator) -> pd.Series:
    """Task U's fold per curve: the curves of ``sources`` (the held-out files' tags) with
    input != output, outside the lockbox, spread so that curves of one deployment land in
    different folds; -1 for every other curve (always in training)."""
    inp, out = configs["input_tokens"].astype(float), configs["output_tokens"].astype(float)
    eligible = (inp.notna() & (inp != out) & configs["source"].isin(set(sources))
                & ~configs["source"].isin(LOCKBOX_SOURCES))
    fold = pd.Series(-1, index=configs.index)
    if eligible.any():
        fold[eligible] = _stratified_folds(configs[eligible], folds, rng)
    return fold


def _unseen_shapes(table, held_out, catalog, results, folds, seed, ala_params, say):
    """Task U: curves whose input and output lengths differ, asked at a length training
    lacks while the deployment's other lengths stay in training (task B where the two axes
    part: 1k/8k and 8k/1k hold as many tokens)."""
    if held_out is None:
        raise ValueError("task U needs the held-out sources (held_out=).")
    full = pd.concat([table, held_out], ignore_index=True)
    configs = group_curves(full).configs.set_index("config_id")
    fold_of = shape_folds(configs, held_out["source"].astype(str).unique(), folds, np.random.default_rng([seed, 21]))
    usable = full[~full["source"].isin(LOCKBOX_SOURCES)]
    for k in range(folds):
        held_ids = fold_of.index[fold_of == k]
        if not len(held_ids):
            continue
        train = usable[~usable["config_id"].isin(held_ids)]
        say(f"task U fold {k + 1}/{folds}: hold {len(held_ids)} curves with input != output, "
            f"train {train['config_id'].nunique()} curves")
        _run_fold("U", train, _held_rows(full, configs, held_ids), configs, catalog, results, seed + k, "U", (),
                  ala_params)


def _beyond_measured(table, configs, catalog, results, seed, ala_params, say):
    """Task X: the largest batches of every curve held out, its smaller ones kept in
    training, so that the product answers from the curve's own measurements beyond their
    range. Beside it: the analytical curve fitted on the kept points, the mean of the two in
    log (a candidate hybrid, not what the product answers), interpolation's end segment and
    gradient boosting, all on the same rows."""
    every = _held_rows(table, configs, configs.index)
    rank = every.groupby("config_id")["batch_size"].rank(method="first", ascending=False).to_numpy()
    n_pts = every["config_id"].map(every["config_id"].value_counts()).to_numpy()
    held = every[(rank <= BEYOND_HELD) & (n_pts >= BEYOND_MIN)].reset_index(drop=True)
    out = set(zip(held["config_id"], held["batch_size"]))
    train = table[[(c, b) not in out for c, b in zip(table["config_id"], table["batch_size"])]]
    # Asked as the kept curve says it (a measured mean output length moves with the batch).
    held["output_tokens"] = held["config_id"].map(group_curves(train).configs.set_index("config_id")["output_tokens"])
    say(f"task X: hold the {BEYOND_HELD} largest batches of {held['config_id'].nunique()} curves")
    t0 = time.perf_counter()
    model = ALA(random_state=seed, **ala_params).fit(train)
    ala_fit = time.perf_counter() - t0
    truth = held["throughput_tokens_per_s"].to_numpy(float)
    source = held["source"].astype(str).to_numpy()
    query = product_query(held.drop(columns=["throughput_tokens_per_s"]))
    _score(results, "X", model, ala_fit, query, truth, source, None)
    base = _Baselines(train, catalog, seed)
    batch = held["batch_size"].to_numpy(float)
    fitted = base.params.reindex(held["config_id"])
    ok = fitted["success"].fillna(False).astype(bool).to_numpy()
    analytic = np.where(ok, curve(batch, fitted["a"].to_numpy(float), fitted["b"].to_numpy(float),
                                  fitted["c"].to_numpy(float)), np.nan)
    analytic = np.where(analytic > 0, analytic, np.nan)
    _collect(results, "X", "analytical curve").add(truth, analytic, source)
    ala_point = results["X"]["ALA"].point[-1]
    _collect(results, "X", "ALA and analytical curve, mean").add(truth, np.sqrt(ala_point * analytic), source)
    kept = train.groupby(["config_id", "batch_size"])["throughput_tokens_per_s"].mean().reset_index()
    by_curve = kept.groupby("config_id").indices
    point = np.full(truth.size, np.nan)
    for cid, idx in held.groupby("config_id").indices.items():
        rows = kept.iloc[by_curve[cid]]
        point[idx] = interpolate_curve(rows["batch_size"].to_numpy(float),
                                       rows["throughput_tokens_per_s"].to_numpy(float), batch[idx])
    _collect(results, "X", "per-curve interpolation").add(truth, point, source)
    p = _collect(results, "X", "gradient boosting")
    point, lo, hi = base.gbr()(held, config_features(held, catalog))
    p.add(truth, point, source, lo, hi)


def source_folds(configs: pd.DataFrame, lockbox: bool) -> list[str]:
    """The sources task S (``lockbox=False``) or L holds out, one fold each."""
    tags = sorted(configs["source"].astype(str).unique())
    return [t for t in tags if (t in LOCKBOX_SOURCES) == lockbox]


def _leave_source_out(name, table, held_out, catalog, results, seed, ala_params, say):
    """Each source held out whole, the model trained on every other source of ``table`` and
    ``held_out`` except the lockbox (never trained on outside task L)."""
    full = pd.concat([table, held_out], ignore_index=True) if held_out is not None else table
    configs = group_curves(full).configs.set_index("config_id")
    folds = source_folds(configs, lockbox=name == "L")
    usable = full[~full["source"].isin(LOCKBOX_SOURCES)]
    for k, tag in enumerate(folds):
        held_ids = configs.index[configs["source"] == tag]
        train = usable[usable["source"] != tag]
        say(f"task {name} fold {k + 1}/{len(folds)}: hold out {tag} ({len(held_ids)} curves), "
            f"train {train['config_id'].nunique()} curves")
        _run_fold(name, train, _held_rows(full, configs, held_ids), configs, catalog, results, seed + k,
                  name, (SOURCE_SHOTS,), ala_params)


def accelerator_folds(configs: pd.DataFrame, catalog: Catalog) -> pd.Series:
    """Task H's fold per curve: its accelerator's catalog name (spellings joined), the raw
    name for one the catalog lacks; lockbox curves get none (never held out or trained on)."""
    def name(hardware: str) -> str:
        try:
            return str(catalog.accelerator(hardware)["name"])
        except UnknownAcceleratorError:
            return str(hardware)
    names = configs["hardware"].astype(str).map(name)
    return names.where(~configs["source"].isin(LOCKBOX_SOURCES))


def _leave_accelerator_out(table, held_out, catalog, results, seed, ala_params, say):
    """Task H: each accelerator held out whole (every source that measured it), the model
    trained on every other accelerator's curves outside the lockbox; then the same curves
    with their two smallest batches measured live."""
    full = pd.concat([table, held_out], ignore_index=True) if held_out is not None else table
    configs = group_curves(full).configs.set_index("config_id")
    fold_of = accelerator_folds(configs, catalog)
    usable = full[~full["source"].isin(LOCKBOX_SOURCES)]
    names = sorted(fold_of.dropna().unique())
    for k, acc in enumerate(names):
        held_ids = fold_of.index[fold_of == acc]
        train = usable[~usable["config_id"].isin(held_ids)]
        say(f"task H fold {k + 1}/{len(names)}: hold out {acc} ({len(held_ids)} curves), "
            f"train {train['config_id'].nunique()} curves")
        held = _held_rows(full, configs, held_ids)
        held["source"] = f"{acc} held out"  # reported per accelerator (a name no other prefixes)
        _run_fold("H", train, held, configs, catalog, results, seed + k, "H", (SOURCE_SHOTS,), ala_params)


def product_query(rows: pd.DataFrame) -> pd.DataFrame:
    """Benchmark rows as the product asks them: each row's configuration through
    :class:`ala.planner.Deployment` (what ``ala plan`` and the operator build), at its batch,
    with its measured throughput kept where the rows have it (live points)."""
    from .planner import Deployment

    parts = [Deployment.of_benchmark(row).query([row["batch_size"]]) for _, row in rows.iterrows()]
    out = pd.concat(parts, ignore_index=True) if parts else rows.iloc[:0]
    if "throughput_tokens_per_s" in rows.columns:
        out["throughput_tokens_per_s"] = rows["throughput_tokens_per_s"].to_numpy(float)
    return out


def _collect(results, task, method) -> Predictions:
    return results.setdefault(task, {}).setdefault(method, Predictions())


def _run_fold(name, train, held, configs, catalog, results, seed, tasks, shots, ala_params):
    t0 = time.perf_counter()
    model = ALA(random_state=seed, **ala_params).fit(train)
    ala_fit = time.perf_counter() - t0
    t0 = time.perf_counter()
    base = _Baselines(train, catalog, seed)
    gbr = base.gbr()
    base_fit = time.perf_counter() - t0
    query = product_query(held.drop(columns=["throughput_tokens_per_s"]))
    truth = held["throughput_tokens_per_s"].to_numpy(float)
    source = held["source"].astype(str).to_numpy()
    feats = config_features(held, catalog)
    if name in ("B", "C", "M", "S", "L", "U", "H"):
        _score(results, name, model, ala_fit, query, truth, source, None)
        if "N" in tasks and name in ABLATION_TASKS:
            t0 = time.perf_counter()
            ablated = ALA(random_state=seed, **{**ala_params, "subsets": "random"}).fit(train)
            _score(results, name, ablated, time.perf_counter() - t0, query, truth, source, None,
                   method="ALA, random subsets")
        if name == "M":
            # The same unseen models known by their size alone (attention shape forgotten), as
            # the product answers a fine-tune it can only size from its name.
            blind = model.with_catalog(model.catalog_.blinded())
            _score(results, name, blind, 0.0, query, truth, source, None, method="ALA, size only")
        p = _collect(results, name, "gradient boosting")
        t0 = time.perf_counter()
        point, lo, hi = gbr(held, feats)
        p.predict_seconds += time.perf_counter() - t0
        p.fit_seconds += base_fit
        p.add(truth, point, source, lo, hi)
        p = _collect(results, name, "nearest-neighbour transfer")
        p.add(truth, base.nearest(held, feats, None), source)
        p = _collect(results, name, "per-curve interpolation")
        p.add(truth, np.full(truth.size, np.nan), source)
        if name not in ("S", "L", "H"):
            return
    rank = held.groupby("config_id")["batch_size"].rank(method="first").to_numpy(int)
    n_pts = held["config_id"].map(held["config_id"].value_counts()).to_numpy()
    if name in ("S", "L", "H"):
        # The same curves with their smallest batches measured live: asked at the others.
        for k in shots:
            reveal, ask = rank <= k, rank > k
            _few_shot(results, f"{name} k={k}", model, 0.0, base, 0.0, held, feats, reveal, ask, truth, source)
        return
    if "D" in tasks:
        for k in shots:
            task = f"D k={k}"
            eligible = n_pts >= 4
            reveal = eligible & (rank <= k)
            ask = eligible & (rank > k)
            _few_shot(results, task, model, ala_fit, base, base_fit, held, feats, reveal, ask, truth, source)
    if "A" in tasks:
        # Each inner point once: reveal every other point of its curve.
        inner = (rank > 1) & (rank < n_pts)
        for position in range(2, int(n_pts.max())):
            ask = inner & (rank == position)
            if not ask.any():
                continue
            reveal = np.isin(held["config_id"].to_numpy(), held["config_id"].to_numpy()[ask]) & ~ask
            _few_shot(results, "A", model, 0.0 if position > 2 else ala_fit, base,
                      0.0 if position > 2 else base_fit, held, feats, reveal, ask, truth, source,
                      with_gbr=False)


def _score(results, task, model, fit_s, query, truth, source, live, method="ALA"):
    p = _collect(results, task, method)
    t0 = time.perf_counter()
    out = model.predict_interval(query, confidence_level=0.9, live=live)
    p.predict_seconds += time.perf_counter() - t0
    p.fit_seconds += fit_s
    p.add(truth, out["point"], source, out["lower"], out["upper"], out["confidence"])


def without_hyperbola(model: ALA) -> ALA:
    """A view of the fitted ``model`` whose online update uses the Gaussian process alone (no
    live points' hyperbola): the same prior, error predictor and calibration."""
    view = object.__new__(type(model))
    view.__dict__.update(model.__dict__)
    view.kernels_ = {kind: replace(kernel, shape_error=float("inf")) for kind, kernel in model.kernels_.items()}
    return view


def _few_shot(results, task, model, ala_fit, base, base_fit, held, feats, reveal, ask, truth, source,
              with_gbr=True):
    if not ask.any():
        return
    live = held[reveal]
    query = product_query(held[ask].drop(columns=["throughput_tokens_per_s"]))
    _score(results, task, model, ala_fit, query, truth[ask], source[ask], product_query(live))
    if with_gbr:  # the ablation of the live points' hyperbola (task A asks inside the live span only)
        _score(results, task, without_hyperbola(model), 0.0, query, truth[ask], source[ask], product_query(live),
               method="ALA, no live hyperbola")
    rows = held[ask]
    p = _collect(results, task, "per-curve interpolation")
    point = np.full(ask.sum(), np.nan)
    for cid, idx in rows.reset_index(drop=True).groupby("config_id").indices.items():
        shown = live[live["config_id"] == cid]
        if len(shown):
            point[idx] = interpolate_curve(shown["batch_size"].to_numpy(float),
                                           shown["throughput_tokens_per_s"].to_numpy(float),
                                           rows["batch_size"].to_numpy(float)[idx])
    p.add(truth[ask], point, source[ask])
    p = _collect(results, task, "nearest-neighbour transfer")
    p.add(truth[ask], base.nearest(rows, feats[ask], live), source[ask])
    p = _collect(results, task, "gradient boosting")
    if with_gbr:
        t0 = time.perf_counter()
        gbr = base.gbr(extra=live)
        p.fit_seconds += base_fit + time.perf_counter() - t0
        point, lo, hi = gbr(rows, feats[ask])
        p.add(truth[ask], point, source[ask], lo, hi)
    else:
        p.add(truth[ask], np.full(ask.sum(), np.nan), source[ask])


def report(results: dict, sources: dict[str, str] | None = None) -> str:
    """Markdown tables, one per task, methods side by side (and per data source)."""
    sources = sources or {"all": None}
    order = (["A", "B", "C"] + sorted(t for t in results if t.startswith("D")) + ["M", "X", "U"]
             + sorted((t for t in results if t[0] in "SHL"), key=lambda t: ("SHL".index(t[0]), t)))
    lines = []
    for task in [t for t in order if t in results]:
        by = sources
        if task[0] in "SHLU":  # each held-out source (accelerator for H) on its own line
            tags = np.unique(np.concatenate([p.arrays()["source"].astype(str) for p in results[task].values()]))
            by = {"all": None, **{str(t): str(t) for t in tags}}
        lines += [f"### Task {task}", "",
                  "| method | data | median APE | p90 APE | made / asked | coverage@90 | median width | "
                  "Spearman(conf, err) | fit s | predict s |",
                  "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for method in METHODS:
            if method not in results[task]:
                continue
            for label, prefix in by.items():
                s = summarise(results[task][method], prefix)
                if s["asked"] == 0:
                    continue
                fmt = (lambda v, pct=True: "—" if not np.isfinite(v) else (f"{100 * v:.1f}%" if pct else f"{v:.2f}"))
                lines.append(f"| {method} | {label} | {fmt(s['median_ape'])} | {fmt(s['p90_ape'])} | "
                             f"{s['made']} / {s['asked']} | {fmt(s['coverage'])} | {fmt(s['median_width'], False)} | "
                             f"{fmt(s['spearman'], False)} | {s['fit_s']:.1f} | {s['predict_s']:.2f} |")
        lines.append("")
    lines += _ablation_report(results, sources)
    lines += _reliability_report(results, [t for t in order if t in results])
    return "\n".join(lines)


def _pct(v: float) -> str:
    return "—" if not np.isfinite(v) else f"{100 * v:.1f}%"


def _ablation_report(results: dict, sources: dict[str, str | None]) -> list[str]:
    """Task N: annealed against random training subsets, on the same folds."""
    tasks = [t for t in ABLATION_TASKS if "ALA, random subsets" in results.get(t, {})]
    if not tasks:
        return []
    lines = ["### Task N: annealed against random training subsets", "",
             "The same folds, the same number of subsets and held-out records per subset; only how the "
             "subsets are chosen differs. Width at 90% coverage: the intervals scaled by one factor until "
             "they cover exactly 90%, which measures how well the error predictor ranks errors apart from "
             "how well it is calibrated (smaller is sharper).", "",
             "| task | subsets | data | median APE | coverage@90 | median width | width at 90% coverage | "
             "Spearman(conf, err) |", "|---|---|---|---:|---:|---:|---:|---:|"]
    for task in tasks:
        for method, label in (("ALA", "annealed"), ("ALA, random subsets", "random")):
            for data, prefix in sources.items():
                s = summarise(results[task][method], prefix)
                if s["asked"] == 0:
                    continue
                lines.append(f"| {task} | {label} | {data} | {_pct(s['median_ape'])} | {_pct(s['coverage'])} | "
                             f"{s['median_width']:.2f} | {s.get('width_at_90', np.nan):.2f} | "
                             f"{s['spearman']:.2f} |")
    return lines + [""]


def _reliability_report(results: dict, tasks: list[str]) -> list[str]:
    """Per task, the share of ALA's predictions within 10% of the truth in each confidence
    bin, beside the bin's mean confidence (which claims that share)."""
    rows = [(t, reliability(results[t]["ALA"])) for t in tasks if "ALA" in results[t]]
    rows = [(t, r) for t, r in rows if sum(b["n"] for b in r)]
    if not rows:
        return []
    bins = [f"{lo:.1f}-{hi:.1f}" for lo, hi in zip(RELIABILITY_BINS[:-1], RELIABILITY_BINS[1:])]
    lines = ["### Reliability of the confidence score", "",
             "The confidence score is the probability of being within 10% of the truth. Each cell: the share "
             "of ALA's predictions in that confidence bin that were within 10%, against the bin's mean "
             "confidence, and how many predictions fell in it.", "",
             "| task | " + " | ".join(bins) + " |", "|---|" + "---:|" * len(bins)]
    for task, r in rows:
        cells = ["—" if not b["n"] else f"{100 * b['within']:.0f}% vs {100 * b['confidence']:.0f}% ({b['n']})"
                 for b in r]
        lines.append(f"| {task} | " + " | ".join(cells) + " |")
    return lines + [""]


def reproduce(model: ALA, confidence_level: float = 0.9) -> pd.DataFrame:
    """Each benchmarked curve of a fitted model, asked again through the product's own query
    path (:class:`ala.planner.Deployment`, as ``ala plan`` and the operator ask): one row per
    measured point with the prediction, its interval and the absolute percentage error.

    An in-sample check (the model has seen these points): a configuration that is
    benchmarked must be answered from its measurement, within noise and with a narrow
    interval, whichever path asks.
    """
    from .planner import Deployment

    configs = model.configs_.reset_index()
    points = model.points_
    queries, truth, ids = [], [], []
    for _, cfg in configs.iterrows():
        mine = points[points["config_id"] == cfg["config_id"]]
        try:
            deployment = Deployment.of_benchmark(cfg)
        except ValueError:
            continue
        queries.append(deployment.query(mine["batch_size"].to_numpy(float)))
        truth.append(mine["throughput"].to_numpy(float))
        ids += [cfg["config_id"]] * len(mine)
    out = model.predict_interval(pd.concat(queries, ignore_index=True), confidence_level=confidence_level)
    truth = np.concatenate(truth)
    source = configs.set_index("config_id").loc[ids, "source"].to_numpy()
    return pd.DataFrame({"config_id": ids, "source": source, "truth": truth, "point": out["point"].to_numpy(),
                         "lower": out["lower"].to_numpy(), "upper": out["upper"].to_numpy(),
                         "ape": np.abs(out["point"].to_numpy() / truth - 1),
                         "width": (out["upper"] - out["lower"]).to_numpy() / out["point"].to_numpy(),
                         "covered": (out["lower"].to_numpy() <= truth) & (truth <= out["upper"].to_numpy())})


def reproduce_report(frame: pd.DataFrame) -> str:
    """Markdown table of :func:`reproduce`: per source and overall."""
    lines = ["| source | points | median APE | p90 APE | median width | covered |", "|---|---|---|---|---|---|"]
    groups = [(s, g) for s, g in frame.groupby("source")] + [("all", frame)]
    for name, g in groups:
        lines.append(f"| {name} | {len(g)} | {100 * g['ape'].median():.1f}% | {100 * g['ape'].quantile(0.9):.1f}% | "
                     f"{g['width'].median():.2f} | {100 * g['covered'].mean():.1f}% |")
    return "\n".join(lines)
