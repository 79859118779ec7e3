"""One completion use case (issue 11): the API, the web study page and the CSV import all
complete a task through ``services.tasks.complete_task`` / ``complete_tasks``, with the same
effects: the task completed, the counter bumped and claimed, the served models told after
the commit, and the training scheduled when the counter reaches its threshold. Run on
SQLite and PostgreSQL (the ``client`` and ``context`` fixtures)."""

from __future__ import annotations

import io
import re
import uuid
from dataclasses import dataclass, field

import pytest
from sqlalchemy import select

from smartstudy.api.deps import DB
from smartstudy.services import tasks, training
from smartstudy.services.errors import ConflictError
from smartstudy.services.importing import import_tasks_csv
from smartstudy.store.db import UnitOfWork, unit_of_work
from smartstudy.store.orm import Job, PracticeTask, Subject, TrainingCounter
from tests.conftest import register
from tests.web.conftest import Web

EMAIL = "learner@example.com"


@dataclass
class Spy:
    """What went through the use case and what followed it."""

    single: list[uuid.UUID] = field(default_factory=list)  # complete_task's task ids
    batches: list[list[uuid.UUID]] = field(default_factory=list)  # complete_tasks' ids
    observed: list[uuid.UUID] = field(default_factory=list)
    scheduled: int = 0


@pytest.fixture
def spy(context, monkeypatch) -> Spy:
    found = Spy()
    real_one, real_many = tasks.complete_task, tasks.complete_tasks
    real_observe = context.predictor.observe

    def complete_task(ctx, uow, actor, task_id, *args, **kwargs):
        found.single.append(task_id)
        return real_one(ctx, uow, actor, task_id, *args, **kwargs)

    def complete_tasks(ctx, uow, completions):
        found.batches.append([c.task_id for c in completions])
        return real_many(ctx, uow, completions)

    def observe(task):
        found.observed.append(task.id)
        real_observe(task)

    def schedule(_context):
        found.scheduled += 1  # the job row is what matters here; no training runs

    monkeypatch.setattr(tasks, "complete_task", complete_task)
    monkeypatch.setattr(tasks, "complete_tasks", complete_tasks)
    monkeypatch.setattr(context.predictor, "observe", observe)
    monkeypatch.setattr(training, "schedule_training", schedule)
    return found


def _preset_counter(context, count: int) -> None:
    with unit_of_work(context.sessions) as uow:
        uow.session.merge(TrainingCounter(name=tasks.TRAINING_COUNTER, count=count, total=count))


def _complete_through_api(client, context, topic) -> uuid.UUID:
    headers = register(client, EMAIL)
    r = client.post(
        "/v1/tasks", json={"topic_id": topic["id"], "difficulty": "hard"}, headers=headers
    )
    assert r.status_code == 201, r.text
    task_id = r.json()["id"]
    r = client.post(
        f"/v1/tasks/{task_id}/complete",
        json={"is_correct": True, "actual_time_seconds": 90.0},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    return uuid.UUID(task_id)


def _complete_through_web(client, context, topic) -> uuid.UUID:
    web = Web(client)
    web.signup(EMAIL)
    web.get("/study")
    r = web.post(
        "/study",
        {"subject": topic["subject_id"], "topic": topic["id"], "difficulty": "hard"},
    )
    assert r.status_code == 303, r.text
    found = re.fullmatch(r"/study/tasks/([0-9a-f-]{36})", r.headers["location"])
    assert found, r.headers["location"]
    task_id = found.group(1)
    web.get(f"/study/tasks/{task_id}")
    r = web.post(
        f"/study/tasks/{task_id}/complete", {"minutes": "1", "seconds": "30", "result": "correct"}
    )
    assert r.status_code == 303, r.text
    return uuid.UUID(task_id)


def _complete_through_import(client, context, topic) -> uuid.UUID:
    register(client, EMAIL)
    text = (
        "email,subject,topic,difficulty,correct,rt_seconds\n"
        f"{EMAIL},Mathematics,Calculus,hard,1,90\n"
    )
    with unit_of_work(context.sessions) as uow:
        result = import_tasks_csv(context, uow, io.StringIO(text))
    assert (result.rows, result.subjects_created, result.topics_created) == (1, 0, 0)
    with context.sessions() as session:
        return session.scalars(select(PracticeTask.id)).one()


PATHS = {
    "api": _complete_through_api,
    "web": _complete_through_web,
    "import": _complete_through_import,
}


def _effects(context, task_id: uuid.UUID) -> dict:
    with context.sessions() as session:
        task = session.get(PracticeTask, task_id)
        counter = session.get(TrainingCounter, tasks.TRAINING_COUNTER)
        queued = session.scalars(
            select(Job).where(Job.kind == training.TRAINING_JOB, Job.status == "queued")
        ).all()
        return {
            "completed": task.completed_at is not None and task.started_at is not None,
            "is_correct": task.is_correct,
            "seconds": task.actual_time_seconds,
            "difficulty": task.difficulty,
            "counter": (counter.count, counter.total),
            "queued_trainings": len(queued),
        }


@pytest.mark.parametrize("path", PATHS)
def test_each_path_goes_through_the_use_case_and_trains_at_the_threshold(
    client, context, topic, spy, path
):
    every = context.settings.retrain_every
    _preset_counter(context, every - 1)  # this completion is the one that reaches it

    task_id = PATHS[path](client, context, topic)

    assert spy.batches == [[task_id]]  # one trip through the use case, for this task
    assert spy.single == ([] if path == "import" else [task_id])
    assert spy.observed == [task_id]  # the served models learnt it, after the commit
    assert spy.scheduled == 1
    assert _effects(context, task_id) == {
        "completed": True,
        "is_correct": True,
        "seconds": 90.0,
        "difficulty": "hard",
        "counter": (0, every),  # bumped to the threshold and claimed in one transaction
        "queued_trainings": 1,
    }


@pytest.mark.parametrize("path", PATHS)
def test_below_the_threshold_nothing_is_scheduled(client, context, topic, spy, path):
    task_id = PATHS[path](client, context, topic)
    assert spy.batches == [[task_id]]
    assert spy.observed == [task_id]
    assert spy.scheduled == 0
    effects = _effects(context, task_id)
    assert effects["counter"] == (1, 1)
    assert effects["queued_trainings"] == 0


def test_an_import_is_one_batch_all_or_nothing(client, context, topic, spy):
    """Many rows: one call of the use case, one claim, every row observed; a file with a
    bad row completes nothing and tells nobody."""
    every = context.settings.retrain_every
    register(client, EMAIL)
    rows = "".join(f"{EMAIL},Mathematics,Calculus,easy,{i % 2},{30 + i}\n" for i in range(every))
    header = "email,subject,topic,difficulty,correct,rt_seconds\n"
    with unit_of_work(context.sessions) as uow:
        import_tasks_csv(context, uow, io.StringIO(header + rows))
    assert len(spy.batches) == 1 and len(spy.batches[0]) == every
    assert sorted(spy.observed) == sorted(spy.batches[0])
    assert spy.scheduled == 1
    with context.sessions() as session:
        counter = session.get(TrainingCounter, tasks.TRAINING_COUNTER)
        assert (counter.count, counter.total) == (0, every)

    bad = header + f"{EMAIL},Mathematics,Calculus,easy,1,60\n{EMAIL},Mathematics,X,easy,1,-5\n"
    with pytest.raises(Exception, match="rt_seconds"), unit_of_work(context.sessions) as uow:
        import_tasks_csv(context, uow, io.StringIO(bad))
    assert len(spy.batches) == 1 and spy.scheduled == 1
    with context.sessions() as session:
        assert len(session.scalars(select(PracticeTask.id)).all()) == every


def test_a_second_completion_is_refused_and_changes_nothing(client, context, topic, spy):
    task_id = _complete_through_api(client, context, topic)
    headers = {
        "Authorization": "Bearer "
        + client.post(
            "/v1/auth/login", json={"email": EMAIL, "password": "correct horse 1"}
        ).json()["access_token"]
    }
    r = client.post(
        f"/v1/tasks/{task_id}/complete",
        json={"is_correct": False, "actual_time_seconds": 10.0},
        headers=headers,
    )
    assert r.status_code == 409, r.text
    assert spy.observed == [task_id]
    effects = _effects(context, task_id)
    assert (effects["is_correct"], effects["seconds"], effects["counter"]) == (True, 90.0, (1, 1))


# -- the unit of work ------------------------------------------------------------------------
def test_after_commit_runs_after_the_commit_and_not_after_a_rollback(context):
    seen: list[str] = []
    with unit_of_work(context.sessions) as uow:
        uow.after_commit(lambda: seen.append("dropped"))
        uow.rollback()
        uow.after_commit(lambda: seen.append("ran"))
        assert seen == []
    assert seen == ["ran"]
    with pytest.raises(RuntimeError), unit_of_work(context.sessions) as uow:
        uow.after_commit(lambda: seen.append("never"))
        raise RuntimeError("the request failed")
    assert seen == ["ran"]


def test_a_failing_callback_is_logged_and_the_commit_stands(context, caplog):
    seen: list[str] = []

    def broken() -> None:
        raise ValueError("the runner is away")

    with unit_of_work(context.sessions) as uow:
        uow.session.add(TrainingCounter(name="other", count=1, total=1))
        uow.after_commit(broken)
        uow.after_commit(lambda: seen.append("next"))
        uow.commit()
    assert seen == ["next"]
    assert "the commit stands" in caplog.text
    with context.sessions() as session:
        assert session.get(TrainingCounter, "other") is not None


def test_a_held_unit_stores_once_and_defers_stored_callbacks(context):
    seen: list[str] = []
    with unit_of_work(context.sessions, hold=True) as uow:
        uow.session.add(TrainingCounter(name="held", count=1, total=1))
        uow.after_commit(lambda: seen.append("now"))
        uow.after_commit(lambda: seen.append("stored"), stored=True)
        uow.commit()  # only a flush: the transaction stays open
        assert seen == ["now"]
        assert uow.session.in_transaction()
    assert seen == ["now", "stored"]
    with context.sessions() as session:
        assert session.get(TrainingCounter, "held") is not None


def test_a_unit_of_work_wraps_a_given_session(context):
    with context.sessions() as session:
        uow = UnitOfWork(session)
        uow.session.add(TrainingCounter(name="wrapped", count=1, total=1))
        uow.commit()
    with context.sessions() as session:
        assert session.get(TrainingCounter, "wrapped") is not None


# -- the request's unit of work ------------------------------------------------------------
def test_a_request_that_fails_after_writing_stores_nothing_and_gives_back_its_connection(
    client, context
):
    """The request's unit of work is opened on the event loop and ended in a worker thread
    (``api.deps.get_unit_of_work``): a route that fails after writing answers its error,
    nothing it wrote is stored, and its connection goes back to the pool; one that
    succeeds is committed before the answer is sent."""

    def refuse(session: DB) -> None:
        session.add(Subject(name="half written"))
        session.flush()
        raise ConflictError("refused after writing")

    def accept(session: DB) -> dict:
        session.add(Subject(name="kept"))
        return {"ok": True}

    client.app.add_api_route("/v1/test-refuse", refuse, methods=["POST"])
    client.app.add_api_route("/v1/test-accept", accept, methods=["POST"])
    pool = context.engine.pool
    before = pool.checkedout() if hasattr(pool, "checkedout") else None
    r = client.post("/v1/test-refuse")
    assert r.status_code == 409, r.text
    assert "refused after writing" in r.text
    assert client.post("/v1/test-accept").status_code == 200
    with unit_of_work(context.sessions) as uow:
        names = set(uow.session.scalars(select(Subject.name)))
    assert "half written" not in names and "kept" in names
    if before is not None:
        assert pool.checkedout() == before
