"""The replay evaluation: predictions stored before outcomes, the counter's trainings,
hand-checked metrics, the per-cell swing and the prequential reference (SQLite only)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from smartstudy.cli import app
from smartstudy.data.simulate import simulate_app_learners
from smartstudy.eval.metrics import prediction_swings
from smartstudy.services import replay


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    """Four learners, 25 practice tasks each, with times."""
    frame, _ = simulate_app_learners([25, 25, 25, 25], seed=3)
    return frame


def _rows(cells: list[tuple[str, str]], correct: list[int], rt: list[float]) -> pd.DataFrame:
    """A stream by hand: (learner, cell) per row, in replay order."""
    frame = pd.DataFrame(
        {
            "position": range(len(cells)),
            "user_id": [u for u, _ in cells],
            "topic": "T",
            "difficulty": [c for _, c in cells],
            "correct": correct,
            "rt_seconds": rt,
        }
    )
    frame["cell_index"] = frame.groupby(["user_id", "topic", "difficulty"]).cumcount()
    return frame


def test_difficulty_is_the_tertile_of_success_within_the_topic() -> None:
    frame = pd.DataFrame(
        {
            "skill_id": ["A"] * 6 + ["B"],
            "item_id": ["a1", "a1", "a2", "a3", "a3", "a4", "b1"],
            "correct": [1, 1, 0, 1, 0, 0, 1],
        }
    )
    # A: a1 1.0, a3 0.5, a2 0.0, a4 0.0 -> ranks a2 0, a4 1, a3 2, a1 3 of 4; B: one item.
    got = dict(zip(frame["item_id"], replay.map_difficulty(frame), strict=True))
    assert got == {"a2": "hard", "a4": "medium", "a3": "medium", "a1": "easy", "b1": "medium"}


def test_stream_keeps_each_learners_order_and_is_seeded(data: pd.DataFrame) -> None:
    stream = replay.build_stream(data, learners=3, seed=1, max_attempts=10)
    again = replay.build_stream(data, learners=3, seed=1, max_attempts=10)
    pd.testing.assert_frame_equal(stream.rows, again.rows)
    rows = stream.rows
    assert rows["user_id"].nunique() == 3 and len(rows) == 30
    assert stream.notes["attempts_over_cap_left_out"] == 3 * 15
    for user, mine in rows.groupby("user_id"):
        original = data[data["user_id"] == user].sort_values("order").head(10)
        assert mine["rt_seconds"].tolist() == original["rt_seconds"].tolist()
    # Interleaved, not one learner after another.
    assert (rows["user_id"] != rows["user_id"].shift()).sum() > 6


def test_swings_are_per_group_between_consecutive_predictions() -> None:
    swings = prediction_swings(["a", "b", "a", "a", "b"], [0.1, 0.5, 0.3, 0.2, 0.9])
    np.testing.assert_allclose(swings, [0.2, 0.1, 0.4])
    assert len(prediction_swings(["a", "b"], [0.1, 0.9])) == 0


def test_score_by_hand() -> None:
    cells = [("u", "easy"), ("v", "easy"), ("u", "easy"), ("u", "hard")]
    rows = _rows(cells, correct=[1, 0, 1, 0], rt=[10.0, 20.0, 40.0, 5.0])
    pred = pd.DataFrame(
        {
            "p_correct": [0.8, 0.4, 0.6, 0.5],
            "time_median_s": [10.0, 10.0, 20.0, 5.0],
            "time_p10_s": [5.0, 5.0, 10.0, 1.0],
            "time_p90_s": [20.0, 15.0, 30.0, 9.0],
        }
    )
    got = replay.score(rows, pred)
    ll = -(np.log(0.8) + np.log(0.6) + np.log(0.6) + np.log(0.5)) / 4
    assert got["all"]["log_loss"] == pytest.approx(ll)
    # Bins: 0.4 -> |0 - 0.4|, 0.5 -> |0 - 0.5|, 0.6 -> |1 - 0.6|, 0.8 -> |1 - 0.8|.
    assert got["all"]["ece"] == pytest.approx((0.4 + 0.5 + 0.4 + 0.2) / 4)
    assert got["all"]["auc"] == pytest.approx(1.0)
    rmse = np.sqrt((0 + np.log(2) ** 2 + np.log(2) ** 2 + 0) / 4)
    assert got["all"]["rmse_log_time"] == pytest.approx(rmse)
    assert got["all"]["coverage80"] == pytest.approx(0.5)  # 20 > 15 and 40 > 30 miss
    # Only u's easy cell has two predictions: 0.8 then 0.6 (v's 0.4 in between is not u's).
    assert got["swing_n"] == 1 and got["swing_max"] == pytest.approx(0.2)
    assert got["cold"]["n"] == 4 and got["warm"]["n"] == 0


def test_reference_is_the_running_mean_of_the_cell() -> None:
    cells = [("u", "easy"), ("v", "easy"), ("u", "hard"), ("v", "easy"), ("u", "easy")]
    rows = _rows(cells, correct=[1, 0, 1, 1, 0], rt=[10.0, 40.0, 7.0, 20.0, 30.0])
    ref = replay.reference_predictions(rows)
    np.testing.assert_allclose(ref["p_correct"], [1 / 2, 2 / 3, 1 / 2, 2 / 4, 3 / 5])
    assert np.isnan(ref.loc[0, "time_median_s"]) and np.isnan(ref.loc[2, "time_median_s"])
    assert ref.loc[1, "time_median_s"] == pytest.approx(10.0)
    assert ref.loc[4, "time_median_s"] == pytest.approx(20.0)  # median of 10, 40, 20
    # Prequential: a later outcome never changes an earlier prediction.
    flipped = rows.assign(correct=[1, 0, 1, 1, 1], rt_seconds=[10.0, 40.0, 7.0, 20.0, 99.0])
    pd.testing.assert_frame_equal(replay.reference_predictions(flipped), ref)
    # Time is scored only where the reference had a time to offer.
    assert replay.score(rows, ref)["all"]["time_n"] == 3


def _replay(stream: replay.Stream, chain: tuple[str, ...], every: int) -> replay.ServedRun:
    with replay.scratch_database() as url:
        return replay.replay_chain(stream, chain, url, every)


def test_a_prediction_never_depends_on_its_own_outcome(data: pd.DataFrame) -> None:
    stream = replay.build_stream(data, learners=4, seed=0, max_attempts=15)
    first = _replay(stream, ("baseline",), every=10)
    # The counter (every 10 completions) triggered the trainings, through the job runner.
    assert first.trainings == len(stream.rows) // 10
    k = 35  # after three trainings
    flipped_rows = stream.rows.copy()
    flipped_rows.loc[k, "correct"] = 1 - flipped_rows.loc[k, "correct"]
    flipped_rows.loc[k, "rt_seconds"] *= 4
    second = _replay(replay.Stream(flipped_rows, stream.notes), ("baseline",), every=10)
    columns = ["p_correct", "time_median_s", "time_p10_s", "time_p90_s"]
    before, after = first.predictions[columns], second.predictions[columns]
    pd.testing.assert_frame_equal(before.iloc[: k + 1], after.iloc[: k + 1])
    # The flipped outcome was learnt from: the same learner's next prediction moved.
    later = stream.rows.index[(stream.rows["user_id"] == stream.rows.loc[k, "user_id"])]
    nxt = later[later > k][0]
    assert not np.allclose(before.loc[nxt].to_numpy(), after.loc[nxt].to_numpy())


def test_run_replay_reports_every_configuration(data: pd.DataFrame) -> None:
    report = replay.run_replay(
        data, "synthetic", learners=4, max_attempts=15, retrain_every=20, families=("lnirt",)
    )
    configs = report.configurations
    assert list(configs) == ["served", "lnirt alone", "reference"]
    assert configs["served"]["all"]["n"] == 60 and configs["served"]["trainings"] == 3
    lnirt = configs["lnirt alone"]
    assert lnirt["answered"] == lnirt["served_by"].get("lnirt", 0)
    assert lnirt["all"]["n"] == lnirt["answered"]
    assert configs["reference"]["all"]["n"] == 60
    assert 0 < configs["served"]["all"]["log_loss"] < 2
    json.dumps(report.to_dict(), allow_nan=False)
    assert report.to_table().row_count == 3 * len(configs)


def test_cli_refuses_a_data_set_without_times() -> None:
    result = CliRunner().invoke(app, ["evaluate", "--replay", "assistments09"])
    assert result.exit_code == 1
    assert "data set with times" in result.output


def test_mars_ib_topics_are_its_dimensions() -> None:
    data = replay.replay_data("mars_ib")
    assert sorted(data["skill_id"].unique()) == [f"dimension {d}" for d in range(2, 9)]
    stream = replay.build_stream(data, learners=30, seed=0)
    # Learners meet a (topic, difficulty) cell more than once, so swings are defined.
    assert (stream.rows["cell_index"] > 0).sum() > 30


def test_history_is_other_learners_and_leaves_the_stream_as_it_was() -> None:
    frame, _ = simulate_app_learners([12] * 7, seed=5)
    plain = replay.build_stream(frame, learners=3, seed=2, max_attempts=10)
    stream = replay.build_stream(frame, learners=3, seed=2, max_attempts=10, history=2)
    pd.testing.assert_frame_equal(stream.rows, plain.rows)
    assert len(plain.history) == 0 and plain.notes["history_learners"] == 0
    past = stream.history
    assert past["user_id"].nunique() == 2 == stream.notes["history_learners"]
    assert not set(past["user_id"]) & set(stream.rows["user_id"])
    assert len(past) == 2 * 10 == stream.notes["history_attempts"]  # capped like the stream
    for user, mine in past.groupby("user_id", sort=False):
        original = frame[frame["user_id"] == user].sort_values("order").head(10)
        assert mine["correct"].tolist() == original["correct"].tolist()
    again = replay.build_stream(frame, learners=3, seed=2, max_attempts=10, history=2)
    pd.testing.assert_frame_equal(again.history, past)
    # More history than there are other learners: all of them.
    assert replay.build_stream(frame, learners=3, seed=2, history=50).notes["history_learners"] == 4
    with pytest.raises(ValueError, match="history"):
        replay.build_stream(frame, learners=3, history=-1)


def test_reference_starts_from_the_history() -> None:
    rows = _rows([("u", "easy"), ("u", "hard")], correct=[1, 0], rt=[10.0, 7.0])
    history = pd.DataFrame(
        {
            "user_id": ["h", "h", "h"],
            "topic": "T",
            "difficulty": ["easy", "easy", "medium"],
            "correct": [0, 0, 1],
            "rt_seconds": [20.0, 40.0, 5.0],
        }
    )
    ref = replay.reference_predictions(rows, history)
    assert list(ref.index) == list(rows.index)
    # easy: two wrong before it -> (0 + 1) / (2 + 2); hard: nothing before it.
    np.testing.assert_allclose(ref["p_correct"], [1 / 4, 1 / 2])
    assert ref.loc[0, "time_median_s"] == pytest.approx(np.exp((np.log(20) + np.log(40)) / 2))
    assert np.isnan(ref.loc[1, "time_median_s"])


def test_a_replay_with_history_starts_trained(data: pd.DataFrame) -> None:
    stream = replay.build_stream(data, learners=2, seed=0, max_attempts=15, history=2)
    assert len(stream.history) == 30
    run = _replay(stream, ("baseline",), every=10)
    # One training on the history before the first task, then the counter's.
    assert run.trainings == 1 + len(stream.rows) // 10
    assert len(run.predictions) == len(stream.rows)
    cold = _replay(replay.Stream(stream.rows, stream.notes), ("baseline",), every=10)
    # The first task is predicted from the history: the population's rate, not the prior.
    first = run.predictions.loc[0, "p_correct"]
    assert first != pytest.approx(cold.predictions.loc[0, "p_correct"])
    rates = stream.history.groupby(["topic", "difficulty"])["correct"].mean()
    cell = tuple(stream.rows.loc[0, ["topic", "difficulty"]])
    assert abs(first - rates[cell]) < abs(cold.predictions.loc[0, "p_correct"] - rates[cell])


def test_cli_refuses_a_negative_history() -> None:
    result = CliRunner().invoke(app, ["evaluate", "--replay", "mars_ib", "--history", "-1"])
    assert result.exit_code == 1
    assert "--history must be at least 0" in result.output
