"""Simulated annealing over subsets of the training configurations.

Every visited subset trains a model and yields held-out errors; the search steers towards
subsets whose held-out records fill situations the records so far lack (low similarity,
few siblings), so that the error predictor learns the whole range it will meet.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd


@dataclass
class AnnealingResult:
    """Outcome of :func:`anneal_subsets`, shaped like ``scipy.optimize.OptimizeResult``.

    ``x`` is the best subset (boolean mask over items), ``fun`` its energy, ``nit`` the
    iterations, ``nfev`` the subsets evaluated, ``records`` every held-out record.
    """

    x: np.ndarray
    fun: float
    nit: int
    nfev: int
    success: bool
    message: str
    records: pd.DataFrame = field(repr=False, default_factory=pd.DataFrame)
    energies: np.ndarray = field(repr=False, default_factory=lambda: np.empty(0))


def coverage_energy(counts: np.ndarray) -> float:
    """Negative entropy of a histogram: lower when records cover the bins evenly."""
    p = counts[counts > 0] / counts.sum()
    return float(np.sum(p * np.log(p)))


def anneal_subsets(evaluate: Callable[[np.ndarray, int], pd.DataFrame], groups: np.ndarray, *,
                   n_iter: int = 40, keep: float = 0.8, bins: Callable[[pd.DataFrame], np.ndarray],
                   n_bins: int, temperature: float = 0.05, cooling: float = 0.93,
                   rng: np.random.Generator | int | None = None, search: str = "anneal") -> AnnealingResult:
    """Search training subsets whose held-out records cover the situation space evenly.

    Parameters
    ----------
    evaluate : callable
        ``evaluate(mask, step) -> DataFrame`` of held-out records for training subset ``mask``.
    groups : ndarray
        Group label per item; moves add or remove whole groups (a model on an
        accelerator), so that subsets without any sibling or relative arise.
    n_iter : int
        Subsets to evaluate.
    keep : float
        Share of groups in the starting subset.
    bins : callable
        Maps records to histogram bin indices in ``[0, n_bins)``.
    rng : Generator, int or None
        Source of randomness (``np.random.default_rng(rng)``).
    search : {"anneal", "random"}
        ``"random"``: every subset drawn afresh (each group kept with probability
        ``keep``) and none steered, the baseline the annealing is measured against
        (``ala evaluate`` task N); as many subsets, the same held-out records per subset.

    Returns
    -------
    AnnealingResult

    Notes
    -----
    Energy of a subset: ``sum p log p`` of the histogram of all records so far plus the
    subset's own. A worse subset is accepted with probability ``exp(-dE / T)``, with
    ``T`` shrinking by ``cooling`` per step.
    """
    if n_iter < 1:
        raise ValueError("n_iter must be at least 1.")
    if not 0 < keep < 1:
        raise ValueError("keep must lie strictly between 0 and 1.")
    if search not in ("anneal", "random"):
        raise ValueError(f"search must be 'anneal' or 'random', got {search!r}.")
    rng = np.random.default_rng(rng)
    labels, group_of = np.unique(groups, return_inverse=True)
    if labels.size < 2:
        raise ValueError("annealing needs at least 2 groups of configurations.")
    state = rng.random(labels.size) < keep
    state[rng.integers(labels.size)] = False
    state[rng.integers(labels.size)] = True
    counts = np.zeros(n_bins)
    all_records, energies = [], []
    current_energy, best_energy, best_state = np.inf, np.inf, state.copy()
    temp = temperature
    for step in range(n_iter):
        if search == "random":
            proposal = rng.random(labels.size) < keep
            flips = rng.choice(labels.size, size=1)
        else:
            proposal = state.copy()
            flips = rng.choice(labels.size, size=max(1, labels.size // 20), replace=False)
            proposal[flips] = ~proposal[flips]
        if proposal.all() or not proposal.any():
            proposal[flips[0]] = not proposal[flips[0]]
        records = evaluate(proposal[group_of], step)
        if len(records):
            all_records.append(records.assign(step=step))
            step_counts = np.bincount(bins(records), minlength=n_bins)[:n_bins]
        else:
            step_counts = np.zeros(n_bins)
        energy = coverage_energy(counts + step_counts) if (counts + step_counts).sum() else 0.0
        energies.append(energy)
        if energy <= current_energy or rng.random() < np.exp(-(energy - current_energy) / temp):
            state, current_energy = proposal, energy
        if energy < best_energy:
            best_energy, best_state = energy, proposal.copy()
        counts += step_counts
        temp *= cooling
    records = pd.concat(all_records, ignore_index=True) if all_records else pd.DataFrame()
    return AnnealingResult(x=best_state[group_of], fun=best_energy, nit=n_iter, nfev=n_iter,
                           success=bool(len(records)), records=records,
                           energies=np.asarray(energies),
                           message="records collected" if len(records) else "no held-out records")
