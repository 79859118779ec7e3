"""An unfinished task can be discarded through the API (issue 16); a completed one cannot,
and nobody else's task can be touched. The study page: tests/web/test_discard.py."""

from __future__ import annotations


def _topic(client, admin) -> str:
    s = client.post("/v1/subjects", json={"name": "Maths"}, headers=admin).json()
    t = client.post("/v1/topics", json={"subject_id": s["id"], "name": "Calculus"}, headers=admin)
    return t.json()["id"]


def test_discarding_through_the_api(client, admin, student, other_student):
    topic = _topic(client, admin)
    open_task = client.post(
        "/v1/tasks", json={"topic_id": topic, "difficulty": "easy"}, headers=student
    ).json()
    done = client.post(
        "/v1/tasks", json={"topic_id": topic, "difficulty": "hard"}, headers=student
    ).json()
    r = client.post(
        f"/v1/tasks/{done['id']}/complete",
        json={"is_correct": True, "actual_time_seconds": 90},
        headers=student,
    )
    assert r.status_code == 200
    # Another student's task is simply not found, and stays.
    assert client.delete(f"/v1/tasks/{open_task['id']}", headers=other_student).status_code == 404
    assert client.get(f"/v1/tasks/{open_task['id']}", headers=student).status_code == 200
    # A completed task is history: 409, kept.
    r = client.delete(f"/v1/tasks/{done['id']}", headers=student)
    assert r.status_code == 409 and "cannot be discarded" in r.text
    assert client.get(f"/v1/tasks/{done['id']}", headers=student).status_code == 200
    # The open one goes.
    assert client.delete(f"/v1/tasks/{open_task['id']}", headers=student).status_code == 204
    assert client.get(f"/v1/tasks/{open_task['id']}", headers=student).status_code == 404
    assert client.delete(f"/v1/tasks/{open_task['id']}", headers=student).status_code == 404
