"""Catalogue over HTTP: anyone signed in reads, admins create and rename."""

from __future__ import annotations

import uuid


def test_admin_creates_and_renames(client, admin, student):
    s = client.post("/v1/subjects", json={"name": "  Physics  "}, headers=admin)
    assert s.status_code == 201
    assert s.json()["name"] == "Physics"
    t = client.post(
        "/v1/topics", json={"subject_id": s.json()["id"], "name": "Waves"}, headers=admin
    )
    assert t.status_code == 201
    c = client.post(
        "/v1/concepts", json={"topic_id": t.json()["id"], "name": "Doppler"}, headers=admin
    )
    assert c.status_code == 201
    r = client.patch(
        f"/v1/topics/{t.json()['id']}", json={"name": "Waves and optics"}, headers=admin
    )
    assert r.status_code == 200 and r.json()["name"] == "Waves and optics"
    r = client.patch(f"/v1/subjects/{s.json()['id']}", json={"name": "Physics HL"}, headers=admin)
    assert r.status_code == 200
    r = client.patch(
        f"/v1/concepts/{c.json()['id']}", json={"name": "Doppler effect"}, headers=admin
    )
    assert r.status_code == 200

    assert [x["name"] for x in client.get("/v1/subjects", headers=student).json()] == ["Physics HL"]
    topics = client.get("/v1/topics", params={"subject_id": s.json()["id"]}, headers=student)
    assert [x["name"] for x in topics.json()] == ["Waves and optics"]
    concepts = client.get("/v1/concepts", params={"topic_id": t.json()["id"]}, headers=student)
    assert [x["name"] for x in concepts.json()] == ["Doppler effect"]


def test_students_cannot_change_the_catalogue(client, student, topic):
    assert client.post("/v1/subjects", json={"name": "Art"}, headers=student).status_code == 403
    r = client.patch(f"/v1/topics/{topic['id']}", json={"name": "Mine"}, headers=student)
    assert r.status_code == 403
    r = client.post(
        "/v1/topics", json={"subject_id": topic["subject_id"], "name": "X"}, headers=student
    )
    assert r.status_code == 403


def test_duplicates_conflict_and_unknown_ids_404(client, admin, topic):
    assert (
        client.post("/v1/subjects", json={"name": "Mathematics"}, headers=admin).status_code == 409
    )
    r = client.post(
        "/v1/topics", json={"subject_id": topic["subject_id"], "name": "Calculus"}, headers=admin
    )
    assert r.status_code == 409
    r = client.post(
        "/v1/topics", json={"subject_id": str(uuid.uuid4()), "name": "X"}, headers=admin
    )
    assert r.status_code == 404
    r = client.get("/v1/topics", params={"subject_id": str(uuid.uuid4())}, headers=admin)
    assert r.status_code == 404


def test_blank_name_is_422(client, admin):
    r = client.post("/v1/subjects", json={"name": "   "}, headers=admin)
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"][-1] == "name"
    r = client.post("/v1/subjects", json={}, headers=admin)
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "name"]
