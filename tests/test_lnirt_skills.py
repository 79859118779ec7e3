"""LNIRT's skill abilities (``models.lnirt.skills``): persons whose ability differs by skill
get a learned spread of skill abilities, persons with one ability get none; answers on a skill
move that skill more than others; the predictions stay one step ahead and monotone in the
answers, and the part survives save and load."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from smartstudy.data.simulate import simulate_lnirt
from smartstudy.eval.metrics import log_loss
from smartstudy.models.base import ArtifactError
from smartstudy.models.lnirt import LNIRT
from tests.test_lnirt_floor import (
    assert_answers_never_move_their_item_against_them,
    assert_one_step_ahead_and_like_updates,
    fit_with_and_without,
)

SKILL_SD = 0.7


def _by_skill(n_persons: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """LNIRT data on 4 skills whose persons are better or worse on each skill than their
    ability says: answers are drawn from ``Phi(a (theta - b) + delta[p, s])`` with ``delta ~
    N(0, SKILL_SD^2)``. Returns the frame and ``delta`` (persons x skills, by user id)."""
    df, truth = simulate_lnirt(n_persons, 40, rho=-0.4, seed=seed, n_skills=4)
    person = pd.Index(truth["user_ids"]).get_indexer(df["user_id"])
    item = df["item_id"].str[1:].astype(int).to_numpy()
    skill = df["skill_id"].str[1:].astype(int).to_numpy()
    rng = np.random.default_rng(seed + 100)
    delta = rng.normal(0.0, SKILL_SD, (n_persons, 4))
    z = truth["a"][item] * (truth["theta"][person] - truth["b"][item]) + delta[person, skill]
    correct = (rng.random(len(df)) < norm.cdf(z)).astype(float)
    return df.assign(correct=correct), pd.DataFrame(delta, index=truth["user_ids"])


@pytest.fixture(scope="module")
def by_skill() -> tuple[LNIRT, LNIRT, pd.DataFrame]:
    """Models with and without skill abilities fitted on 600 persons; 200 more are new. The
    response factors are off: with four skills, three free factors would take the skills'
    pattern instead (each item loads on them as its skill does)."""
    return fit_with_and_without(
        _by_skill(800, seed=3)[0], {"learn_factors": False}, learn_skill_sd=False
    )


def test_skill_abilities_are_learned_and_predict_new_persons_better(by_skill) -> None:
    skilled, plain, test = by_skill
    assert 0.25 <= skilled.skill_sd_ <= 1.0
    assert plain.skill_sd_ == 0.0
    y = test["correct"]
    assert log_loss(y, skilled.predict(test)["p_correct"]) < log_loss(
        y, plain.predict(test)["p_correct"]
    )


def test_one_ability_for_every_skill_gets_no_skill_spread() -> None:
    df, _ = simulate_lnirt(600, 30, rho=-0.4, seed=2, n_skills=4)
    assert LNIRT(learn_factors=False).fit(df).skill_sd_ == 0.0
    # One skill: a skill ability cannot be told from the ability, and none is searched for.
    single, _ = simulate_lnirt(100, 20, seed=5)
    assert LNIRT(learn_factors=False).fit(single).skill_sd_ == 0.0


def test_answers_on_one_skill_move_that_skill_more_than_others(by_skill) -> None:
    skilled, plain, _ = by_skill
    own = [i for i in skilled.item_ids_ if int(i[1:]) % 4 == 0][:6]
    other = next(i for i in skilled.item_ids_ if int(i[1:]) % 4 == 1)
    probe = own[-1]
    moved = {}
    for name, model in (("skilled", skilled), ("plain", plain)):
        online = LNIRT.from_bytes(model.to_bytes())
        start = {i: online.predict_one("learner", i)["p_correct"] for i in (probe, other)}
        for item in own[:5]:
            online.update({"user_id": "learner", "item_id": item, "correct": 1})
        moved[name] = {
            i: norm.ppf(online.predict_one("learner", i)["p_correct"]) - norm.ppf(start[i])
            for i in (probe, other)
        }
    # With one ability, five solved tasks of skill 0 raise both skills alike (on the
    # probit scale, up to the items' slopes); with skill abilities, skill 0 rises more.
    assert moved["skilled"][probe] > moved["skilled"][other] > 0.0
    ratio = moved["skilled"][probe] / moved["skilled"][other]
    assert ratio > 1.2 * moved["plain"][probe] / moved["plain"][other]
    # An item the fit did not see, of skill 0, uses the learner's ability on skill 0.
    online = LNIRT.from_bytes(skilled.to_bytes())
    for item in own[:5]:
        online.update({"user_id": "learner", "item_id": item, "correct": 1})
    assert (
        online.predict_one("learner", "unseen", "s0")["p_correct"]
        > online.predict_one("learner", "unseen", "s1")["p_correct"]
    )


def test_training_persons_keep_their_skill_abilities() -> None:
    df, delta = _by_skill(400, seed=8)
    model = LNIRT(learn_factors=False).fit(df)
    assert model.skill_sd_ > 0.0
    learned = model.skill_abilities()
    # Every (person, skill) pair with answers is stored, and only those.
    assert len(learned) == df.groupby(["user_id", "skill_id"]).ngroups
    assert (learned["sd"] < model.skill_sd_).all()
    columns = learned["skill_id"].str[1:].astype(int).to_numpy()
    truth = delta.loc[learned["user_id"]].to_numpy()[np.arange(len(learned)), columns]
    assert np.corrcoef(learned["mean"], truth)[0, 1] > 0.4


def test_skill_abilities_keep_predictions_one_step_ahead_and_monotone(by_skill) -> None:
    model, _, test = by_skill
    assert_one_step_ahead_and_like_updates(model, test)
    wide = LNIRT.from_bytes(model.to_bytes())
    wide._use_skill_sd(1.0)
    assert_answers_never_move_their_item_against_them(
        wide, [f"probe-{k}" for k in range(20)], 300, seed=9
    )


def test_skill_abilities_survive_save_and_load_and_old_artifacts_have_none(by_skill) -> None:
    model, _, test = by_skill
    trained = model._user_ids[0]
    loaded = LNIRT.from_bytes(model.to_bytes())
    assert loaded.skill_sd_ == model.skill_sd_
    pd.testing.assert_frame_equal(loaded.predict(test), model.predict(test))
    item = model.item_ids_[0]
    assert loaded.predict_one(trained, item) == model.predict_one(trained, item)
    state = model._get_state()
    for key in ("skill_sd_", "item_skill_", "person_skill_pairs_", "person_skill_values_"):
        state.pop(key)
    old = LNIRT(**model.get_params())
    old._set_state(state)
    assert old.skill_sd_ == 0.0
    # A trained and then updated model keeps its pairs too.
    model = LNIRT.from_bytes(model.to_bytes())
    model.update({"user_id": trained, "item_id": item, "correct": 1})
    again = LNIRT.from_bytes(model.to_bytes())
    pd.testing.assert_frame_equal(again.skill_abilities(), model.skill_abilities())
    pairs, values = (
        model._get_state()["person_skill_pairs_"],
        model._get_state()["person_skill_values_"],
    )
    bad_states = {
        "a negative spread": {"skill_sd_": -0.5},
        "a zero variance": {"person_skill_values_": values * [1.0, 0.0]},
        "a person out of range": {"person_skill_pairs_": np.add(pairs, [10_000, 0])},
        "a skill out of range": {"person_skill_pairs_": np.add(pairs, [0, 4])},
        "a pair twice": {"person_skill_pairs_": np.r_[pairs[:1], pairs[:-1]]},
        "a missing value": {"person_skill_values_": values[:-1]},
    }
    for change in bad_states.values():
        bad = LNIRT(**model.get_params())
        with pytest.raises(ValueError, match="skill abilities"):
            bad._set_state({**model._get_state(), **change})
    broken = LNIRT.from_bytes(model.to_bytes())
    broken._skills._values[0, 1] = -1.0
    with pytest.raises(ArtifactError, match="skill abilities"):
        LNIRT.from_bytes(broken.to_bytes())


def test_a_fixed_skill_spread_is_checked_and_kept() -> None:
    df, _ = _by_skill(60, seed=4)
    model = LNIRT(skill_sd=0.4, learn_skill_sd=False).fit(df)
    assert model.skill_sd_ == 0.4
    with pytest.raises(ValueError, match="skill_sd"):
        LNIRT(skill_sd=1.5).fit(df)
