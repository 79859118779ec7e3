"""Baseline's levels (``item_level_sep``): a difficulty means the same in every topic, so an
item with little data is predicted from its topic *at its difficulty*."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from smartstudy.models.baseline import (
    _NO_EFFECT,
    Baseline,
    _level_strengths,
    _level_strengths_one,
    level_label,
)
from smartstudy.services.app_models import ITEM_LEVEL_SEP, app_baseline
from smartstudy.services.predictor import item_key

RATE = {"easy": 0.85, "medium": 0.6, "hard": 0.3}
SECONDS = {"easy": 60.0, "medium": 150.0, "hard": 400.0}
LEVELS = tuple(RATE)


def _cohort(seed: int = 0, users: int = 60, tasks: int = 30, topics: int = 5) -> pd.DataFrame:
    """Students doing random topics at random difficulties; only the difficulty matters."""
    rng = np.random.default_rng(seed)
    rows: list[dict] = []
    for u in range(users):
        for _ in range(tasks):
            topic = f"T{rng.integers(topics)}"
            rows.append(_attempt(rng, f"u{u}", topic, LEVELS[rng.integers(3)], 0.5, len(rows)))
    return pd.DataFrame(rows)


def _attempt(
    rng: np.random.Generator, user: str, topic: str, level: str, sd: float, order: int
) -> dict:
    """One attempt at the level's rate, at its time with a log-normal scatter of ``sd``."""
    return {
        "user_id": user,
        "item_id": f"{topic}:{level}",
        "skill_id": topic,
        "correct": float(rng.random() < RATE[level]),
        "rt_seconds": SECONDS[level] * float(np.exp(rng.normal(0.0, sd))),
        "order": order,
    }


def _one(model: Baseline, user: str, topic: str, level: str) -> dict[str, float]:
    return model.predict_one(user, f"{topic}:{level}", topic)


def test_the_level_is_what_the_item_id_names_after_its_last_separator() -> None:
    assert level_label("0b6e-topic:hard", ":") == "hard"
    assert level_label("a:b:easy", ":") == "easy"
    assert level_label("no-separator", ":") is None
    assert level_label(":hard", ":") is None
    assert level_label("topic:", ":") is None
    assert level_label("topic:hard", None) is None
    assert level_label(item_key("topic", "medium"), ITEM_LEVEL_SEP) == "medium"
    with pytest.raises(ValueError, match="item_level_sep"):
        Baseline(item_level_sep="").fit(_cohort(users=2, tasks=2))


def test_a_topic_nobody_practised_is_predicted_at_each_difficultys_rate_and_time() -> None:
    data = _cohort()
    plain = Baseline().fit(data)
    leveled = Baseline(item_level_sep=":").fit(data)
    flat = [_one(plain, "new", "NEW", level) for level in LEVELS]
    # Without levels a new topic is one number, whatever the difficulty.
    assert len({round(p["p_correct"], 9) for p in flat}) == 1
    got = {level: _one(leveled, "new", "NEW", level) for level in LEVELS}
    for level in LEVELS:
        assert got[level]["p_correct"] == pytest.approx(RATE[level], abs=0.05)
        assert got[level]["time_median_s"] == pytest.approx(SECONDS[level], rel=0.15)
    assert got["easy"]["p_correct"] > got["medium"]["p_correct"] > got["hard"]["p_correct"]
    assert got["easy"]["time_median_s"] < got["medium"]["time_median_s"]
    assert got["medium"]["time_median_s"] < got["hard"]["time_median_s"]


def test_a_topic_practised_only_at_easy_does_not_make_its_hard_tasks_look_easy() -> None:
    data = _cohort()
    plain = Baseline().fit(data)
    model = Baseline(item_level_sep=":").fit(data)
    # Twenty easy tasks of a new topic, solved as often as easy tasks are, at their time.
    for k in range(20):
        row = {"user_id": f"s{k}", "item_id": "E:easy", "skill_id": "E"}
        update = {**row, "correct": float(k % 20 < 17), "rt_seconds": SECONDS["easy"]}
        model.update(update)
        plain.update(update)
    hard = _one(model, "new", "E", "hard")
    # The topic's high rate is that of its easy tasks, not of an easy topic.
    assert hard["p_correct"] == pytest.approx(RATE["hard"], abs=0.05)
    assert hard["time_median_s"] == pytest.approx(SECONDS["hard"], rel=0.2)
    # Without levels the hard tasks of that topic look like its easy ones.
    assert _one(plain, "new", "E", "hard")["p_correct"] > 0.75


def test_levels_change_nothing_where_item_ids_name_none() -> None:
    data = _cohort(seed=1)
    data["item_id"] = data["item_id"].str.replace(":", "-")
    data["item_id"] = data["item_id"] + "-" + data.index.map(lambda i: str(i % 7))
    test = _cohort(seed=2, users=5)
    test["item_id"] = test["item_id"].str.replace(":", "-")
    a = Baseline().fit(data).predict(test)
    b = Baseline(item_level_sep=":").fit(data).predict(test)
    pd.testing.assert_frame_equal(a, b)


def test_fit_then_update_is_a_refit_and_predict_one_equals_predict() -> None:
    data = _cohort(seed=3)
    # Hyperparameters fixed: a refit on more data would otherwise choose others.
    fixed = {"learn_user_prior": False, "learn_guess_floor": False, "learn_interval_scale": False}
    online = Baseline(item_level_sep=":", **fixed).fit(data.iloc[:900])
    online.learn_many(data.iloc[900:])
    refit = Baseline(item_level_sep=":", **fixed).fit(data)
    np.testing.assert_allclose(online.level_stats_, refit.level_stats_)
    n = len(refit.skill_index_)
    np.testing.assert_allclose(online.skill_mix_[:n], refit.skill_mix_[:n])
    for user, topic, level in (("u3", "T1", "hard"), ("u7", "T2", "easy"), ("x", "NEW", "medium")):
        one = _one(online, user, topic, level)
        again = _one(refit, user, topic, level)
        assert one["p_correct"] == pytest.approx(again["p_correct"], rel=1e-9)
        assert one["time_median_s"] == pytest.approx(again["time_median_s"], rel=1e-9)
        frame = pd.DataFrame(
            [
                {
                    "user_id": user,
                    "item_id": f"{topic}:{level}",
                    "skill_id": topic,
                    "correct": 1.0,
                    "rt_seconds": np.nan,
                    "order": 0,
                }
            ]
        )
        batch = refit.predict(frame).iloc[0]
        assert batch["p_correct"] == pytest.approx(again["p_correct"], rel=1e-9)
        assert batch["time_p90_s"] == pytest.approx(again["time_p90_s"], rel=1e-9)


def test_a_new_level_learnt_online_and_the_levels_survive_save_and_load() -> None:
    model = Baseline(item_level_sep=":").fit(_cohort(seed=4))
    before = _one(model, "new", "T0", "expert")["p_correct"]
    for k in range(30):
        row = {"user_id": f"e{k}", "item_id": f"T{k % 5}:expert", "skill_id": f"T{k % 5}"}
        model.update({**row, "correct": float(k % 10 == 0), "rt_seconds": 900.0})
    assert "expert" in model.level_index_
    after = _one(model, "new", "NEW", "expert")
    assert after["p_correct"] < before
    assert after["p_correct"] < _one(model, "new", "NEW", "hard")["p_correct"]
    copy = Baseline.from_bytes(model.to_bytes())
    assert copy.item_level_sep == ":"
    assert _one(copy, "new", "NEW", "expert") == pytest.approx(after)


def test_a_version_stored_before_levels_still_loads_and_serves_without_them() -> None:
    model = Baseline(item_level_sep=":").fit(_cohort(seed=5))
    state = model._get_state()
    # Such a version had none of the levels' statistics, nor what is learned with them.
    old_keys = (
        "level_ids",
        "level_stats",
        "item_level",
        "skill_mix",
        "level_transfer",
        "item_rate_k",
    )
    for key in old_keys:
        del state[key]
    old = Baseline(item_level_sep=":")
    old._set_state(state)
    old.fitted_ = True
    assert old.level_index_ == {}
    assert _one(old, "new", "NEW", "hard") == _one(old, "new", "NEW", "easy")
    # Close to the version with levels where the item has data: only its shrinkage target
    # differs (the topic, not the topic at "hard": about 12% of the log time here).
    assert _one(old, "u1", "T1", "hard") == pytest.approx(_one(model, "u1", "T1", "hard"), rel=0.15)
    old.update({"user_id": "n", "item_id": "T9:hard", "skill_id": "T9", "correct": 0.0})
    assert old.level_index_ == {"hard": 0}
    bad = model._get_state()
    bad["item_level"] = bad["item_level"][:-1]
    with pytest.raises(ValueError, match="item_level"):
        Baseline(item_level_sep=":")._set_state(bad)


def test_the_app_trains_its_baseline_with_the_difficulty_as_level() -> None:
    model = app_baseline()
    assert isinstance(model, Baseline)
    assert model.item_level_sep == ITEM_LEVEL_SEP
    topic = "3f1c2a55-0000-4000-8000-000000000000"
    assert level_label(item_key(topic, "hard"), model.item_level_sep) == "hard"


def test_a_small_class_times_a_new_topic_at_its_difficultys_time() -> None:
    """Four students, each timing every (topic, difficulty) many times: only a student's
    first time at an item is shared, so each level has a dozen shared times. Levels that lie
    this far apart must count nearly in full (the demo's case: with a fixed prior of ten
    attempts a new topic's hard tasks were predicted at 6 min where the class took 10)."""
    rng = np.random.default_rng(7)
    rows: list[dict] = []
    for u in range(4):
        for topic in ("A", "B", "C"):
            for level in LEVELS:
                for _ in range(4):
                    rows.append(_attempt(rng, f"s{u}", topic, level, 0.3, len(rows)))
    model = Baseline(item_level_sep=":").fit(pd.DataFrame(rows))
    for level in LEVELS:
        got = _one(model, "new", "NEW", level)["time_median_s"]
        assert got == pytest.approx(SECONDS[level], rel=0.2), level


def test_levels_that_do_not_differ_have_no_effect() -> None:
    same = np.array([[50.0, 30.0, 40.0, 40 * 5.0, 40 * 25.0 + 10.0]] * 3)
    k_p, k_t = _level_strengths(same[None], np.array([0.6]), np.array([5.0]))
    assert k_p[0] == _NO_EFFECT and k_t[0] == _NO_EFFECT
    assert _level_strengths_one(same.tolist(), 0.6, 5.0) == (_NO_EFFECT, _NO_EFFECT)
    # One level with data says nothing about how levels differ.
    alone = np.zeros((3, 5))
    alone[1] = [50.0, 10.0, 40.0, 40 * 6.0, 40 * 36.0 + 10.0]
    assert _level_strengths_one(alone.tolist(), 0.6, 5.0) == (_NO_EFFECT, _NO_EFFECT)
    # Levels far apart: a few pseudo-attempts, the same in floats as in arrays.
    apart = np.array(
        [
            [60.0, 51.0, 12.0, 12 * 4.1, 12 * 4.1**2 + 1.0],
            [60.0, 36.0, 12.0, 12 * 5.0, 12 * 25.0 + 1.0],
            [60.0, 18.0, 12.0, 12 * 6.0, 12 * 36.0 + 1.0],
        ]
    )
    k_p, k_t = _level_strengths(apart[None], np.array([0.58]), np.array([5.03]))
    assert 0 < k_p[0] < 10 and 0 < k_t[0] < 2
    assert _level_strengths_one(apart.tolist(), 0.58, 5.03) == pytest.approx((k_p[0], k_t[0]))


def _uneven_cohort(seed: int, users: int = 60, tasks: int = 30) -> pd.DataFrame:
    """Difficulty labels that do not carry over: most attempts are in topic T0, where the
    levels differ as in ``RATE``; in the twenty other topics every level is solved at 0.6."""
    rng = np.random.default_rng(seed)
    rows: list[dict] = []
    for u in range(users):
        for _ in range(tasks):
            topic = "T0" if rng.random() < 0.6 else f"T{rng.integers(1, 21)}"
            level = LEVELS[rng.integers(3)]
            row = _attempt(rng, f"u{u}", topic, level, 0.5, len(rows))
            if topic != "T0":
                row["correct"] = float(rng.random() < 0.6)
            rows.append(row)
    return pd.DataFrame(rows)


def test_how_much_of_a_level_holds_within_a_topic_is_learned() -> None:
    """Where a difficulty means the same in every topic the whole level effect is kept; where
    it holds in one topic only, less of it is applied elsewhere, so a cell with little data
    in another topic is predicted nearer what such cells turn out to be."""
    same = Baseline(item_level_sep=":").fit(_cohort(seed=7))
    assert same.level_transfer_ >= 0.8
    data = _uneven_cohort(seed=7)
    uneven = Baseline(item_level_sep=":").fit(data)
    assert uneven.level_transfer_ <= 0.5
    whole = Baseline(item_level_sep=":", learn_user_prior=False).fit(data)
    assert whole.level_transfer_ == 1.0
    # A new student, a topic's hard cell with no data: the topic is solved at 0.6 whatever
    # the level, and the learned transfer predicts it nearer 0.6 than the whole effect does.
    learned = uneven.predict_one("new", "T9:hard", "T1")["p_correct"]
    full = whole.predict_one("new", "T9:hard", "T1")["p_correct"]
    assert abs(learned - 0.6) < abs(full - 0.6)
    # The same numbers from the DataFrame path, and after a save and load.
    row = {"user_id": "new", "item_id": "T9:hard", "skill_id": "T1", "correct": 1.0}
    frame = pd.DataFrame([{**row, "rt_seconds": np.nan, "order": 0}])
    assert uneven.predict(frame).iloc[0]["p_correct"] == pytest.approx(learned, rel=1e-9)
    copy = Baseline.from_bytes(uneven.to_bytes())
    assert copy.level_transfer_ == uneven.level_transfer_
    assert copy.predict_one("new", "T9:hard", "T1")["p_correct"] == pytest.approx(learned)


def test_a_stored_transfer_out_of_range_is_refused() -> None:
    state = Baseline(item_level_sep=":").fit(_cohort(seed=8))._get_state()
    for bad in (-0.1, 1.5, float("nan"), True, "1"):
        broken = {**state, "level_transfer": bad}
        with pytest.raises(ValueError, match="level_transfer"):
            Baseline(item_level_sep=":")._set_state(broken)
