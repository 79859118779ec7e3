"""Train now with nothing new stores nothing new (issue 16): one set of versions, not two."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from smartstudy.models.baseline import Baseline
from smartstudy.services import accounts, catalogue
from smartstudy.services.predictor import PredictionService
from smartstudy.services.training import run_queued_trainings
from smartstudy.store.db import session_scope
from smartstudy.store.orm import Job, ModelVersion, PracticeTask
from tests.test_audit import RecordingRunner
from tests.web.conftest import PASSWORD, Web, make_admin


def _complete(context, n: int, start: datetime) -> None:
    with session_scope(context.sessions) as session:
        topic = catalogue.find_topic(session, catalogue.find_subject(session, "Maths"), "Calculus")
        user = accounts.get_user_by_email(session, "s@example.com")
        for k in range(n):
            at = start + timedelta(minutes=k)
            session.add(
                PracticeTask(
                    user_id=user.id,
                    topic_id=topic.id,
                    difficulty=("easy", "medium", "hard")[k % 3],
                    created_at=at,
                    completed_at=at,
                    is_correct=k % 2 == 0,
                    actual_time_seconds=60.0 + k,
                )
            )


def _count(context, what) -> int:
    with context.sessions() as session:
        return session.scalar(select(func.count()).select_from(what))


def test_train_now_twice_with_no_new_completions_stores_one_set_of_versions(client, context, admin):
    context.predictor = PredictionService(chain=("baseline",), factories={"baseline": Baseline})
    context.runner = RecordingRunner()
    with session_scope(context.sessions) as session:
        subject = catalogue.create_subject(session, "Maths")
        catalogue.create_topic(session, subject.id, "Calculus")
        accounts.create_user(session, "s@example.com", "password 123")
    _complete(context, 30, datetime(2026, 1, 1, tzinfo=UTC))

    first = client.post("/v1/models/train", headers=admin)
    assert first.status_code == 202 and first.json()["scheduled"] is True
    assert run_queued_trainings(context) == 1
    versions = _count(context, ModelVersion)
    jobs = _count(context, Job)
    assert versions == 1

    again = client.post("/v1/models/train", headers=admin)
    assert again.status_code == 200, again.text
    assert again.json()["scheduled"] is False
    assert "no task completed since the training started" in again.json()["detail"]
    assert (_count(context, ModelVersion), _count(context, Job)) == (versions, jobs)

    # The admin page says so too, and queues nothing.
    make_admin(context, "boss@example.com")
    web = Web(client)
    web.login("boss@example.com", PASSWORD)
    web.get("/admin/models")
    r = web.post("/admin/models/train")
    assert r.status_code == 303 and r.headers["location"] == "/admin/models?done=nothing-new"
    assert (
        "no training was started and no version was stored" in web.get(r.headers["location"]).text
    )
    assert (_count(context, ModelVersion), _count(context, Job)) == (versions, jobs)

    # One more completion: there is something to learn again.
    _complete(context, 1, datetime.now(UTC))
    r = client.post("/v1/models/train", headers=admin)
    assert r.status_code == 202 and r.json()["scheduled"] is True
    assert run_queued_trainings(context) == 1
    assert _count(context, ModelVersion) == versions + 1
