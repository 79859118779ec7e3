"""The dominant-user scenario (seed 002): data, the four checks, the table."""

from __future__ import annotations

import numpy as np
import pytest

from smartstudy.eval.scenarios import (
    DOMINANT_USER,
    MAX_SATURATED_SHARE,
    MIN_DISTINCT,
    MIN_SPREAD_RATIO,
    DominantUserResult,
    dominant_user_data,
    format_dominant_user_table,
    run_dominant_user,
    split_later_attempts,
)

_RESULTS: dict[str, list[DominantUserResult]] = {}


def _default_result() -> DominantUserResult:
    if "default" not in _RESULTS:
        _RESULTS["default"] = run_dominant_user(["inverse_frequency"], seed=0)
    return _RESULTS["default"][0]


def test_scenario_data_is_the_seed_002_population() -> None:
    df = dominant_user_data(seed=0)
    counts = df.groupby("user_id").size().to_dict()
    assert counts == {"bulk": 846, "you2": 59, "nigag": 9, "asss77": 3}
    assert counts[DOMINANT_USER] / len(df) > 0.92
    assert df["item_id"].str.match(r"^[A-Za-z]+:(easy|medium|hard)$").all()
    assert (df["item_id"].str.split(":").str[0] == df["skill_id"]).all()
    assert (df["rt_seconds"] > 0).all()
    assert set(df["correct"].unique()) == {0, 1}
    # Hard tasks take longer and succeed less often than easy ones.
    diff = df["item_id"].str.split(":").str[1]
    assert (
        df.loc[diff == "hard", "rt_seconds"].median()
        > 3 * df.loc[diff == "easy", "rt_seconds"].median()
    )
    assert df.loc[diff == "hard", "correct"].mean() < df.loc[diff == "easy", "correct"].mean() - 0.2
    # Deterministic given the seed, different across seeds.
    assert df.equals(dominant_user_data(seed=0))
    assert not df.equals(dominant_user_data(seed=1))


def test_split_holds_out_each_users_latest_attempts() -> None:
    df = dominant_user_data()
    train, test = split_later_attempts(df)
    assert len(train) + len(test) == len(df)
    for user, rows in test.groupby("user_id"):
        assert rows["order"].min() > train.loc[train["user_id"] == user, "order"].max()
    assert test.groupby("user_id").size().to_dict() == {
        "asss77": 1,
        "bulk": 169,
        "nigag": 2,
        "you2": 12,
    }


def test_default_strategy_passes_all_four_checks() -> None:
    r = _default_result()
    # (1) no saturation
    assert r.saturated_share < MAX_SATURATED_SHARE, r.details["dominant_p_range"]
    assert r.n_dominant_predictions == 169 + 100
    # (2) continuous next predictions
    assert r.distinct_next >= MIN_DISTINCT
    # (3) monotone over 5 correct / 5 wrong on one topic and difficulty
    assert len(r.correct_run) == len(r.wrong_run) == 6
    assert np.all(np.diff(r.correct_run) >= -1e-12) and r.correct_run[-1] > r.correct_run[0]
    assert np.all(np.diff(r.wrong_run) <= 1e-12) and r.wrong_run[-1] < r.wrong_run[0]
    # (4) the other users are not flattened
    assert r.spread_others >= MIN_SPREAD_RATIO * r.spread_dominant
    assert r.spread_dominant > 0.05
    assert r.check_saturation and r.check_distinct and r.check_monotone and r.check_spread
    assert r.passed
    assert r.auc > 0.65


def test_checks_can_fail() -> None:
    good = _default_result()
    bad = DominantUserResult(
        strategy="broken",
        auc=0.5,
        log_loss=1.0,
        saturated_share=0.3,
        distinct_next=3,
        correct_run=[0.5, 0.6, 0.55, 0.7, 0.7, 0.8],
        wrong_run=[0.5, 0.4, 0.45, 0.3, 0.3, 0.2],
        spread_dominant=0.3,
        spread_others=0.1,
        fit_seconds=0.0,
    )
    assert not (bad.check_saturation or bad.check_distinct or bad.check_monotone)
    assert not bad.check_spread and not bad.passed
    table = format_dominant_user_table([good, bad])
    lines = table.splitlines()
    assert any(line.startswith("inverse_frequency") and line.endswith("PASS") for line in lines)
    assert any(line.startswith("broken") and line.endswith("FAIL") for line in lines)
    assert "30.0%" in table
    assert bad.to_dict()["checks"] == {
        "saturation": False,
        "distinct": False,
        "monotone": False,
        "spread": False,
    }


def test_every_strategy_runs_on_the_scenario() -> None:
    results = run_dominant_user(
        ["l2", "balanced", "progressive", "per_user_heads", "none"],
        model_params={"epochs": 3},
    )
    assert [r.strategy for r in results] == [
        "l2",
        "balanced",
        "progressive",
        "per_user_heads",
        "none",
    ]
    for r in results:
        assert 0.0 <= r.saturated_share <= 1.0 and np.isfinite(r.auc)
        assert r.check_monotone  # monotone by construction, whatever the training
    with pytest.raises(ValueError, match="unknown strategies"):
        run_dominant_user(["magic"])
