"""The model registry: validation before activation, admin endpoints, monitoring, and the
training counter under concurrent completions."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select

from smartstudy.data.simulate import simulate_app_learners
from smartstudy.jobs import InProcessRunner
from smartstudy.models.baseline import Baseline
from smartstudy.services import accounts, catalogue, registry, training
from smartstudy.services.predictor import PredictionService
from smartstudy.services.training import run_training
from smartstudy.store.db import session_scope
from smartstudy.store.orm import Job, ModelVersion, PracticeTask, TrainingCounter

from .conftest import register


class Flippable(Baseline):
    """A baseline that can be told to predict the opposite of what it learnt (a bad model)."""

    def __init__(self, flipped: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.flipped = flipped

    def _predict_validated(self, data):
        out = super()._predict_validated(data)
        if self.flipped:
            out["p_correct"] = 1.0 - out["p_correct"]
        return out


def _flippable_service(state: dict) -> PredictionService:
    return PredictionService(
        chain=("candidate", "baseline"),
        factories={"candidate": lambda: Flippable(flipped=state["flipped"]), "baseline": Baseline},
    )


def _history(context, n_users: int = 14, per_user: int = 12, seed: int = 0) -> list:
    """Completed tasks for ``n_users`` students whose success depends on the difficulty."""
    rng = np.random.default_rng(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with session_scope(context.sessions) as session:
        subject = catalogue.create_subject(session, "Maths")
        topic = catalogue.create_topic(session, subject.id, "Calculus")
        users = []
        for u in range(n_users):
            user = accounts.create_user(session, f"s{u}@example.com", "password 123")
            users.append(user.id)
            for k in range(per_user):
                difficulty = ("easy", "medium", "hard")[k % 3]
                p = {"easy": 0.9, "medium": 0.6, "hard": 0.2}[difficulty]
                # Students take turns, so the end of training (the last training student's
                # last task) falls in the last round, whoever is held out.
                at = start + timedelta(hours=k * n_users + u)
                session.add(
                    PracticeTask(
                        user_id=user.id,
                        topic_id=topic.id,
                        difficulty=difficulty,
                        created_at=at,
                        completed_at=at,
                        is_correct=bool(rng.random() < p),
                        actual_time_seconds=float(rng.lognormal(4, 0.4)),
                    )
                )
        topic_id = topic.id
    return users, topic_id


def _active(context, name):
    with context.sessions() as session:
        return session.scalar(
            select(ModelVersion).where(
                ModelVersion.model_name == name, ModelVersion.is_active.is_(True)
            )
        )


def test_holdout_students_are_stable_and_need_ten_students():
    few = [str(uuid.UUID(int=i)) for i in range(9)]
    assert registry.holdout_users(few) == set()
    many = [str(uuid.UUID(int=i)) for i in range(40)]
    held = registry.holdout_users(many)
    assert 0 < len(held) < len(many) / 2
    more = many + [str(uuid.UUID(int=1000 + i)) for i in range(40)]
    assert held <= registry.holdout_users(more)  # nobody moves from held-out to training


def test_held_out_memo_predicts_again_only_students_with_new_tasks():
    """A training reuses a version's held-out predictions of students whose held-out tasks
    did not change; the answer is the same as predicting every row again."""
    data, _ = simulate_app_learners([40] * 30, seed=4)
    data = data.assign(task_id=[f"t{k:05d}" for k in range(len(data))])
    users = data["user_id"].unique()
    model = Baseline().fit(data[~data["user_id"].isin(users[:10])])
    held = data[data["user_id"].isin(users[:10])]
    first = held.groupby("user_id").head(30)  # what the first training saw
    asked: list[set] = []
    predict = model.predict

    def spy(rows):
        asked.append(set(rows["user_id"]))
        return predict(rows)

    model.predict = spy
    memo = registry.HeldOutMemo()
    pd.testing.assert_frame_equal(
        memo.predict("baseline", "v1", model, first), registry.predict_rows(model, first)
    )
    # Two students completed more tasks since; the others' predictions are kept.
    later = pd.concat([first, held[held["user_id"].isin(users[:2])].groupby("user_id").tail(10)])
    asked.clear()
    again = memo.predict("baseline", "v1", model, later)
    assert asked == [set(users[:2])]
    np.testing.assert_allclose(again, registry.predict_rows(model, later), rtol=1e-12)
    # Another version predicts everyone again.
    asked.clear()
    memo.predict("baseline", "v2", model, later)
    assert asked == [set(users[:10])]


def test_a_worse_version_is_kept_but_not_activated(context):
    # Which version of "candidate" serves is the point here, not the order of families:
    # its answer is read from the candidates every prediction can return.
    users, topic_id = _history(context)
    state = {"flipped": False}
    context.predictor = _flippable_service(state)
    first = run_training(context)
    assert first.status == "succeeded", first.error
    assert first.summary["holdout_rows"] > 0
    v1 = _active(context, "candidate")
    assert v1.version == 1 and "validation" in v1.metrics

    state["flipped"] = True
    second = run_training(context)
    assert second.summary["candidate"]["status"] == "rejected"
    assert "worse" in second.summary["candidate"]["decision"]
    with context.sessions() as session:
        v2 = session.scalar(
            select(ModelVersion).where(
                ModelVersion.model_name == "candidate", ModelVersion.version == 2
            )
        )
        assert v2.status == "rejected" and not v2.is_active
        assert v2.metrics["compared"]["log_loss"] > v2.metrics["active_compared"]["log_loss"]
        p = context.predictor.predict(session, users[0], topic_id, "easy", candidates=True)
    assert _active(context, "candidate").version == 1
    # The sound version answers for "candidate": easy tasks are mostly solved.
    assert p.candidates["candidate"][0] > 0.6


def test_a_better_version_replaces_the_active_one(context):
    users, topic_id = _history(context)
    state = {"flipped": True}
    context.predictor = _flippable_service(state)
    run_training(context)
    assert _active(context, "candidate").version == 1  # nothing to compare with yet
    state["flipped"] = False
    job = run_training(context)
    assert job.summary["candidate"]["status"] == "active"
    assert _active(context, "candidate").version == 2
    with context.sessions() as session:
        old = session.scalar(
            select(ModelVersion).where(
                ModelVersion.model_name == "candidate", ModelVersion.version == 1
            )
        )
        assert old.status == "retired"
        p = context.predictor.predict(session, users[0], topic_id, "easy", candidates=True)
    # The candidate's answer comes from the sound version 2: easy tasks are mostly solved.
    assert p.candidates["candidate"][0] > 0.6


class CountingUpdates(Baseline):
    """A baseline that remembers whose attempts it learnt online."""

    def update(self, row):
        self.__dict__.setdefault("updated_users", []).append(str(row["user_id"]))
        super().update(row)


def test_held_out_students_are_served_with_their_history(context):
    users, topic_id = _history(context)
    context.predictor = PredictionService(
        chain=("baseline",), factories={"baseline": CountingUpdates}
    )
    run_training(context)
    v = _active(context, "baseline")
    held = v.training_summary["holdout_users"]
    assert held and v.n_training_rows == 12 * (len(users) - len(held))
    with context.sessions() as session:
        stored = context.predictor.predict(session, uuid.UUID(held[0]), topic_id, "easy")
    served = context.predictor._served["baseline"].model
    # The training job stored the served state: loading it replays none of the held-out
    # tasks up to the end of training; only later ones are caught up, as any completion.
    with context.sessions() as session:
        later = session.scalars(
            select(PracticeTask.user_id).where(PracticeTask.completed_at > v.trained_until)
        ).all()
    assert sorted(served.__dict__.get("updated_users", [])) == sorted(str(u) for u in later)
    assert len(later) < 12 * len(held)
    # Without that state, every task of a held-out student is learnt online once on
    # loading, fitted tasks are not replayed, and the prediction is the same.
    with session_scope(context.sessions) as session:
        session.get(ModelVersion, v.id).served_artifact = None
    replaying = PredictionService(chain=("baseline",), factories={"baseline": CountingUpdates})
    with context.sessions() as session:
        again = replaying.predict(session, uuid.UUID(held[0]), topic_id, "easy")
    learnt = replaying._served["baseline"].model.__dict__.get("updated_users", [])
    assert sorted(learnt) == sorted(u for u in held for _ in range(12))
    assert again.p_correct == pytest.approx(stored.p_correct, abs=1e-12)


def test_a_corrupt_active_version_falls_back_and_is_recorded(context):
    users, topic_id = _history(context, n_users=3)
    state = {"flipped": False}
    context.predictor = _flippable_service(state)
    context.predictor.fixed_order = True  # the candidate is asked first: nothing is held out
    run_training(context)
    with session_scope(context.sessions) as session:
        row = session.scalar(select(ModelVersion).where(ModelVersion.model_name == "candidate"))
        row.artifact = b"this is not a model"
    context.predictor.forget()
    with context.sessions() as session:
        p = context.predictor.predict(session, users[0], topic_id, "easy")
        session.commit()
    assert p.model_name == "baseline"
    assert _active(context, "candidate") is None
    assert any(name == "candidate" for _, name, _ in context.predictor.fallbacks)


# -- the admin API ----------------------------------------------------------------------
def test_models_api_is_for_admins_only(client, student):
    for method, url in (
        ("get", "/v1/models"),
        ("get", "/v1/models/versions"),
        ("post", "/v1/models/train"),
        ("get", "/v1/models/monitor"),
        ("post", f"/v1/models/versions/{uuid.uuid4()}/activate"),
    ):
        assert getattr(client, method)(url, headers=student).status_code == 403, url
    assert client.get("/v1/models").status_code == 401


def test_admin_lists_and_activates_versions(client, admin, context):
    users, topic_id = _history(context)
    state = {"flipped": False}
    context.predictor = _flippable_service(state)
    run_training(context)
    state["flipped"] = True
    run_training(context)  # version 2 is rejected

    status = client.get("/v1/models", headers=admin).json()
    assert status["chain"] == ["candidate", "baseline"]
    assert status["active"]["candidate"]["version"] == 1
    assert status["counter"]["retrain_every"] == context.settings.retrain_every
    assert [r["status"] for r in status["training_runs"]] == ["succeeded", "succeeded"]

    versions = client.get("/v1/models/versions?model_name=candidate", headers=admin).json()
    assert [(v["version"], v["status"]) for v in versions] == [(2, "rejected"), (1, "active")]
    assert "artifact" not in versions[0]

    r = client.post(f"/v1/models/versions/{versions[0]['id']}/activate", headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["is_active"] and r.json()["status"] == "active"
    assert _active(context, "candidate").version == 2
    with context.sessions() as session:
        p = context.predictor.predict(session, users[0], topic_id, "easy", candidates=True)
    # The admin's choice is served at once: version 2 is the flipped one, which says easy
    # tasks are mostly failed.
    assert p.candidates["candidate"][0] < 0.5

    r = client.post(f"/v1/models/versions/{uuid.uuid4()}/activate", headers=admin)
    assert r.status_code == 404


def test_activating_a_corrupt_version_is_refused(client, admin, context):
    _history(context, n_users=3)
    context.predictor = _flippable_service({"flipped": False})
    run_training(context)
    run_training(context)
    with session_scope(context.sessions) as session:
        v1 = session.scalar(
            select(ModelVersion).where(
                ModelVersion.model_name == "candidate", ModelVersion.version == 1
            )
        )
        v1.artifact = v1.artifact[:40]
        v1_id = v1.id
    r = client.post(f"/v1/models/versions/{v1_id}/activate", headers=admin)
    assert r.status_code == 409 and "cannot be loaded" in r.json()["detail"]
    assert _active(context, "candidate").version == 2
    with context.sessions() as session:
        assert session.get(ModelVersion, v1_id).status == "corrupt"


def test_train_endpoint_runs_a_job(client, admin, context):
    _history(context, n_users=3)
    context.predictor = PredictionService(chain=("baseline",), factories={"baseline": Baseline})
    r = client.post("/v1/models/train", headers=admin)
    assert r.status_code == 202
    assert context.runner.wait_idle(timeout=60)
    runs = client.get("/v1/models/trainings", headers=admin).json()
    assert runs[0]["status"] == "succeeded" and runs[0]["summary"]["rows"] == 36


def test_monitor_warns_about_saturated_predictions(client, admin, context):
    with session_scope(context.sessions) as session:
        subject = catalogue.create_subject(session, "Maths")
        topic = catalogue.create_topic(session, subject.id, "Calculus")
        user = accounts.create_user(session, "s@example.com", "password 123")
        for i, p in enumerate([0.999] * 8 + [0.5, 0.6]):
            session.add(
                PracticeTask(
                    user_id=user.id,
                    topic_id=topic.id,
                    difficulty="easy",
                    predicted_correct=p,
                    model_name="neural" if i < 9 else "baseline",
                )
            )
    out = {d["model_name"]: d for d in client.get("/v1/models/monitor", headers=admin).json()}
    assert out["neural"]["n"] == 9
    assert out["neural"]["saturated_share"] == pytest.approx(8 / 9, abs=1e-4)
    assert "above 0.98" in out["neural"]["warning"]
    assert out["baseline"]["warning"] is None
    assert sum(out["neural"]["histogram"]["counts"]) == 9


# -- concurrency ------------------------------------------------------------------------
class CountingRunner(InProcessRunner):
    def __init__(self) -> None:
        super().__init__()
        self.submitted = 0
        self._count_lock = threading.Lock()

    def submit(self, kind, fn):
        with self._count_lock:
            self.submitted += 1
        super().submit(kind, fn)


def test_100_concurrent_completions_keep_the_counter_exact(client, context, monkeypatch):
    # Every training refits (no growth threshold), so the last version shows the last data.
    monkeypatch.setattr(training, "REFIT_GROWTH", {})
    context.predictor = PredictionService(chain=("baseline",), factories={"baseline": Baseline})
    runner = CountingRunner()
    context.runner = runner
    headers = [register(client, f"c{i}@example.com") for i in range(4)]
    with session_scope(context.sessions) as session:
        subject = catalogue.create_subject(session, "Maths")
        admin_topic = catalogue.create_topic(session, subject.id, "Calculus").id
    created = []
    for i in range(100):
        h = headers[i % 4]
        r = client.post(
            "/v1/tasks", json={"topic_id": str(admin_topic), "difficulty": "easy"}, headers=h
        )
        assert r.status_code == 201, r.text
        created.append((r.json()["id"], h))

    def complete(item):
        task_id, h = item
        return client.post(
            f"/v1/tasks/{task_id}/complete",
            json={"is_correct": True, "actual_time_seconds": 30},
            headers=h,
        ).status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        codes = list(pool.map(complete, created))
    assert codes == [200] * 100
    assert runner.wait_idle(timeout=120)
    with context.sessions() as session:
        counter = session.get(TrainingCounter, "training")
        assert (counter.count, counter.total) == (0, 100)
        jobs = session.scalars(select(Job).order_by(Job.created_at)).all()
        done = session.scalar(
            select(PracticeTask.completed_at).order_by(PracticeTask.completed_at.desc())
        )
    latest = _active(context, "baseline")
    assert runner.submitted == 20  # one claim per five completions, none lost
    assert jobs and all(j.status == "succeeded" for j in jobs)
    # Coalescing may merge claims, but the last training saw every completion.
    assert jobs[-1].summary["rows"] == 100
    assert latest.n_training_rows == 100 and latest.trained_until == done


def test_a_version_fitted_on_nothing_says_it_is_the_prior(context):
    """On an empty system the first version of each family has learnt nothing: the admin page
    must not say its training predictions were checked."""
    service = PredictionService()
    with session_scope(context.sessions) as session:
        version = service.train(session, "baseline")
        assert version.n_training_rows == 0
        reason = (version.training_summary or {}).get("decision", "")
    assert "no completed tasks yet" in str(reason)
