"""BKT in the app: questions, quiz sessions feeding mastery, /v1/learning/bkt with roles."""

from __future__ import annotations

import logging
import math
import uuid

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from smartstudy.services import mastery
from smartstudy.store.orm import (
    AlgoRun,
    BKTSkillParams,
    MasterySnapshot,
    SessionQuestion,
    StudySession,
)
from tests.conftest import register


@pytest.fixture
def concepts(client, admin, topic):
    """Two concepts of Calculus with four questions each (right answer: option 1)."""
    out = []
    for name in ("Limits", "Derivatives"):
        c = client.post("/v1/concepts", json={"topic_id": topic["id"], "name": name}, headers=admin)
        assert c.status_code == 201, c.text
        for i in range(4):
            q = client.post(
                "/v1/questions",
                json={
                    "concept_id": c.json()["id"],
                    "prompt": f"{name} question {i}",
                    "options": ["wrong", "right", "also wrong"],
                    "correct_option": 1,
                },
                headers=admin,
            )
            assert q.status_code == 201, q.text
        out.append(c.json())
    return out


def _quiz(client, headers, topic, answers=None, n=8):
    s = client.post(
        "/v1/sessions", json={"topic_id": topic["id"], "n_questions": n}, headers=headers
    )
    assert s.status_code == 201, s.text
    body = s.json()
    for i, q in enumerate(body["questions"]):
        right = True if answers is None else answers[i % len(answers)]
        r = client.post(
            f"/v1/sessions/{body['id']}/answers",
            json={"session_question_id": q["id"], "chosen_option": 1 if right else 0},
            headers=headers,
        )
        assert r.status_code == 200, r.text
    return body


def test_students_do_not_see_answers_until_submitted(client, student, admin, topic, concepts):
    listed = client.get("/v1/questions", params={"topic_id": topic["id"]}, headers=student).json()
    assert len(listed) == 8 and all(q["correct_option"] is None for q in listed)
    assert client.get("/v1/questions", headers=admin).json()[0]["correct_option"] == 1
    quiz = _quiz(client, student, topic)
    got = client.get(f"/v1/sessions/{quiz['id']}", headers=student).json()
    assert all(q["correct_option"] is None and q["is_correct"] is None for q in got["questions"])
    done = client.post(f"/v1/sessions/{quiz['id']}/submit", headers=student).json()
    assert all(q["correct_option"] == 1 for q in done["session"]["questions"])


def test_submission_updates_mastery_per_concept(client, student, topic, concepts):
    quiz = _quiz(client, student, topic, answers=[True])
    r = client.post(f"/v1/sessions/{quiz['id']}/submit", headers=student)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["n_questions"], body["n_answered"], body["n_correct"]) == (8, 8, 8)
    assert body["warnings"] == []
    assert len(body["mastery"]) == 8
    mastery_rows = client.get("/v1/learning/bkt/mastery", headers=student).json()
    assert {m["concept_id"] for m in mastery_rows} == {c["id"] for c in concepts}
    for m in mastery_rows:
        assert m["n_attempts"] == 4
        assert m["p_mastery"] > 0.9  # four right answers from the default prior of 0.1
    one = client.get(
        "/v1/learning/bkt/mastery", params={"concept_id": concepts[0]["id"]}, headers=student
    ).json()
    assert [m["concept_id"] for m in one] == [concepts[0]["id"]]
    # Submitting twice, or answering afterwards, is refused.
    assert client.post(f"/v1/sessions/{quiz['id']}/submit", headers=student).status_code == 409
    q = quiz["questions"][0]
    r = client.post(
        f"/v1/sessions/{quiz['id']}/answers",
        json={"session_question_id": q["id"], "chosen_option": 0},
        headers=student,
    )
    assert r.status_code == 409


def test_a_bkt_failure_never_fails_the_submission(
    client, student, topic, concepts, context, monkeypatch, caplog
):
    quiz = _quiz(client, student, topic)

    def broken(*args, **kwargs):
        raise RuntimeError("injected BKT failure")

    monkeypatch.setattr(mastery, "apply_attempt", broken)
    with caplog.at_level(logging.WARNING):
        r = client.post(f"/v1/sessions/{quiz['id']}/submit", headers=student)
    assert r.status_code == 200, r.text
    assert r.json()["session"]["status"] == "submitted"
    assert len(r.json()["warnings"]) == 8
    assert "injected BKT failure" in caplog.text
    with context.sessions() as session:
        stored = session.get(StudySession, uuid.UUID(quiz["id"]))
        assert stored.status == "submitted" and stored.n_correct == 8
    assert client.get("/v1/learning/bkt/mastery", headers=student).json() == []


def test_a_question_without_concept_is_skipped_with_a_warning(
    client, student, topic, concepts, context, caplog
):
    quiz = _quiz(client, student, topic, n=2)
    with context.sessions() as session:
        first = session.get(SessionQuestion, uuid.UUID(quiz["questions"][0]["id"]))
        first.snapshot_json = {k: v for k, v in first.snapshot_json.items() if k != "concept_id"}
        session.commit()
    with caplog.at_level(logging.WARNING):
        body = client.post(f"/v1/sessions/{quiz['id']}/submit", headers=student).json()
    assert body["warnings"] == ["question 1 has no concept; mastery not updated"]
    assert len(body["mastery"]) == 1
    assert "no concept" in caplog.text


def test_roles(client, student, other_student, admin, concepts):
    concept = concepts[0]["id"]
    other_id = client.get("/v1/auth/me", headers=other_student).json()["id"]
    assert client.post("/v1/learning/bkt/recompute", json={}, headers=student).status_code == 403
    r = client.get("/v1/learning/bkt/mastery", params={"user_id": other_id}, headers=student)
    assert r.status_code == 403
    r = client.post(
        "/v1/learning/bkt/update",
        json={"user_id": other_id, "concept_id": concept, "correct": True},
        headers=student,
    )
    assert r.status_code == 403
    # Their own: fine.
    r = client.post(
        "/v1/learning/bkt/update", json={"concept_id": concept, "correct": True}, headers=student
    )
    assert r.status_code == 200 and r.json()["n_attempts"] == 1
    # An admin may do both for anyone.
    r = client.post(
        "/v1/learning/bkt/update",
        json={
            "user_id": other_id,
            "concept_id": concept,
            "correct": False,
            "snapshot_mastery": True,
        },
        headers=admin,
    )
    assert r.status_code == 200
    assert r.json()["user_id"] == other_id
    # The default prior 0.1, a wrong answer, then learning (see the defaults test below).
    post = 0.01 / 0.73
    assert r.json()["p_mastery"] == pytest.approx(post + (1 - post) * 0.2)
    r = client.get("/v1/learning/bkt/mastery", params={"user_id": other_id}, headers=admin)
    assert r.status_code == 200 and len(r.json()) == 1
    assert client.post("/v1/learning/bkt/recompute", json={}, headers=admin).status_code == 200


def test_update_uses_the_seed_003_defaults(client, student, concepts):
    concept = concepts[0]["id"]
    r = client.post(
        "/v1/learning/bkt/update", json={"concept_id": concept, "correct": False}, headers=student
    ).json()
    # Defaults L0 0.1, T 0.2, S 0.1, G 0.2: posterior after a wrong answer is
    # 0.1*0.1 / (0.1*0.1 + 0.9*0.8) = 0.01/0.73; then learning: p + (1 - p) * 0.2.
    post = 0.01 / 0.73
    assert r["p_mastery"] == pytest.approx(post + (1 - post) * 0.2)
    assert r["params_id"] is None  # nothing fitted yet


def test_bad_bodies_name_the_field(client, student, admin, concepts):
    r = client.post("/v1/learning/bkt/update", json={"correct": True}, headers=student)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "concept_id"]
    r = client.post(
        "/v1/learning/bkt/update",
        json={"concept_id": concepts[0]["id"], "correct": "maybe"},
        headers=student,
    )
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "correct"]
    r = client.post("/v1/learning/bkt/recompute", json={"min_attempts": 0}, headers=admin)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "min_attempts"]
    r = client.post(
        "/v1/learning/bkt/recompute",
        json={"from_date": "2026-02-01T00:00:00Z", "to_date": "2026-01-01T00:00:00Z"},
        headers=admin,
    )
    assert r.status_code == 422 and "from_date" in r.json()["message"]
    r = client.post(
        "/v1/questions",
        json={
            "concept_id": concepts[0]["id"],
            "prompt": "?",
            "options": ["a", "b"],
            "correct_option": 5,
        },
        headers=admin,
    )
    assert r.status_code == 422 and "correct_option" in r.json()["message"]
    r = client.post("/v1/sessions", json={"n_questions": 0}, headers=student)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "n_questions"]


def test_other_students_session_is_404(client, student, other_student, topic, concepts):
    quiz = _quiz(client, student, topic, n=2)
    assert client.get(f"/v1/sessions/{quiz['id']}", headers=other_student).status_code == 404
    assert (
        client.post(f"/v1/sessions/{quiz['id']}/submit", headers=other_student).status_code == 404
    )


def test_recompute_fits_versions_and_activates(client, admin, topic, concepts, context):
    # Answers that follow BKT's story (learners who improve from their first quiz to their
    # second), so both concepts' fits are sound; coin flips can fit as degenerate.
    rng = np.random.default_rng(0)
    for k in range(6):
        headers = register(client, f"learner{k}@example.com")
        for rate in (0.3, 0.9):
            quiz = _quiz(client, headers, topic, answers=list(rng.random(8) < rate))
            r = client.post(f"/v1/sessions/{quiz['id']}/submit", headers=headers)
            assert r.status_code == 200, r.text
    r = client.post(
        "/v1/learning/bkt/recompute",
        json={"activate_new_params": True, "min_attempts": 10, "min_users": 3, "n_restarts": 2},
        headers=admin,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["algo"] == {"key": "bkt", "version": "v1"}
    # Both concepts have enough data: both fits must succeed, not merely be accounted for.
    assert body["summary"]["concepts_processed"] == 2
    assert body["summary"]["errors"] == {}
    assert body["summary"]["params_fitted"] == 2
    with context.sessions() as session:
        run = session.get(AlgoRun, uuid.UUID(body["run_id"]))
        assert run.status == "succeeded" and run.error is None
        assert run.duration_seconds is not None
        active = session.scalars(select(BKTSkillParams).where(BKTSkillParams.is_active)).all()
        assert {str(p.concept_id) for p in active} == {c["id"] for c in concepts}
        for p in active:
            assert p.is_valid and p.problems == [] and p.version == 1
            assert p.run_id == run.id and p.n_attempts >= 10 and p.n_users >= 3
            assert math.isfinite(p.metrics["log_likelihood"]) and p.metrics["log_likelihood"] < 0
            assert all(math.isfinite(p.metrics["cv"][m]) for m in ("rmse", "log_loss"))
    # A second recompute makes version 2 active and retires version 1.
    r = client.post(
        "/v1/learning/bkt/recompute",
        json={"activate_new_params": True, "n_restarts": 2},
        headers=admin,
    )
    assert r.status_code == 200, r.text
    assert r.json()["summary"]["params_fitted"] == 2
    with context.sessions() as session:
        rows = session.scalars(select(BKTSkillParams).order_by(BKTSkillParams.version)).all()
        assert {r.concept_id for r in rows if r.is_valid} == {p.concept_id for p in active}
        for concept in {r.concept_id for r in rows}:
            mine = [r for r in rows if r.concept_id == concept]
            assert [(r.version, r.is_active) for r in mine] == [(1, False), (2, True)]


def test_invalid_params_are_never_activated_and_one_active_per_concept(context, concepts):
    concept_id = uuid.UUID(concepts[0]["id"])
    with context.sessions() as session:
        version = mastery.algo_version(session)
        good = BKTSkillParams(
            concept_id=concept_id,
            algo_version_id=version.id,
            version=1,
            l0=0.2,
            t=0.1,
            s=0.1,
            g=0.2,
        )
        bad = BKTSkillParams(
            concept_id=concept_id,
            algo_version_id=version.id,
            version=2,
            l0=0.2,
            t=0.1,
            s=0.6,
            g=0.5,
            is_valid=False,
            problems=["S + G >= 1"],
        )
        session.add_all([good, bad])
        session.flush()
        mastery.activate(session, good)
        with pytest.raises(Exception, match="never activated"):
            mastery.activate(session, bad)
        assert good.is_active and not bad.is_active
        session.commit()
        # The database itself refuses a second active version.
        bad.is_valid = True
        bad.is_active = True
        with pytest.raises(IntegrityError):
            session.flush()
        session.rollback()


def test_snapshots_record_history(client, student, topic, concepts, context):
    for _ in range(2):
        quiz = _quiz(client, student, topic, n=8)
        client.post(f"/v1/sessions/{quiz['id']}/submit", headers=student)
    with context.sessions() as session:
        snaps = session.scalars(select(MasterySnapshot)).all()
    assert len(snaps) == 16
    assert {s.source for s in snaps} == {"session"}
