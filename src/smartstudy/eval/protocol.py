"""Evaluation protocols: split an interactions frame, fit each model, score held-out rows.

Test rows are predicted one step ahead (``LearnerModel.predict``: each row sees the fitted
model plus the earlier rows of the same user, never its own outcome), the protocol of the
knowledge-tracing comparisons of Piech et al. (2015) and Gervet et al. (2020). Splits keep
each user wholly on one side, so test users are new to the model (cold start plus online
history), as a new student of the deployed app would be.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import pandas as pd

from smartstudy.data.loaders import load_dataset
from smartstudy.data.schema import usable_times
from smartstudy.eval.metrics import correctness_metrics, time_metrics
from smartstudy.eval.report import EvaluationReport, ModelResult
from smartstudy.models.base import LearnerModel

SplitMode = Literal["auto", "own", "student"]
SPLIT_MODES: tuple[str, ...] = ("auto", "own", "student")
_TIME_COLUMNS = ("time_median_s", "time_p10_s", "time_p90_s")


def _require_columns(df: pd.DataFrame, columns: tuple[str, ...], what: str) -> None:
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"{what}: expected a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{what}: missing column(s) {', '.join(f'`{c}`' for c in missing)}")


def split_by_student(
    df: pd.DataFrame, test_fraction: float = 0.2, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hold out ``round(test_fraction * n_users)`` whole users (at least one each side).

    The draw depends only on the set of user ids and ``seed``, not on row order, so the
    same data give the same split. Row order and index are kept on both sides.
    """
    _require_columns(df, ("user_id",), "split_by_student")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must lie strictly between 0 and 1, got {test_fraction!r}")
    user = df["user_id"].astype(str)
    users = np.sort(user.unique().astype(object))
    if len(users) < 2:
        raise ValueError(f"split_by_student needs at least 2 users, got {len(users)}")
    n_test = min(max(round(test_fraction * len(users)), 1), len(users) - 1)
    rng = np.random.default_rng(seed)
    test_users = users[rng.permutation(len(users))[:n_test]]
    in_test = user.isin(test_users).to_numpy()
    return df.loc[~in_test].copy(), df.loc[in_test].copy()


def split_own(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Use the data set's published split: the ``split`` column holding "train"/"test"."""
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"split_own: expected a pandas DataFrame, got {type(df).__name__}")
    if "split" not in df.columns:
        raise ValueError("split_own: no `split` column; this data has no published split")
    split = df["split"].astype(str)
    bad = ~split.isin(("train", "test")).to_numpy()
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"split_own: expected column `split` with values train/test, got "
            f"{df['split'].iloc[pos]!r} in row {df.index[pos]}"
        )
    is_test = (split == "test").to_numpy()
    if is_test.all() or not is_test.any():
        side = "train" if is_test.all() else "test"
        raise ValueError(f"split_own: the `split` column has no {side} rows")
    return df.loc[~is_test].copy(), df.loc[is_test].copy()


def evaluate_model(
    model: LearnerModel, train: pd.DataFrame, test: pd.DataFrame, *, name: str | None = None
) -> ModelResult:
    """Fit ``model`` on ``train``, predict ``test`` one step ahead and score it.

    Correctness metrics use the test rows with a known outcome. Time metrics are added
    when the model has ``predicts_time`` and some test row has a response time.
    """
    if not isinstance(model, LearnerModel):
        raise TypeError(f"expected a LearnerModel, got {type(model).__name__}")
    _require_columns(test, ("correct",), "evaluate_model test data")
    label = name if name is not None else model.name

    start = time.perf_counter()
    fitted = model.fit(train)
    fit_seconds = time.perf_counter() - start
    # The contract says fit returns self; tolerate a model that returns None.
    if isinstance(fitted, LearnerModel):
        model = fitted

    start = time.perf_counter()
    pred = model.predict(test)
    predict_seconds = time.perf_counter() - start
    if "p_correct" not in pred.columns:
        raise ValueError(f"{label}: predict() returned no `p_correct` column")
    if len(pred) != len(test):
        raise ValueError(f"{label}: predict() returned {len(pred)} rows for {len(test)} test rows")

    y = pd.to_numeric(test["correct"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    p = pred["p_correct"].to_numpy(dtype=float, na_value=np.nan)
    known = ~np.isnan(y)
    try:
        scores = correctness_metrics(y[known], p[known])
    except ValueError as exc:
        raise ValueError(f"{label}: {exc}") from exc

    timed, n_time = _time_scores(label, model, test, pred)
    return ModelResult(
        name=label,
        model_class=type(model).__name__,
        auc=scores["auc"],
        accuracy=scores["accuracy"],
        log_loss=scores["log_loss"],
        rmse=scores["rmse"],
        ece=scores["ece"],
        n_predictions=scores["n"],
        fit_seconds=fit_seconds,
        predict_seconds=predict_seconds,
        mae_seconds=timed["mae_seconds"],
        rmse_log_time=timed["rmse_log_time"],
        coverage80=timed["coverage80"],
        n_time_predictions=n_time,
        params=model.get_params(),
    )


def _time_scores(
    label: str, model: LearnerModel, test: pd.DataFrame, pred: pd.DataFrame
) -> tuple[dict[str, Any], int]:
    """The time metrics of ``pred`` on ``test`` and how many rows they use (None and 0 when
    the model predicts no times or no test row has one)."""
    none: dict[str, Any] = {"mae_seconds": None, "rmse_log_time": None, "coverage80": None}
    if not (model.predicts_time and "rt_seconds" in test.columns):
        return none, 0
    # A time that is not a duration (zero, negative, infinite) is missing here as it was
    # for the model (``validate_interactions``, which warned about it in predict).
    actual = usable_times(
        pd.to_numeric(test["rt_seconds"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    )
    if np.isnan(actual).all():
        return none, 0
    missing = [c for c in _TIME_COLUMNS if c not in pred.columns]
    if missing:
        raise ValueError(
            f"{label}: predicts_time is set but predict() returned no "
            f"{', '.join(f'`{c}`' for c in missing)}"
        )
    try:
        tm = time_metrics(
            actual,
            pred["time_median_s"].to_numpy(dtype=float, na_value=np.nan),
            pred["time_p10_s"].to_numpy(dtype=float, na_value=np.nan),
            pred["time_p90_s"].to_numpy(dtype=float, na_value=np.nan),
        )
    except ValueError as exc:
        raise ValueError(f"{label}: {exc}") from exc
    n_time = tm.pop("n")
    return tm, n_time


def run_evaluation(
    dataset: str | pd.DataFrame,
    models: Mapping[str, LearnerModel],
    *,
    split: SplitMode = "auto",
    test_fraction: float = 0.2,
    seed: int = 0,
    root: str | os.PathLike[str] | None = None,
    load_options: Mapping[str, Any] | None = None,
) -> EvaluationReport:
    """Evaluate every model of ``models`` on one data set under one split.

    ``dataset`` is a name from :data:`smartstudy.data.loaders.DATASETS` (loaded from
    ``root`` with ``load_options``) or an interactions DataFrame (named by its
    ``attrs["dataset"]`` if set). ``split``: "own" uses the ``split`` column, "student"
    holds out ``test_fraction`` of users with ``seed``, "auto" takes "own" when the data
    have a ``split`` column and "student" otherwise.
    """
    if split not in SPLIT_MODES:
        raise ValueError(f"split must be one of {', '.join(SPLIT_MODES)}, got {split!r}")
    if not models:
        raise ValueError("models is empty: pass at least one {name: model}")
    for key, model in models.items():
        if not isinstance(model, LearnerModel):
            raise TypeError(f"models[{key!r}] is a {type(model).__name__}, not a LearnerModel")

    if isinstance(dataset, str):
        df = load_dataset(dataset, root=root, **dict(load_options or {}))
        name = dataset
    elif isinstance(dataset, pd.DataFrame):
        if load_options:
            raise ValueError("load_options apply only when dataset is a data set name")
        df = dataset
        name = str(dataset.attrs.get("dataset", "dataframe"))
    else:
        raise TypeError(f"dataset must be a name or a DataFrame, got {type(dataset).__name__}")
    _require_columns(df, ("user_id", "correct"), f"data set {name!r}")

    mode = split if split != "auto" else ("own" if "split" in df.columns else "student")
    if mode == "own":
        train, test = split_own(df)
        protocol = "own train/test split (`split` column); one-step-ahead prediction on test"
        used_seed: int | None = None
    else:
        train, test = split_by_student(df, test_fraction=test_fraction, seed=seed)
        protocol = (
            f"split by student: {test_fraction:.0%} of users held out (seed {seed}); "
            "one-step-ahead prediction on test"
        )
        used_seed = seed

    results = [evaluate_model(model, train, test, name=key) for key, model in models.items()]
    return EvaluationReport(
        dataset=name,
        protocol=protocol,
        n_train_rows=len(train),
        n_train_users=int(train["user_id"].nunique()),
        n_test_rows=len(test),
        n_test_users=int(test["user_id"].nunique()),
        results=results,
        seed=used_seed,
    )


__all__ = [
    "SPLIT_MODES",
    "evaluate_model",
    "run_evaluation",
    "split_by_student",
    "split_own",
]
