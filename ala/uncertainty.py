"""Expected error, calibrated intervals and confidence from held-out records.

An error predictor learns the size of a prediction's log error from the situation (how
similar the query is to observed workloads, siblings, live points); split-conformal
calibration of errors scaled by it turns that into intervals that cover what they claim.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.utils.validation import check_is_fitted

#: Columns of a record that the error predictor reads.
RECORD_FEATURES = ("sim_max", "sim_top", "n_siblings", "pair_seen", "model_seen", "hardware_seen",
                   "sibling_gap", "log_batch", "k_live",
                   "live_gap", "static_batch", "log_gpus", "log_params", "multimodal",
                   "catalog_estimated", "prior_shift")
#: Relative error within which the confidence score counts a prediction as right.
CONFIDENCE_TOLERANCE = 0.10
_FLOOR = 0.005


def stratum(k_live: np.ndarray, n_siblings: np.ndarray, pair_seen: np.ndarray,
            estimated: np.ndarray | None = None, hardware_seen: np.ndarray | None = None) -> np.ndarray:
    """Calibration stratum: live points (0, 1, 2, 3+) times what the training data knows.

    Knowledge levels: 2 = sibling curves of the same deployment, 1 = the same model on
    the same accelerator in another deployment, 4 = neither, on an accelerator training
    never measured, 3 = neither and the model known by its size alone (attention shape
    estimated), 0 = neither otherwise. Errors of a transfer to an unseen accelerator and
    of an interpolation between siblings differ in kind, so each gets its own conformal
    quantile.
    """
    level = np.where(np.asarray(n_siblings) > 0, 2, np.where(np.asarray(pair_seen) > 0, 1, 0))
    if estimated is not None:
        level = np.where((level == 0) & (np.asarray(estimated) > 0), 3, level)
    if hardware_seen is not None:
        level = np.where(((level == 0) | (level == 3)) & (np.asarray(hardware_seen) <= 0), 4, level)
    return LEVELS * np.minimum(np.asarray(k_live, int), 3) + level


#: Knowledge levels per live-point count in :func:`stratum`.
LEVELS = 5


class ErrorPredictor(BaseEstimator):
    """Gradient-boosted model of ``log(|log error|)`` from record features.

    Parameters
    ----------
    random_state : int or None
    """

    def __init__(self, random_state=None):
        self.random_state = random_state

    def fit(self, records: pd.DataFrame) -> "ErrorPredictor":
        X = records[list(RECORD_FEATURES)].to_numpy(float)
        y = np.log(np.abs(records["log_error"].to_numpy(float)) + _FLOOR)
        self.model_ = HistGradientBoostingRegressor(max_iter=150, learning_rate=0.05,
                                                    max_leaf_nodes=15, min_samples_leaf=40,
                                                    random_state=self.random_state).fit(X, y)
        return self

    def predict(self, records: pd.DataFrame) -> np.ndarray:
        """Expected absolute log error (a scale, > 0) of each record's prediction."""
        check_is_fitted(self, "model_")
        return np.exp(self.model_.predict(records[list(RECORD_FEATURES)].to_numpy(float)))


class ConformalCalibrator(BaseEstimator):
    """Split-conformal quantiles of scaled errors ``|log error| / expected``, per stratum.

    Scores may come in families of held-out splits (``family``: 0 = pairs and single curves
    out, 1 = whole sources out, 2 = whole accelerators out). An interval is as wide as the
    widest family asks, and the confidence as low as the lowest family says: a query's
    curve may be new in more than one way
    (a user's deployment is always measured somewhere training was not), and each family's
    quantile holds for its own kind of novelty. A family without enough scores in a
    stratum's pools is not asked there.
    """

    def fit(self, scores: np.ndarray, strata: np.ndarray, family: np.ndarray | None = None) -> "ConformalCalibrator":
        scores = np.asarray(scores, float)
        strata = np.asarray(strata, int)
        family = np.zeros(scores.size, int) if family is None else np.asarray(family, int)
        self.families_ = {}
        for f in np.unique(family):
            sel = family == f
            sc, st = scores[sel], strata[sel]
            self.families_[int(f)] = (
                {int(s): np.sort(sc[st == s]) for s in np.unique(st)},
                {int(lv): np.sort(sc[st % LEVELS == lv]) for lv in np.unique(st % LEVELS)},
                np.sort(sc))
        self.scores_, self.level_scores_, self.all_scores_ = self.families_[min(self.families_)]
        return self

    def _pools(self, s: int) -> list[np.ndarray]:
        """The scores each family answers stratum ``s`` with."""
        families = getattr(self, "families_", None) or {0: (self.scores_, self.level_scores_, self.all_scores_)}
        out = []
        for f, (by_stratum, by_level, everything) in sorted(families.items()):
            pool = self._scores(s, by_stratum, by_level, everything if f == min(families) else None)
            if pool is not None:
                out.append(pool)
        return out

    @staticmethod
    def _scores(s: int, by_stratum: dict, by_level: dict, everything: np.ndarray | None) -> np.ndarray | None:
        # Too few scores in a stratum: pool over live points within the same knowledge
        # level first, and only then over everything (the first family only).
        for pool in (by_stratum.get(int(s)), by_level.get(int(s) % LEVELS)):
            if pool is not None and pool.size >= 30:
                return pool
        return everything

    def quantile(self, confidence_level: float, strata: np.ndarray) -> np.ndarray:
        """Score quantile with the finite-sample correction ``ceil((n + 1) level) / n``."""
        if not 0 < confidence_level < 1:
            raise ValueError("confidence_level must lie strictly between 0 and 1.")
        out = np.empty(len(strata))
        for s in np.unique(strata):
            qs = []
            for scores in self._pools(s):
                rank = min(int(np.ceil((scores.size + 1) * confidence_level)), scores.size) - 1
                qs.append(scores[rank])
            out[strata == s] = max(qs)
        return out

    def confidence(self, expected: np.ndarray, strata: np.ndarray) -> np.ndarray:
        """Probability that the relative error is within ``CONFIDENCE_TOLERANCE``.

        Notes
        -----
        ``P(|log err| <= log(1 + tol)) = min_f F_{f,s}(log(1 + tol) / expected)`` with
        ``F_{f,s}`` the empirical distribution of family ``f``'s calibration scores of the stratum.
        """
        out = np.empty(len(expected))
        limit = np.log1p(CONFIDENCE_TOLERANCE) / np.asarray(expected, float)
        for s in np.unique(strata):
            sel = strata == s
            out[sel] = np.min([np.searchsorted(scores, limit[sel], side="right") / scores.size
                               for scores in self._pools(s)], axis=0)
        return out
