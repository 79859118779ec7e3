"""Loading a version costs no replay, and a new version is swapped in without a request
waiting for it (issue 11: no request waits for a model)."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from smartstudy.models.baseline import Baseline
from smartstudy.services import catalogue, registry, tasks
from smartstudy.services.predictor import PredictionService
from smartstudy.store.db import UnitOfWork, session_scope
from smartstudy.store.orm import ModelVersion, User, utcnow

STUDENTS = 15
TASKS_EACH = 6


@pytest.fixture
def cohort(context):
    """Fifteen students with six completed tasks each (enough to hold some out), and the
    one topic they practised."""
    with session_scope(context.sessions) as session:
        subject = catalogue.create_subject(session, "Maths")
        topic = catalogue.create_topic(session, subject.id, "Calculus")
        users = []
        for k in range(STUDENTS):
            user = User(
                id=uuid.uuid5(uuid.NAMESPACE_URL, f"served-state/{k}"),
                email=f"s{k}@example.com",
                password_hash="!",
                display_name=f"s{k}",
            )
            session.add(user)
            users.append(user)
        session.flush()
        user_ids, topic_id = [u.id for u in users], topic.id
    served = dataclasses.replace(
        context, settings=context.settings.model_copy(update={"retrain_every": 10**9})
    )
    start = utcnow() - timedelta(hours=2)
    for t in range(TASKS_EACH):
        for k, user_id in enumerate(user_ids):
            with session_scope(context.sessions) as session:
                user = session.get(User, user_id)
                task = tasks.create_task(session, context.predictor, user, topic_id, "medium")
                correct = (k + t) % 3 != 0
                when = start + timedelta(seconds=60 * (t * STUDENTS + k))
                tasks.complete_task(
                    served, UnitOfWork(session), user, task.id, correct, 30 + 5 * k, when
                )
    held = registry.holdout_users(str(u) for u in user_ids)
    assert held, "the cohort must hold some students out"
    return user_ids, topic_id, held


def test_an_active_version_stores_its_served_state(context, cohort):
    _, topic_id, held = cohort
    with session_scope(context.sessions) as session:
        row = PredictionService().train(session, "baseline")
        assert row.served_artifact is not None
        version_id = row.id

    held_user = uuid.UUID(sorted(held)[0])
    with context.sessions() as session:
        from_state = PredictionService(chain=("baseline",))
        calls = []
        original = Baseline.update

        def counting(self, row):
            calls.append(row)
            return original(self, row)

        Baseline.update = counting  # type: ignore[method-assign]
        try:
            quick = from_state.predict(session, held_user, topic_id, "medium")
        finally:
            Baseline.update = original  # type: ignore[method-assign]
        # The held-out students' tasks are in the stored state: nothing was replayed.
        assert calls == []

    # Without the stored state the predictor replays them, and predicts the same.
    with session_scope(context.sessions) as session:
        session.execute(
            update(ModelVersion).where(ModelVersion.id == version_id).values(served_artifact=None)
        )
    with context.sessions() as session:
        replayed = PredictionService(chain=("baseline",)).predict(
            session, held_user, topic_id, "medium"
        )
    assert quick.p_correct == pytest.approx(replayed.p_correct, abs=1e-12)
    assert quick.time_median_s == pytest.approx(replayed.time_median_s, rel=1e-12)
    # The held-out student's own history moved them away from a newcomer.
    with context.sessions() as session:
        stranger = PredictionService(chain=("baseline",)).predict(
            session, uuid.uuid4(), topic_id, "medium"
        )
    assert quick.p_correct != pytest.approx(stranger.p_correct, abs=1e-6)


def test_a_new_version_is_loaded_beside_the_serving_one(context, cohort):
    user_ids, topic_id, _ = cohort
    with session_scope(context.sessions) as session:
        old = str(PredictionService().train(session, "baseline").version)
    service = PredictionService(chain=("baseline",), load_in_background=True)
    with context.sessions() as session:
        first = service.predict(session, user_ids[0], topic_id, "hard")
    assert first.model_version == old

    with session_scope(context.sessions) as session:
        PredictionService().train(session, "baseline")  # a newer version becomes active
        active = session.scalar(
            select(ModelVersion.version).where(
                ModelVersion.model_name == "baseline", ModelVersion.is_active.is_(True)
            )
        )
    new = str(active)
    assert new != old
    with context.sessions() as session:
        during = service.predict(session, user_ids[0], topic_id, "hard")
    # The request that noticed the new version was answered by the loaded one...
    assert during.model_version == old
    assert service.wait_loaded(timeout=30)
    with context.sessions() as session:
        after = service.predict(session, user_ids[0], topic_id, "hard")
    # ...and once it is loaded, the new version answers.
    assert after.model_version == new


def test_without_background_loading_the_request_loads_the_new_version(context, cohort):
    user_ids, topic_id, _ = cohort
    service = PredictionService(chain=("baseline",))
    with context.sessions() as session:
        old = service.predict(session, user_ids[1], topic_id, "easy").model_version
    with session_scope(context.sessions) as session:
        new = str(PredictionService().train(session, "baseline").version)
    assert new != old
    with context.sessions() as session:
        assert service.predict(session, user_ids[1], topic_id, "easy").model_version == new


def test_warm_up_loads_before_the_first_request(context, cohort):
    user_ids, topic_id, _ = cohort
    with session_scope(context.sessions) as session:
        PredictionService().train(session, "baseline")
    service = PredictionService(chain=("lnirt", "baseline"))
    service.warm_up(context.sessions)
    assert set(service._served) == {"lnirt", "baseline"}
    assert service._counts.loaded
    loads = []
    original = service._load
    service._load = lambda session, name: loads.append(name) or original(session, name)
    with context.sessions() as session:
        p = service.predict(session, user_ids[2], topic_id, "medium")
    assert loads == [] and p.model_name in ("lnirt", "baseline")
