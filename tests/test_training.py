"""Training in the app: the counter, the job, failures, and LNIRT above Baseline."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select

from smartstudy.jobs import SyncRunner
from smartstudy.models.baseline import Baseline
from smartstudy.models.lnirt import TopicLNIRT
from smartstudy.services import accounts, catalogue, tasks
from smartstudy.services.predictor import PredictionService
from smartstudy.services.training import run_training
from smartstudy.store.db import UnitOfWork, session_scope
from smartstudy.store.orm import Job, ModelVersion, TrainingCounter


@pytest.fixture
def sync_context(context):
    context.runner = SyncRunner()
    with session_scope(context.sessions) as session:
        user = accounts.create_user(session, "ada@example.com", "password 123")
        subject = catalogue.create_subject(session, "Maths")
        topic = catalogue.create_topic(session, subject.id, "Calculus")
    return context, user, topic


def _do(context, user, topic, difficulty="medium", correct=True, seconds=100.0):
    with context.sessions() as session:
        task = tasks.create_task(session, context.predictor, user, topic.id, difficulty)
        tasks.complete_task(context, UnitOfWork(session), user, task.id, correct, seconds)
        return task


def _versions(context, name):
    with context.sessions() as session:
        return session.scalars(
            select(ModelVersion.version)
            .where(ModelVersion.model_name == name)
            .order_by(ModelVersion.version)
        ).all()


def test_every_fifth_completion_trains(sync_context):
    context, user, topic = sync_context
    for _ in range(4):
        _do(context, user, topic)
    assert _versions(context, "baseline") == [1]  # made when the first prediction was asked
    _do(context, user, topic)
    assert _versions(context, "baseline") == [1, 2]
    assert _versions(context, "lnirt") == [1, 2]
    with context.sessions() as session:
        counter = session.get(TrainingCounter, "training")
        jobs = session.scalars(select(Job)).all()
    assert (counter.count, counter.total) == (0, 5)
    assert counter.last_trained_at is not None
    assert [(j.kind, j.status) for j in jobs] == [("training", "succeeded")]
    assert jobs[0].summary["rows"] == 5
    _do(context, user, topic)
    with context.sessions() as session:
        assert session.get(TrainingCounter, "training").count == 1


def test_lnirt_answers_once_a_topic_has_data(sync_context):
    context, user, topic = sync_context
    first = _do(context, user, topic)
    assert first.family_predictions["families"].get("lnirt") is None  # no topic's LNIRT yet
    # Times that vary as real ones do (an LNIRT fit on times all alike is degenerate), and
    # a training (every 5 completions) after the 10 repeated times a topic's LNIRT needs.
    spread = np.exp(0.4 * np.random.default_rng(0).standard_normal(14))
    for i in range(14):
        difficulty = ("easy", "medium", "hard")[i % 3]
        _do(context, user, topic, difficulty, correct=i % 2 == 0, seconds=100.0 * spread[i])
    later = _do(context, user, topic)
    # Every family's answer is stored with the task; with one student nothing is held out,
    # so the chain's last family serves it.
    assert later.family_predictions["families"]["lnirt"] is not None
    assert later.model_name == "baseline"
    assert later.model_version == str(_versions(context, "baseline")[-1])


class FailingFit(Baseline):
    def fit(self, df):
        raise RuntimeError("training exploded")


def test_a_failing_training_keeps_the_active_version(sync_context):
    context, user, topic = sync_context
    context.predictor = PredictionService(
        chain=("flaky", "baseline"),
        factories={"flaky": Baseline, "baseline": Baseline},
        fixed_order=True,  # "flaky" answers first, though nothing is held out
    )
    _do(context, user, topic)  # first versions of both (a task asks every family)
    assert _versions(context, "baseline") == [1]
    context.predictor.factories["flaky"] = FailingFit
    job = run_training(context)
    assert job.status == "failed"
    assert "training exploded" in job.error
    assert job.summary["baseline"]["version"] == 2  # the other family still trained
    assert _versions(context, "flaky") == [1]
    with context.sessions() as session:
        active = session.scalar(
            select(ModelVersion).where(ModelVersion.model_name == "flaky", ModelVersion.is_active)
        )
        assert active.version == 1
        p = context.predictor.predict(session, user.id, topic.id, "easy")
    assert p.model_name == "flaky" and p.model_version == "1"


def test_topic_lnirt_round_trip_and_unknown_topic():
    from smartstudy.data.simulate import simulate_lnirt
    from smartstudy.services.errors import CannotPredictError

    df, _ = simulate_lnirt(60, 6, seed=3)
    df["skill_id"] = "t1"
    df["item_id"] = "t1:" + df["item_id"].astype(str)
    few = df.iloc[:5].assign(skill_id="t2", item_id="t2:x")  # too few rows for an LNIRT
    model = TopicLNIRT().fit(pd.concat([df.iloc[5:], few]))
    assert set(model.models_) == {"t1"}
    assert "fewer than 10" in model.skipped_["t2"]
    clone = TopicLNIRT.from_bytes(model.to_bytes())
    probe = df.iloc[:20]
    assert clone.predict(probe).equals(model.predict(probe))
    with pytest.raises(CannotPredictError, match="t9"):
        model.predict(probe.assign(skill_id="t9"))


def _slow_family(sync_context, monkeypatch):
    """A chain of a "slow" family refitted at 50% growth and Baseline, trainings by hand only,
    and 10 completed tasks."""
    from smartstudy.services import training

    monkeypatch.setattr(training, "REFIT_GROWTH", {"slow": 0.5})
    context, user, topic = sync_context
    context.settings.retrain_every = 1_000_000
    context.predictor = PredictionService(
        chain=("slow", "baseline"), factories={"slow": Baseline, "baseline": Baseline}
    )
    for k in range(10):
        _do(context, user, topic, correct=k % 2 == 0)
    return context, user, topic


def test_a_slow_family_is_refitted_only_once_its_data_have_grown(sync_context, monkeypatch):
    context, user, topic = _slow_family(sync_context, monkeypatch)
    first = run_training(context)
    assert first.status == "succeeded", first.error
    slow_v, base_v = _versions(context, "slow")[-1], _versions(context, "baseline")[-1]
    for k in range(4):  # 14 tasks: less than half as many again
        _do(context, user, topic, correct=k % 2 == 0)
    second = run_training(context)
    assert second.summary["slow"]["skipped"].endswith("refitted from 15 on (14 now)")
    assert _versions(context, "slow")[-1] == slow_v  # kept, still learning online
    assert _versions(context, "baseline")[-1] == base_v + 1  # the cheap family refits
    _do(context, user, topic)
    third = run_training(context)
    assert "skipped" not in third.summary["slow"]
    assert _versions(context, "slow")[-1] == slow_v + 1


def test_a_rejected_refit_waits_for_the_data_to_grow_again(sync_context, monkeypatch):
    """The growth counts from the last fit, activated or not: a family whose refits are
    rejected is not refitted again at every training."""
    from smartstudy.services import registry

    context, user, topic = _slow_family(sync_context, monkeypatch)
    assert run_training(context).status == "succeeded"
    real_validate = registry.validate
    rejecting = {"on": False}

    def validate(candidate, active, *args, **kwargs):  # every family's refit is rejected
        decision = real_validate(candidate, active, *args, **kwargs)
        if rejecting["on"] and active is not None:
            decision.activate, decision.reason = False, "worse on held-out students (test)"
        return decision

    monkeypatch.setattr(registry, "validate", validate)
    for k in range(5):  # 15 tasks: half as many again, so "slow" is due
        _do(context, user, topic, correct=k % 2 == 0)
    rejecting["on"] = True
    second = run_training(context)
    assert second.summary["slow"]["status"] == "rejected"
    slow_v = _versions(context, "slow")[-1]
    _do(context, user, topic)  # 16 tasks: a little more than the rejected fit saw
    third = run_training(context)
    assert third.summary["slow"]["skipped"].endswith("refitted from 23 on (16 now)")
    assert _versions(context, "slow")[-1] == slow_v
