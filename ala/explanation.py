"""Explanations of predictions: the analytical curve behind a configuration's prediction,
where the prediction came from, and the observed workloads nearest to it."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .benchmarks import TableLike, query_keys, read_benchmarks
from .features import config_features
from .throughput import ThroughputCurve


def distinct(X: TableLike) -> tuple[pd.DataFrame, np.ndarray]:
    """The first query row of each distinct configuration, and their keys."""
    table = read_benchmarks(X, measurements=False)
    keys = query_keys(table)
    first = ~keys.duplicated().to_numpy()
    return table[first].reset_index(drop=True), keys[first].to_numpy()


def curve_parameters(model, X: TableLike, live: TableLike | None = None,
                     max_batch: float = 512.0) -> pd.DataFrame:
    """Analytical (a, b, c) of each distinct query configuration of a fitted ``model``.

    Notes
    -----
    The learned log-throughput is evaluated on a log-spaced batch grid up to
    ``max_batch`` and ``thpt(bb) = c - a * exp(-b * bb)`` fitted to it.
    """
    first, keys = distinct(X)
    grid = np.unique(np.round(np.geomspace(1, max_batch, 12)))
    # One prediction call for every configuration's grid, then one fit per curve.
    query = first.loc[first.index.repeat(grid.size)].reset_index(drop=True).assign(
        batch_size=np.tile(grid, len(first)))
    y = model.predict(query, live).reshape(len(first), grid.size)
    rows = []
    for curve_y in y:
        est = ThroughputCurve().fit(grid, curve_y)
        rows.append({"a": est.a_, "b": est.b_, "c": est.c_, "fit_mape": est.mape_})
    return pd.DataFrame(rows, index=keys)


def explain(model, X: TableLike, live: TableLike | None = None, top: int = 3) -> list[dict]:
    """Why each distinct configuration of the query got its prediction.

    Per configuration: the analytical parameters, where the prediction came from
    (siblings or the global regressor), the nearest observed configurations with their
    similarity, the expected error and the live points used.
    """
    first, _ = distinct(X)
    params = curve_parameters(model, first, live)
    frame = model._frame(first, live)
    feats = config_features(first, model.catalog_)
    sim = model.embedding_.similarity(feats)
    configs, ids = model.configs_, model.embedding_.ids_
    out = []
    for i in range(len(first)):
        order = np.argsort(-sim[i])[:top]
        neighbours = [{"config_id": str(ids[j]), "model": configs.loc[ids[j], "model"],
                       "hardware": configs.loc[ids[j], "hardware"], "num_gpus": int(configs.loc[ids[j], "num_gpus"]),
                       "workload": configs.loc[ids[j], "workload"], "similarity": round(float(sim[i, j]), 4)}
                      for j in order]
        n_sib = int(frame["n_siblings"].iloc[i])
        n_bench = int(frame["k_measured"].iloc[i]) - int(frame["k_live"].iloc[i])
        source = (f"{n_sib} sibling curve(s) of the same deployment, blended with the global regressor"
                  if n_sib else "global regressor (no benchmarked sibling)")
        if n_bench:
            source = f"its own benchmark ({n_bench} measured point(s)) over a prior from {source}"
        out.append({
            "model": first.loc[i, "model"], "hardware": first.loc[i, "hardware"],
            "parameters": {k: float(params.iloc[i][k]) for k in ("a", "b", "c")},
            "source": source, "benchmark_points": n_bench,
            "similarity": float(frame["sim_max"].iloc[i]),
            "expected_error": float(frame["expected_error"].iloc[i]),
            "live_points": int(frame["k_live"].iloc[i]),
            "nearest": neighbours,
        })
    return out
