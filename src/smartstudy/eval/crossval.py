"""k-fold cross-validation of a learner model, split by student.

The ``crossvalidate`` of pyBKT (Badrinath, Wang & Pardos 2021, EDM 2021), for any model of the
SmartStudy contract: each fold's students are predicted one step ahead by a fresh model with
the same hyperparameters fitted on the other folds' students.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import pandas as pd

from smartstudy.data.schema import validate_interactions
from smartstudy.eval.metrics import auc, log_loss, rmse
from smartstudy.models.base import LearnerModel

CV_METRICS: tuple[str, ...] = ("auc", "rmse", "log_loss")


def crossvalidate(
    model: LearnerModel, df: pd.DataFrame, k: int = 5, seed: int = 0
) -> dict[str, Any]:
    """``k``-fold cross-validation of ``model``'s hyperparameters, split by student.

    Every user is in exactly one fold (assigned at random with ``seed``). Each fold is
    predicted one step ahead by ``type(model)(**model.get_params())`` fitted on the other
    folds. Returns the mean ``auc``, ``rmse`` and ``log_loss`` over folds, their standard
    deviations (``*_sd``), the per-fold numbers in ``folds`` and ``k``. ``model`` itself is
    neither fitted nor changed.
    """
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 2:
        raise ValueError(f"k must be an integer >= 2, got {k!r}")
    data = validate_interactions(df)
    users = np.array(sorted(set(data["user_id"])), dtype=object)
    if len(users) < k:
        raise ValueError(f"crossvalidate needs at least k={k} users, got {len(users)}")
    rng = np.random.default_rng(seed)
    fold_of_user = dict(
        zip(users[rng.permutation(len(users))], np.arange(len(users)) % k, strict=True)
    )
    fold = data["user_id"].map(fold_of_user).to_numpy()
    folds = [_score_fold(model, df, data, fold == j) for j in range(k)]
    out: dict[str, Any] = {"k": k, "folds": folds}
    for metric in CV_METRICS:
        values = np.array([f[metric] for f in folds], dtype=float)
        values = values[~np.isnan(values)]  # a fold of one outcome class has no AUC
        out[metric] = float(values.mean()) if len(values) else float("nan")
        out[f"{metric}_sd"] = float(values.std()) if len(values) else float("nan")
    return out


def _score_fold(
    model: LearnerModel, df: pd.DataFrame, data: pd.DataFrame, held: np.ndarray
) -> dict[str, float]:
    """Metrics of the ``held`` rows predicted by a fresh model fitted on the others."""
    fresh = type(model)(**model.get_params()).fit(df.loc[~held])
    p = fresh.predict(df.loc[held])["p_correct"].to_numpy()
    y = data.loc[held, "correct"].to_numpy()
    return {
        "auc": auc(y, p) if 0 < y.sum() < len(y) else float("nan"),
        "rmse": rmse(y, p),
        "log_loss": log_loss(y, p),
        "n": len(y),
    }
