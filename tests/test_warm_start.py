"""Warm-started refits (``LearnerModel.warm_start``, ``training.SEARCH_AGAIN_GROWTH``): a
refit on a little more data reuses what the active version chose by search (LNIRT's drift,
guessing floor and time weight, chosen by replaying training persons) and fits everything
else anew; after enough growth, or on ``smartstudy train``, it searches again."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select

from smartstudy.data.simulate import simulate_lnirt
from smartstudy.jobs import SyncRunner
from smartstudy.models.base import ArtifactError
from smartstudy.models.baseline import Baseline
from smartstudy.models.lnirt import LNIRT, TopicLNIRT
from smartstudy.services import accounts, catalogue, training
from smartstudy.services.predictor import PredictionService
from smartstudy.services.training import run_training
from smartstudy.store.db import session_scope
from smartstudy.store.orm import ModelVersion
from tests.test_training import _do

SEARCHES = ("_fit_drift", "_fit_floor", "_fit_time_weight")


def _topic(name: str, persons: int, seed: int) -> pd.DataFrame:
    df, _ = simulate_lnirt(persons, 10, rho=0.6, seed=seed)
    return df.assign(skill_id=name, item_id=name + ":" + df["item_id"].astype(str))


@pytest.fixture(scope="module")
def first() -> tuple[TopicLNIRT, pd.DataFrame]:
    """A TopicLNIRT fitted (and so searched) on two topics of 120 persons each."""
    data = pd.concat([_topic("t1", 120, 1), _topic("t2", 120, 2)], ignore_index=True)
    return TopicLNIRT().fit(data), data


@pytest.fixture
def searches(monkeypatch) -> list[str]:
    """The searches LNIRT runs from now on, by name (each still runs)."""
    calls: list[str] = []
    for name in SEARCHES:
        original = getattr(LNIRT, name)

        def recorded(self, *args, _original=original, _name=name, **kwargs):
            calls.append(_name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(LNIRT, name, recorded)
    return calls


def test_a_warm_refit_reuses_the_searched_values_and_fits_the_rest(first, searches) -> None:
    model, data = first
    assert model.searched_rows() == len(data)
    # A tenth more persons in both topics, and a new topic.
    more = pd.concat(
        [data, _topic("t1", 12, 11).assign(user_id=lambda d: "more-" + d["user_id"])],
        ignore_index=True,
    )
    grown = pd.concat([more, _topic("t3", 120, 3)], ignore_index=True)
    warm = TopicLNIRT()
    assert warm.warm_start(model)
    warm.fit(grown)
    # The new topic searched (drift, floor and weight), the two known ones did not.
    assert sorted(searches) == sorted(SEARCHES)
    for topic in ("t1", "t2"):
        before, after = model.models_[topic], warm.models_[topic]
        assert after.guess_floor_ == before.guess_floor_
        assert after.time_weight_ == before.time_weight_
        np.testing.assert_array_equal(after.drift_, before.drift_)
    assert warm.searched_rows() == len(data)  # the data the reused search saw
    # Everything else is fitted anew: the items are those of a fit that searches.
    searches.clear()
    cold = TopicLNIRT().fit(grown)
    assert len(searches) == 3 * len(SEARCHES)
    assert cold.searched_rows() == len(grown)
    for name in ("a_", "b_", "alpha_", "beta_"):
        np.testing.assert_array_equal(
            getattr(warm.models_["t1"], name), getattr(cold.models_["t1"], name)
        )
    assert not np.array_equal(warm.models_["t1"].a_, model.models_["t1"].a_)


def test_a_warm_start_needs_a_fitted_model_of_the_family_with_the_same_settings(first) -> None:
    model, data = first
    assert not TopicLNIRT(min_rows=20).warm_start(model)
    assert not TopicLNIRT().warm_start(TopicLNIRT())  # not fitted
    assert not TopicLNIRT().warm_start(Baseline().fit(data))
    # A topic's LNIRT leaves calibration to the service (``TopicLNIRT``).
    assert not LNIRT(learn_factors=False, learn_calibration=False).warm_start(model.models_["t1"])
    assert not LNIRT().warm_start(model.models_["t1"])
    assert LNIRT(learn_calibration=False).warm_start(model.models_["t1"])
    assert not Baseline().warm_start(Baseline().fit(data))  # nothing searched to reuse
    assert Baseline().fit(data).searched_rows() is None


def test_a_warm_start_searches_again_where_the_times_changed(first, searches) -> None:
    model, data = first
    untimed = LNIRT(learn_calibration=False)
    assert untimed.warm_start(model.models_["t1"])
    untimed.fit(data[data["skill_id"] == "t1"].assign(rt_seconds=np.nan))
    # Searched again, except the time weight, which nothing without times learns.
    assert searches == ["_fit_drift", "_fit_floor"]
    assert untimed.time_weight_ == 0.0


def test_the_searched_rows_survive_save_and_load(first) -> None:
    model, _ = first
    loaded = TopicLNIRT.from_bytes(model.to_bytes())
    assert loaded.searched_rows() == model.searched_rows()
    # A stored version hands its searched values over as the fitted one does.
    assert TopicLNIRT().warm_start(loaded)
    assert all(
        LNIRT(learn_calibration=False).warm_start(topic) for topic in loaded.models_.values()
    )
    state = model._get_state()
    state.pop("searched_rows")
    old = TopicLNIRT(**model.get_params())
    old._set_state(state)
    assert old.searched_rows() is None  # an artifact from before: the next refit searches
    assert not TopicLNIRT().warm_start(old)
    for invalid in (-1, 2.5, True, "12"):
        bad = TopicLNIRT.from_bytes(model.to_bytes())
        bad.searched_rows_ = invalid
        with pytest.raises(ArtifactError, match="searched_rows"):
            TopicLNIRT.from_bytes(bad.to_bytes())


def _searched(context, name: str = "lnirt") -> tuple[int, int | None]:
    """(version, searched rows) of the active version of ``name``."""
    with context.sessions() as session:
        row = session.scalar(
            select(ModelVersion).where(
                ModelVersion.model_name == name, ModelVersion.is_active.is_(True)
            )
        )
        return row.version, TopicLNIRT.from_bytes(row.artifact).searched_rows()


def test_training_reuses_a_search_until_the_data_have_grown(context, monkeypatch) -> None:
    monkeypatch.setattr(training, "SEARCH_AGAIN_GROWTH", 0.2)
    monkeypatch.setattr(training, "REFIT_ALWAYS_BELOW", {"lnirt": 20})
    # Every training below refits (the data grow by at least 2% each time); what is tested
    # is whether the refit searches again.
    monkeypatch.setattr(training, "REFIT_GROWTH", {"lnirt": 0.02})
    context.runner = SyncRunner()
    with session_scope(context.sessions) as session:
        user = accounts.create_user(session, "ada@example.com", "password 123")
        topic = catalogue.create_topic(
            session, catalogue.create_subject(session, "Maths").id, "Calculus"
        )
    context.settings.retrain_every = 1_000_000
    context.predictor = PredictionService(
        chain=("lnirt", "baseline"), factories={"lnirt": TopicLNIRT, "baseline": Baseline}
    )
    for k in range(19):
        _do(context, user, topic, correct=k % 3 > 0, seconds=60.0 + 7 * k)
    job = run_training(context)  # below 20 training tasks every refit searches
    assert "searched" not in job.summary["lnirt"]
    assert _searched(context)[1] == 19
    for added in (1, 2):  # 20, then 22 tasks: less than a fifth more than 19
        for k in range(added):
            _do(context, user, topic, correct=k % 2 == 0, seconds=80.0)
        job = run_training(context)
        version, searched = _searched(context)
        reused = f"hyperparameters of version {version - 1} reused"
        assert job.summary["lnirt"]["searched"] == reused
        assert searched == 19
    _do(context, user, topic)  # 23 tasks: a fifth more than the search saw
    job = run_training(context)
    assert "searched" not in job.summary["lnirt"]
    assert _searched(context)[1] == 23
    _do(context, user, topic)
    job = run_training(context, refit_all=True)  # `smartstudy train` always searches
    assert "searched" not in job.summary["lnirt"]
    assert _searched(context)[1] == 24
