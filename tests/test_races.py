"""Concurrent requests through the HTTP API: exactly-once effects, 409 for the losers, no 500.

Each test fires requests from ten threads at once (a barrier lines them up) at a state where
the row they create or change does not exist yet or is about to change: the first
registration of an e-mail, the first BKT update of a (user, concept) pair, the first answer
to a quiz question, the submission of a quiz (alone, and while its answers are changed), and
the BKT recompute of one concept. On PostgreSQL these raced (unique violations answered 500,
counts were lost or doubled); on SQLite BEGIN IMMEDIATE serialises writers, so there the
tests check that the fixes keep the same results."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import func, select

from smartstudy.models.bkt.core import DEFAULT_PARAMS, update_mastery
from smartstudy.store.orm import (
    AlgoVersion,
    BKTSkillParams,
    MasterySnapshot,
    SessionAnswer,
    StudySession,
    User,
)

from .conftest import register

THREADS = 10


def _all_at_once(call: Callable[[int], httpx.Response]) -> list[httpx.Response]:
    """``call(i)`` for i in 0..THREADS-1, each in its own thread, released together."""
    barrier = threading.Barrier(THREADS)

    def run(i: int) -> httpx.Response:
        barrier.wait(timeout=30)
        return call(i)

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        return list(pool.map(run, range(THREADS)))


def _codes(responses: list[httpx.Response]) -> Counter:
    return Counter(r.status_code for r in responses)


@pytest.fixture
def bank(client, admin, topic) -> dict:
    """Six questions over two concepts of the topic (right answer: option 1)."""
    for name in ("Limits", "Derivatives"):
        c = client.post("/v1/concepts", json={"topic_id": topic["id"], "name": name}, headers=admin)
        assert c.status_code == 201, c.text
        for i in range(3):
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
    return topic


def _open_quiz(client, headers: dict, bank: dict) -> dict:
    """A new open quiz of all six questions of the bank."""
    s = client.post(
        "/v1/sessions", json={"topic_id": bank["id"], "n_questions": 6}, headers=headers
    )
    assert s.status_code == 201, s.text
    return s.json()


def _answer(client, headers: dict, quiz: dict, question: dict, option: int) -> httpx.Response:
    return client.post(
        f"/v1/sessions/{quiz['id']}/answers",
        json={"session_question_id": question["id"], "chosen_option": option},
        headers=headers,
    )


def test_one_email_registered_from_ten_threads_gives_one_account(client, context):
    responses = _all_at_once(
        lambda _i: client.post(
            "/v1/auth/register", json={"email": "race@example.com", "password": "correct horse 1"}
        )
    )
    assert _codes(responses) == {201: 1, 409: THREADS - 1}, [r.text for r in responses]
    loser = next(r for r in responses if r.status_code == 409)
    assert "race@example.com already exists" in loser.json()["detail"]
    with context.sessions() as session:
        n = session.scalar(select(func.count()).where(User.email == "race@example.com"))
    assert n == 1


def test_first_bkt_updates_of_a_concept_from_ten_threads_all_count(
    client, context, admin, topic, student
):
    c = client.post("/v1/concepts", json={"topic_id": topic["id"], "name": "Limits"}, headers=admin)
    assert c.status_code == 201, c.text
    body = {"concept_id": c.json()["id"], "correct": True, "snapshot_mastery": True}
    responses = _all_at_once(
        lambda _i: client.post("/v1/learning/bkt/update", json=body, headers=student)
    )
    assert _codes(responses) == {200: THREADS}, [r.text for r in responses]
    # Each request saw the one before it: the counts it answered are 1..10, none shared.
    assert sorted(r.json()["n_attempts"] for r in responses) == list(range(1, THREADS + 1))
    p = DEFAULT_PARAMS.l0
    for _ in range(THREADS):
        p = update_mastery(p, True, DEFAULT_PARAMS)
    (state,) = client.get("/v1/learning/bkt/mastery", headers=student).json()
    assert state["n_attempts"] == THREADS
    assert state["p_mastery"] == pytest.approx(p)
    with context.sessions() as session:
        assert session.scalar(select(func.count()).select_from(MasterySnapshot)) == THREADS
        versions = session.scalars(select(AlgoVersion)).all()
    assert [(v.key, v.version) for v in versions] == [("bkt", "v1")]


def test_first_answer_to_a_question_from_ten_threads_keeps_one_answer(
    client, context, student, bank
):
    quiz = _open_quiz(client, student, bank)
    # One race per question: the first answer to each is sent from ten threads at once.
    for question in quiz["questions"]:
        responses = _all_at_once(lambda i, q=question: _answer(client, student, quiz, q, i % 3))
        # Answers may change until submission: every request is accepted, one answer stays.
        assert _codes(responses) == {200: THREADS}, [r.text for r in responses]
    with context.sessions() as session:
        stored = session.scalars(select(SessionAnswer)).all()
    assert sorted(str(a.session_question_id) for a in stored) == sorted(
        q["id"] for q in quiz["questions"]
    )
    got = client.get(f"/v1/sessions/{quiz['id']}", headers=student).json()
    chosen = {str(a.session_question_id): a.chosen_option for a in stored}
    assert all(q["chosen_option"] == chosen[q["id"]] for q in got["questions"])


def test_one_quiz_submitted_from_ten_threads_counts_once(client, context, student, bank):
    rounds = 3  # three quizzes, each submitted from ten threads at once
    for _round in range(rounds):
        quiz = _open_quiz(client, student, bank)
        for k, q in enumerate(quiz["questions"][:5]):  # the sixth stays unanswered
            assert _answer(client, student, quiz, q, 1 if k % 2 == 0 else 0).status_code == 200
        responses = _all_at_once(
            lambda _i, quiz=quiz: client.post(f"/v1/sessions/{quiz['id']}/submit", headers=student)
        )
        assert _codes(responses) == {200: 1, 409: THREADS - 1}, [r.text for r in responses]
        winner = next(r.json() for r in responses if r.status_code == 200)
        assert (winner["n_answered"], winner["n_correct"], winner["warnings"]) == (5, 3, [])
        losers = [r.json()["detail"] for r in responses if r.status_code == 409]
        assert set(losers) == {"session is already submitted"}
        with context.sessions() as session:
            stored = session.get(StudySession, uuid.UUID(quiz["id"]))
            assert (stored.status, stored.n_correct) == ("submitted", 3)
    # Mastery counted each answered question once: five per quiz.
    states = client.get("/v1/learning/bkt/mastery", headers=student).json()
    assert sum(s["n_attempts"] for s in states) == 5 * rounds
    with context.sessions() as session:
        assert session.scalar(select(func.count()).select_from(MasterySnapshot)) == 5 * rounds


def test_answers_racing_the_submission_never_change_a_submitted_quiz(
    client, context, student, bank
):
    """One thread submits while nine change answers: each change either lands before the
    submission (and is scored) or is refused with 409; the score matches the stored answers."""
    submitter = THREADS // 2
    for _round in range(5):
        quiz = _open_quiz(client, student, bank)
        questions = quiz["questions"]
        for q in questions:
            assert _answer(client, student, quiz, q, 0).status_code == 200

        def act(i: int, quiz: dict = quiz, questions: list = questions) -> httpx.Response:
            if i == submitter:
                return client.post(f"/v1/sessions/{quiz['id']}/submit", headers=student)
            return _answer(client, student, quiz, questions[i % len(questions)], 1)

        responses = _all_at_once(act)
        assert responses[submitter].status_code == 200, responses[submitter].text
        assert set(_codes(responses)) <= {200, 409}, [r.text for r in responses]
        ids = [uuid.UUID(q["id"]) for q in questions]
        with context.sessions() as session:
            answers = session.scalars(
                select(SessionAnswer).where(SessionAnswer.session_question_id.in_(ids))
            ).all()
        assert len(answers) == len(questions)
        assert sum(a.is_correct for a in answers) == responses[submitter].json()["n_correct"]


def test_one_concept_recomputed_from_ten_threads_numbers_each_version_once(
    client, context, admin, bank
):
    for u in range(3):
        headers = register(client, f"learner{u}@example.com")
        quiz = _open_quiz(client, headers, bank)
        for k, q in enumerate(quiz["questions"]):
            assert _answer(client, headers, quiz, q, 1 if (k + u) % 3 else 0).status_code == 200
        assert client.post(f"/v1/sessions/{quiz['id']}/submit", headers=headers).status_code == 200
    concept = client.get("/v1/concepts", params={"topic_id": bank["id"]}, headers=admin).json()[0]
    body = {
        "concept_ids": [concept["id"]],
        "min_attempts": 1,
        "min_users": 1,
        "n_restarts": 1,
        "activate_new_params": True,
    }
    responses = _all_at_once(
        lambda _i: client.post("/v1/learning/bkt/recompute", json=body, headers=admin)
    )
    assert _codes(responses) == {200: THREADS}, [r.text for r in responses]
    assert len({r.json()["run_id"] for r in responses}) == THREADS
    with context.sessions() as session:
        rows = session.scalars(
            select(BKTSkillParams).where(BKTSkillParams.concept_id == uuid.UUID(concept["id"]))
        ).all()
    # Each fit waited for the one before: versions 1..10, each once, at most one active.
    assert sorted(r.version for r in rows) == list(range(1, THREADS + 1))
    assert sum(r.is_active for r in rows) <= 1


def test_activations_of_one_family_from_ten_threads_leave_one_active(client, admin, context):
    from smartstudy.models.baseline import Baseline
    from smartstudy.services.predictor import PredictionService
    from smartstudy.store.db import session_scope
    from smartstudy.store.orm import ModelVersion

    context.predictor = PredictionService(chain=("baseline",), factories={"baseline": Baseline})
    with session_scope(context.sessions) as session:
        ids = [context.predictor.train(session, "baseline").id for _ in range(4)]

    responses = _all_at_once(
        lambda i: client.post(f"/v1/models/versions/{ids[i % len(ids)]}/activate", headers=admin)
    )
    assert _codes(responses) == Counter({200: THREADS}), [r.text for r in responses]
    with context.sessions() as session:
        active = session.scalars(
            select(ModelVersion.version).where(
                ModelVersion.model_name == "baseline", ModelVersion.is_active.is_(True)
            )
        ).all()
    assert len(active) == 1


def test_one_subject_created_from_ten_threads_gives_one_subject(client, admin, context):
    from smartstudy.store.orm import Subject

    responses = _all_at_once(
        lambda _i: client.post("/v1/subjects", json={"name": "Chemistry"}, headers=admin)
    )
    assert _codes(responses) == Counter({201: 1, 409: THREADS - 1}), [r.text for r in responses]
    with context.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Subject)) == 1


def test_one_task_completed_from_ten_threads_counts_once(client, student, topic, context):
    from smartstudy.services.tasks import TRAINING_COUNTER
    from smartstudy.store.orm import PracticeTask, TrainingCounter

    # No practice lane: all ten completions reach the database at once.
    client.app.state.practice_lane = None
    task = client.post(
        "/v1/tasks", json={"topic_id": topic["id"], "difficulty": "easy"}, headers=student
    ).json()
    bodies = [{"is_correct": i % 2 == 0, "actual_time_seconds": 10 + i} for i in range(THREADS)]
    responses = _all_at_once(
        lambda i: client.post(f"/v1/tasks/{task['id']}/complete", json=bodies[i], headers=student)
    )
    assert _codes(responses) == {200: 1, 409: THREADS - 1}, [r.text for r in responses]
    winner = bodies[next(i for i, r in enumerate(responses) if r.status_code == 200)]
    with context.sessions() as session:
        stored = session.get(PracticeTask, uuid.UUID(task["id"]))
        assert (stored.is_correct, stored.actual_time_seconds) == (
            winner["is_correct"],
            winner["actual_time_seconds"],
        )
        assert session.get(TrainingCounter, TRAINING_COUNTER).total == 1


def test_first_predictions_from_ten_threads_on_an_empty_database_all_answer(
    client, student, topic, context
):
    """No version exists yet: the first request to take the load lock fits the first version
    in its own transaction; the others must serve that model, not fit and store another
    version 1 and wait for the first one's commit while it waits for the lock (PostgreSQL
    deadlocked here)."""
    from smartstudy.store.orm import ModelVersion

    client.app.state.practice_lane = None
    responses = _all_at_once(
        lambda _i: client.post(
            "/v1/tasks", json={"topic_id": topic["id"], "difficulty": "easy"}, headers=student
        )
    )
    assert _codes(responses) == {201: THREADS}, [r.text for r in responses]
    with context.sessions() as session:
        versions = session.scalars(
            select(ModelVersion.version).where(ModelVersion.model_name == "baseline")
        ).all()
    assert versions == [1]
