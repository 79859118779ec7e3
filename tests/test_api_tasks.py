"""Practice tasks over HTTP: predictions, lifecycle, ownership, validation."""

from __future__ import annotations

import uuid
from datetime import datetime

import pytest
from sqlalchemy import select

from smartstudy.store.orm import TrainingCounter


def _create(client, headers, topic, difficulty="medium", **extra):
    r = client.post(
        "/v1/tasks",
        json={"topic_id": topic["id"], "difficulty": difficulty, **extra},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    return r.json()


def _check_prediction(body):
    assert 0 < body["predicted_correct"] < 1
    assert body["predicted_time_median_s"] > 0
    assert (
        body["predicted_time_p10_s"]
        < body["predicted_time_median_s"]
        < body["predicted_time_p90_s"]
    )
    assert body["model_name"] == "baseline"
    assert body["model_version"]


def test_create_start_complete_list(client, student, topic):
    task = _create(client, student, topic, "hard", description="Chain rule drill")
    _check_prediction(task)
    assert task["status"] == "created"
    assert task["topic_name"] == "Calculus" and task["subject_name"] == "Mathematics"

    r = client.post(f"/v1/tasks/{task['id']}/start", headers=student)
    assert r.status_code == 200 and r.json()["status"] == "started"
    r = client.post(
        f"/v1/tasks/{task['id']}/complete",
        json={"is_correct": True, "actual_time_seconds": 312.5},
        headers=student,
    )
    assert r.status_code == 200, r.text
    done = r.json()
    assert done["status"] == "completed"
    assert done["is_correct"] is True and done["actual_time_seconds"] == 312.5
    # The prediction made at creation is kept next to the outcome.
    assert done["predicted_correct"] == task["predicted_correct"]

    listed = client.get("/v1/tasks", headers=student).json()
    assert listed["total"] == 1
    assert listed["items"][0]["id"] == task["id"]
    assert listed["items"][0]["actual_time_seconds"] == 312.5
    one = client.get(f"/v1/tasks/{task['id']}", headers=student).json()
    assert one["description"] == "Chain rule drill"


def test_preview_matches_created_task(client, student, topic):
    r = client.post(
        "/v1/tasks/preview", json={"topic_id": topic["id"], "difficulty": "easy"}, headers=student
    )
    assert r.status_code == 200
    _check_prediction(r.json())
    task = _create(client, student, topic, "easy")
    assert task["predicted_correct"] == pytest.approx(r.json()["predicted_correct"])
    assert client.get("/v1/tasks", headers=student).json()["total"] == 1  # preview stores nothing


def test_predictions_learn_from_completions(client, student, other_student, topic):
    before = client.post(
        "/v1/tasks/preview", json={"topic_id": topic["id"], "difficulty": "medium"}, headers=student
    ).json()
    for _ in range(6):
        t = _create(client, student, topic)
        client.post(
            f"/v1/tasks/{t['id']}/complete",
            json={"is_correct": False, "actual_time_seconds": 900},
            headers=student,
        )
    after = client.post(
        "/v1/tasks/preview", json={"topic_id": topic["id"], "difficulty": "medium"}, headers=student
    ).json()
    assert after["predicted_correct"] < before["predicted_correct"]
    assert after["predicted_time_median_s"] > before["predicted_time_median_s"]


def test_completing_twice_is_409(client, student, topic):
    task = _create(client, student, topic)
    body = {"is_correct": False, "actual_time_seconds": 60}
    assert (
        client.post(f"/v1/tasks/{task['id']}/complete", json=body, headers=student).status_code
        == 200
    )
    r = client.post(f"/v1/tasks/{task['id']}/complete", json=body, headers=student)
    assert r.status_code == 409
    assert "already completed" in r.json()["detail"]
    assert client.post(f"/v1/tasks/{task['id']}/start", headers=student).status_code == 409


@pytest.mark.parametrize("seconds", [0, -5, 86400.5, 10**9])
def test_time_out_of_range_is_422(client, student, topic, seconds):
    task = _create(client, student, topic)
    r = client.post(
        f"/v1/tasks/{task['id']}/complete",
        json={"is_correct": True, "actual_time_seconds": seconds},
        headers=student,
    )
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "actual_time_seconds"]
    assert client.get(f"/v1/tasks/{task['id']}", headers=student).json()["status"] == "created"


def test_bad_bodies_are_422_naming_the_field(client, student, topic):
    r = client.post(
        "/v1/tasks", json={"topic_id": topic["id"], "difficulty": "extreme"}, headers=student
    )
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "difficulty"]
    assert "difficulty" in r.json()["message"]

    r = client.post("/v1/tasks", json={"difficulty": "easy"}, headers=student)
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "topic_id"]
    assert r.json()["detail"][0]["type"] == "missing"

    r = client.post(
        "/v1/tasks",
        content=b'{"topic_id": "' + topic["id"].encode() + b'", "difficulty": ',
        headers={**student, "Content-Type": "application/json"},
    )
    assert r.status_code == 422
    assert r.json()["detail"][0]["type"] == "json_invalid"

    task = _create(client, student, topic)
    r = client.post(
        f"/v1/tasks/{task['id']}/complete", json={"actual_time_seconds": 5}, headers=student
    )
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "is_correct"]
    r = client.get("/v1/tasks", params={"difficulty": "impossible"}, headers=student)
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["query", "difficulty"]
    assert client.get("/v1/tasks/not-a-uuid", headers=student).status_code == 422
    assert client.get("/v1/tasks", params={"limit": 0}, headers=student).status_code == 422


def test_unknown_topic_is_404(client, student):
    r = client.post(
        "/v1/tasks", json={"topic_id": str(uuid.uuid4()), "difficulty": "easy"}, headers=student
    )
    assert r.status_code == 404


def test_other_students_task_is_404(client, student, other_student, topic):
    task = _create(client, student, topic)
    tid = task["id"]
    assert client.get(f"/v1/tasks/{tid}", headers=other_student).status_code == 404
    assert client.post(f"/v1/tasks/{tid}/start", headers=other_student).status_code == 404
    r = client.post(
        f"/v1/tasks/{tid}/complete",
        json={"is_correct": True, "actual_time_seconds": 10},
        headers=other_student,
    )
    assert r.status_code == 404
    # Indistinguishable from a task that does not exist.
    missing = client.get(f"/v1/tasks/{uuid.uuid4()}", headers=other_student)
    assert missing.status_code == 404
    assert missing.json() == client.get(f"/v1/tasks/{tid}", headers=other_student).json()
    assert client.get("/v1/tasks", headers=other_student).json()["total"] == 0
    owner = client.get("/v1/auth/me", headers=student).json()["id"]
    r = client.get("/v1/tasks", params={"user_id": owner}, headers=other_student)
    assert r.status_code == 403
    # The task is untouched.
    assert client.get(f"/v1/tasks/{tid}", headers=student).json()["status"] == "created"


def test_admin_sees_everyones_tasks(client, admin, student, other_student, topic):
    a = _create(client, student, topic)
    _create(client, other_student, topic)
    assert client.get("/v1/tasks", headers=admin).json()["total"] == 2
    owner = client.get("/v1/auth/me", headers=student).json()["id"]
    page = client.get("/v1/tasks", params={"user_id": owner}, headers=admin).json()
    assert [t["id"] for t in page["items"]] == [a["id"]]
    assert client.get(f"/v1/tasks/{a['id']}", headers=admin).status_code == 200


def test_list_filters_and_pagination(client, student, admin, topic):
    s2 = client.post("/v1/subjects", json={"name": "Physics"}, headers=admin).json()
    waves = client.post(
        "/v1/topics", json={"subject_id": s2["id"], "name": "Waves"}, headers=admin
    ).json()
    ids = []
    for i, (tp, diff) in enumerate(
        [(topic, "easy"), (topic, "hard"), (waves, "easy"), (waves, "medium"), (topic, "easy")]
    ):
        t = _create(client, student, tp, diff)
        ids.append(t["id"])
        if i % 2 == 0:
            client.post(
                f"/v1/tasks/{t['id']}/complete",
                json={"is_correct": True, "actual_time_seconds": 30},
                headers=student,
            )

    def listing(**params):
        return client.get("/v1/tasks", params=params, headers=student).json()

    assert listing()["total"] == 5
    assert listing(topic_id=topic["id"])["total"] == 3
    assert listing(difficulty="easy")["total"] == 3
    assert listing(completed=True)["total"] == 3
    assert listing(completed=False)["total"] == 2
    assert listing(topic_id=topic["id"], difficulty="easy", completed=True)["total"] == 2
    first = listing(limit=2, offset=0)
    second = listing(limit=2, offset=2)
    third = listing(limit=2, offset=4)
    assert first["total"] == 5 and len(first["items"]) == 2 and len(third["items"]) == 1
    seen = [t["id"] for page in (first, second, third) for t in page["items"]]
    assert sorted(seen) == sorted(ids)
    assert seen[0] == ids[-1]  # newest first


def test_completion_counts_for_training(client, student, topic, context):
    for _ in range(3):
        t = _create(client, student, topic)
        client.post(
            f"/v1/tasks/{t['id']}/complete",
            json={"is_correct": True, "actual_time_seconds": 42},
            headers=student,
        )
    with context.sessions() as session:
        counter = session.scalar(select(TrainingCounter).where(TrainingCounter.name == "training"))
        assert (counter.count, counter.total) == (3, 3)


def test_a_completion_keeps_the_start_time_or_sets_it_from_the_time_spent(client, student, topic):
    started = _create(client, student, topic)
    r = client.post(f"/v1/tasks/{started['id']}/start", headers=student)
    assert r.status_code == 200, r.text
    start = datetime.fromisoformat(r.json()["started_at"])
    body = {"is_correct": True, "actual_time_seconds": 7200}
    done = client.post(f"/v1/tasks/{started['id']}/complete", json=body, headers=student).json()
    # Started an instant ago: the start is kept, not moved back by the two hours reported.
    assert datetime.fromisoformat(done["started_at"]) == start

    unstarted = _create(client, student, topic)
    done = client.post(
        f"/v1/tasks/{unstarted['id']}/complete",
        json={"is_correct": False, "actual_time_seconds": 90},
        headers=student,
    ).json()
    spent = datetime.fromisoformat(done["completed_at"]) - datetime.fromisoformat(
        done["started_at"]
    )
    assert spent.total_seconds() == pytest.approx(90)


def test_an_admin_may_complete_a_students_task_and_a_second_try_is_409(
    client, student, admin, topic
):
    task = _create(client, student, topic)
    body = {"is_correct": True, "actual_time_seconds": 45}
    r = client.post(f"/v1/tasks/{task['id']}/complete", json=body, headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["is_correct"] is True and r.json()["actual_time_seconds"] == 45
    r = client.post(f"/v1/tasks/{task['id']}/complete", json=body, headers=admin)
    assert r.status_code == 409
    assert "already completed" in r.json()["detail"]
    r = client.post(f"/v1/tasks/{uuid.uuid4()}/complete", json=body, headers=admin)
    assert r.status_code == 404


@pytest.mark.parametrize("limit", [1, 0])
def test_the_practice_lane_bounds_the_task_requests_worked_on_at_once(
    client, student, topic, monkeypatch, limit
):
    """``Settings.practice_concurrency``: with a lane of 1, a second and a third task
    request wait while the first is being worked on; with none (0) all three run at once."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import anyio

    from smartstudy.api import deps

    client.app.state.practice_lane = anyio.Semaphore(limit) if limit else None
    real = deps.authenticate
    inside, most = [0], [0]
    lock, release = threading.Lock(), threading.Event()
    one_in, all_in = threading.Event(), threading.Event()

    def authenticate(*args, **kwargs):
        # The request's first step in its thread, before any statement (on SQLite the
        # first statement takes the write lock, which would serialise them by itself).
        with lock:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
            one_in.set()
            if inside[0] == 3:
                all_in.set()
        try:
            release.wait(timeout=30)
            return real(*args, **kwargs)
        finally:
            with lock:
                inside[0] -= 1

    monkeypatch.setattr(deps, "authenticate", authenticate)
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = [pool.submit(_create, client, student, topic) for _ in range(3)]
        if limit:
            # The two others are queued in the lane: they never get in while one is inside.
            # (Wait for the first to be inside: on a busy machine that can take over a second.)
            assert one_in.wait(timeout=30)
            assert not all_in.wait(timeout=1.0)
            assert most[0] == 1
        else:
            assert all_in.wait(timeout=30)
        release.set()
        created = [f.result(timeout=60) for f in futures]
    assert len({t["id"] for t in created}) == 3
    assert most[0] == (1 if limit else 3)
