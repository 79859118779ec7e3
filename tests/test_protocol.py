"""Splitting protocols, evaluate_model / run_evaluation end to end, and the report."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Self

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from smartstudy.data import InteractionsWarning
from smartstudy.data.loaders import DatasetNotFoundError
from smartstudy.data.schema import sort_for_sequences, validate_interactions
from smartstudy.eval import (
    EvaluationReport,
    ModelResult,
    auc,
    evaluate_model,
    run_evaluation,
    split_by_student,
    split_own,
)
from smartstudy.eval.report import NOT_APPLICABLE, TABLE_COLUMNS
from smartstudy.models import Baseline
from smartstudy.models.base import LearnerModel


class RunningMean(LearnerModel):
    """Test double: a user's mean of earlier outcomes, shrunk towards the training mean.

    p = (correct so far + prior_weight * global mean) / (attempts so far + prior_weight);
    time: the training median with an interval of [median / 2, median * 2].
    """

    name = "running_mean"
    predicts_time = True

    def __init__(self, prior_weight: float = 1.0) -> None:
        self.prior_weight = prior_weight

    def fit(self, df: pd.DataFrame) -> Self:
        data = validate_interactions(df)
        self.global_mean_ = float(data["correct"].mean())
        times = data["rt_seconds"].dropna()
        self.median_time_ = float(times.median()) if len(times) else 10.0
        self.fitted_ = True
        return self

    def _predict_validated(self, data: pd.DataFrame) -> pd.DataFrame:
        pos = sort_for_sequences(data)
        rows = data.iloc[pos]
        seen = rows["correct"].notna().astype(float)
        wins = rows["correct"].fillna(0.0)
        users = rows["user_id"]
        wins_before = wins.groupby(users).cumsum() - wins
        seen_before = seen.groupby(users).cumsum() - seen
        p_sorted = (wins_before + self.prior_weight * self.global_mean_) / (
            seen_before + self.prior_weight
        )
        p = np.empty(len(data))
        p[pos] = p_sorted.to_numpy()
        median = np.full(len(data), self.median_time_)
        return pd.DataFrame(
            {
                "p_correct": p,
                "time_median_s": median,
                "time_p10_s": median / 2,
                "time_p90_s": median * 2,
            },
            index=data.index,
        )

    def update(self, row: Mapping[str, Any]) -> None:
        self._check_fitted()

    def _get_state(self) -> dict[str, Any]:
        return {"global_mean": self.global_mean_, "median_time": self.median_time_}

    def _set_state(self, state: dict[str, Any]) -> None:
        self.global_mean_ = float(state["global_mean"])
        self.median_time_ = float(state["median_time"])


class RunningMeanNoTime(RunningMean):
    """The same model, declared as predicting correctness only."""

    name = "running_mean_no_time"
    predicts_time = False


def make_interactions(n_users: int = 40, n_rows: int = 8, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ability = rng.normal(size=n_users)
    rows = []
    for u in range(n_users):
        for k in range(n_rows):
            p = 1 / (1 + np.exp(-(ability[u] + 0.2 * k - 0.5)))
            rt = float(rng.lognormal(3.0, 0.5)) if rng.random() > 0.1 else np.nan
            rows.append((f"u{u:02d}", f"i{k % 5}", f"s{k % 2}", int(rng.random() < p), rt, k))
    return pd.DataFrame(
        rows, columns=["user_id", "item_id", "skill_id", "correct", "rt_seconds", "order"]
    )


# -- splits -----------------------------------------------------------------------------
def test_split_by_student_is_disjoint_complete_and_sized():
    df = make_interactions()
    train, test = split_by_student(df, test_fraction=0.25, seed=3)
    assert set(train["user_id"]).isdisjoint(test["user_id"])
    assert len(train) + len(test) == len(df)
    assert test["user_id"].nunique() == 10  # 25% of 40 users, each user wholly on one side
    assert sorted([*train.index, *test.index]) == list(df.index)
    # Rows keep their order and values.
    pd.testing.assert_frame_equal(test, df.loc[test.index])


def test_split_by_student_is_deterministic_and_ignores_row_order():
    df = make_interactions()
    _, test_a = split_by_student(df, seed=7)
    _, test_b = split_by_student(df, seed=7)
    shuffled = df.sample(frac=1.0, random_state=0)
    _, test_c = split_by_student(shuffled, seed=7)
    _, test_other = split_by_student(df, seed=8)
    assert set(test_a["user_id"]) == set(test_b["user_id"]) == set(test_c["user_id"])
    assert set(test_a["user_id"]) != set(test_other["user_id"])


def test_split_by_student_keeps_both_sides_non_empty():
    df = make_interactions(n_users=3, n_rows=2)
    train, test = split_by_student(df, test_fraction=0.01)
    assert test["user_id"].nunique() == 1 and train["user_id"].nunique() == 2
    train, test = split_by_student(df, test_fraction=0.99)
    assert test["user_id"].nunique() == 2 and train["user_id"].nunique() == 1


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_split_by_student_rejects_bad_fractions(fraction):
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        split_by_student(make_interactions(), test_fraction=fraction)


def test_split_by_student_needs_two_users_and_a_user_column():
    with pytest.raises(ValueError, match="at least 2 users, got 1"):
        split_by_student(make_interactions(n_users=1))
    with pytest.raises(ValueError, match="missing column"):
        split_by_student(pd.DataFrame({"x": [1]}))


def test_split_own_uses_the_split_column():
    df = make_interactions(n_users=4, n_rows=2)
    df["split"] = np.where(df["user_id"].isin(["u00", "u01"]), "test", "train")
    train, test = split_own(df)
    assert set(test["user_id"]) == {"u00", "u01"}
    assert set(train["split"]) == {"train"}
    with pytest.raises(ValueError, match="no `split` column"):
        split_own(df.drop(columns="split"))
    bad = df.assign(split=df["split"].replace("test", "valid"))
    with pytest.raises(ValueError, match="values train/test, got 'valid' in row 0"):
        split_own(bad)
    with pytest.raises(ValueError, match="no test rows"):
        split_own(df.assign(split="train"))


# -- evaluate_model ---------------------------------------------------------------------
def test_evaluate_model_scores_one_step_ahead_predictions():
    df = make_interactions()
    train, test = split_by_student(df, seed=0)
    result = evaluate_model(RunningMean(prior_weight=2.0), train, test)
    # Recompute the one-step-ahead predictions by hand, row by row.
    g = float(train["correct"].mean())
    expected = pd.Series(index=test.index, dtype=float)
    for _, rows in test.sort_values("order").groupby("user_id"):
        wins = seen = 0.0
        for idx, row in rows.iterrows():
            expected[idx] = (wins + 2.0 * g) / (seen + 2.0)
            wins += row["correct"]
            seen += 1
    assert result.auc == pytest.approx(auc(test["correct"], expected))
    assert result.name == "running_mean"
    assert result.model_class == "RunningMean"
    assert result.params == {"prior_weight": 2.0}
    assert result.n_predictions == len(test)
    assert result.fit_seconds >= 0 and result.predict_seconds >= 0
    # Time metrics: the constant median with a [median/2, 2 median] interval.
    median = float(train["rt_seconds"].median())
    known = test["rt_seconds"].dropna()
    assert result.n_time_predictions == len(known)
    assert result.mae_seconds == pytest.approx(float(np.mean(np.abs(known - median))))
    inside = (known >= median / 2) & (known <= median * 2)
    assert result.coverage80 == pytest.approx(float(inside.mean()))


def test_evaluate_model_skips_time_metrics_when_not_applicable():
    df = make_interactions()
    train, test = split_by_student(df)
    no_time_model = evaluate_model(RunningMeanNoTime(), train, test)
    assert not no_time_model.has_time_metrics and no_time_model.n_time_predictions == 0
    no_times = evaluate_model(RunningMean(), train, test.assign(rt_seconds=np.nan))
    assert no_times.mae_seconds is None and no_times.coverage80 is None


def test_evaluate_model_ignores_rows_without_an_outcome():
    df = make_interactions()
    train, test = split_by_student(df)
    test = test.astype({"correct": float})
    test.iloc[:3, test.columns.get_loc("correct")] = np.nan
    result = evaluate_model(RunningMean(), train, test)
    assert result.n_predictions == len(test) - 3


def test_evaluation_reads_unusable_times_as_missing():
    """Real logs hold zero and negative durations (credential_form1 has 109 zeros): an
    outside evaluation that passes them as they are gets the figures of the same frame with
    those times missing, and a warning, not an error."""
    df = make_interactions().reset_index(drop=True)
    rows = df.index[::7]
    bad = df.assign(rt_seconds=df["rt_seconds"].astype(float))
    bad.loc[rows, "rt_seconds"] = np.resize([0.0, -2.5, np.inf], len(rows))
    missing = df.assign(rt_seconds=df["rt_seconds"].astype(float))
    missing.loc[rows, "rt_seconds"] = np.nan
    with pytest.warns(InteractionsWarning, match="rt_seconds"):
        got = run_evaluation(bad, {"baseline": Baseline()}, seed=3).results[0]
    want = run_evaluation(missing, {"baseline": Baseline()}, seed=3).results[0]
    assert got.n_time_predictions == want.n_time_predictions > 0
    for key in ("auc", "log_loss", "ece", "rmse_log_time", "mae_seconds", "coverage80"):
        assert getattr(got, key) == pytest.approx(getattr(want, key), rel=1e-12), key


def test_evaluate_model_requires_a_learner_model():
    df = make_interactions()
    with pytest.raises(TypeError, match="expected a LearnerModel"):
        evaluate_model(object(), df, df)  # type: ignore[arg-type]


# -- run_evaluation ---------------------------------------------------------------------
def test_run_evaluation_end_to_end_by_student():
    df = make_interactions()
    report = run_evaluation(
        df, {"rm": RunningMean(), "rm_no_time": RunningMeanNoTime()}, test_fraction=0.25, seed=5
    )
    assert isinstance(report, EvaluationReport)
    assert report.dataset == "dataframe"
    assert "split by student" in report.protocol and "seed 5" in report.protocol
    assert report.seed == 5
    assert report.n_train_users == 30 and report.n_test_users == 10
    assert report.n_train_rows + report.n_test_rows == len(df)
    assert [r.name for r in report.results] == ["rm", "rm_no_time"]
    rm, rm_no_time = report.results
    assert isinstance(rm, ModelResult)
    assert rm.auc == pytest.approx(rm_no_time.auc)  # same predictions
    assert 0.5 < rm.auc <= 1.0  # earlier outcomes carry signal in the simulated data
    assert rm.has_time_metrics and not rm_no_time.has_time_metrics
    assert report.result("rm") is rm
    with pytest.raises(KeyError, match="evaluated: rm, rm_no_time"):
        report.result("other")
    # Same inputs, same split and metrics.
    again = run_evaluation(df, {"rm": RunningMean()}, test_fraction=0.25, seed=5)
    assert again.results[0].auc == rm.auc


def test_run_evaluation_auto_uses_the_own_split():
    df = make_interactions(n_users=10)
    df["split"] = np.where(df["user_id"] < "u03", "test", "train")
    df.attrs["dataset"] = "toy"
    report = run_evaluation(df, {"rm": RunningMean()})
    assert report.dataset == "toy"
    assert report.protocol.startswith("own train/test split")
    assert report.seed is None
    assert report.n_test_users == 3 and report.n_test_rows == 3 * 8
    student = run_evaluation(df, {"rm": RunningMean()}, split="student", test_fraction=0.5)
    assert student.n_test_users == 5
    with pytest.raises(ValueError, match="no `split` column"):
        run_evaluation(df.drop(columns="split"), {"rm": RunningMean()}, split="own")


def test_run_evaluation_validates_its_arguments():
    df = make_interactions()
    with pytest.raises(ValueError, match="split must be one of auto, own, student"):
        run_evaluation(df, {"rm": RunningMean()}, split="kfold")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="models is empty"):
        run_evaluation(df, {})
    with pytest.raises(TypeError, match=r"models\['x'\] is a str"):
        run_evaluation(df, {"x": "not a model"})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="unknown data set"):
        run_evaluation("nope", {"rm": RunningMean()})


def test_run_evaluation_on_a_real_data_set():
    try:
        report = run_evaluation(
            "mars_ib", {"rm": RunningMean()}, load_options={"timeouts": "drop"}, seed=1
        )
    except DatasetNotFoundError as exc:
        pytest.skip(f"public data sets not available: {exc}")
    assert report.dataset == "mars_ib"
    assert report.n_train_users + report.n_test_users == 1_584 - 83
    assert report.n_test_users == round(0.2 * (1_584 - 83))
    rm = report.results[0]
    assert 0.5 < rm.auc < 1.0
    assert rm.n_time_predictions == report.n_test_rows  # timeouts dropped: all timed


# -- report -----------------------------------------------------------------------------
def test_report_to_dict_is_json_and_rounded():
    report = run_evaluation(make_interactions(), {"rm": RunningMean(), "nt": RunningMeanNoTime()})
    out = report.to_dict()
    text = json.dumps(out, allow_nan=False)
    assert json.loads(text) == out
    assert out["train"]["rows"] + out["test"]["rows"] == 320
    rm, nt = out["results"]
    assert rm["auc"] == round(report.results[0].auc, 4)
    assert nt["mae_seconds"] is None and nt["coverage80"] is None
    assert rm["params"] == {"prior_weight": 1.0}
    nan_result = ModelResult("x", "X", float("nan"), 0.5, 0.7, 0.5, 0.1, 2, 0.0, 0.0)
    assert nan_result.to_dict()["auc"] is None


def test_report_to_table_has_one_row_per_model_and_dashes():
    report = run_evaluation(make_interactions(), {"rm": RunningMean(), "nt": RunningMeanNoTime()})
    table = report.to_table()
    assert [c.header for c in table.columns] == list(TABLE_COLUMNS)
    assert table.row_count == 2
    console = Console(record=True, width=200)
    console.print(table)
    lines = console.export_text().splitlines()
    assert all(h in "\n".join(lines) for h in ("LogLoss", "RMSE log t", "Cov80"))
    row = {line.strip("│┃ ").split()[0]: line for line in lines if "│" in line}
    # The correctness-only model has no MAE, RMSE log t and Cov80; the other has all three.
    assert row["nt"].count(NOT_APPLICABLE) == 3
    assert NOT_APPLICABLE not in row["rm"]
