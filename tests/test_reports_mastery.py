"""Direct tests of ``services.reports.mastery``: the catalogue overview, a concept's detail
(the prior from ``services.mastery.active_params``), the latest quizzes and how much a quiz
moved each concept's mastery."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from smartstudy.models.bkt.core import DEFAULT_PARAMS
from smartstudy.services import accounts, catalogue, mastery
from smartstudy.services.context import AppContext
from smartstudy.services.errors import NotFoundError
from smartstudy.services.reports import mastery as report
from smartstudy.store.db import session_scope
from smartstudy.store.orm import (
    BKTSkillParams,
    BKTUserSkillState,
    MasterySnapshot,
    PracticeTask,
    Question,
    SessionAnswer,
    SessionQuestion,
    StudySession,
)


def _at(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, 20, hour, minute, tzinfo=UTC)


def _params(session, concept_id: uuid.UUID, l0: float, *, active: bool, version: int) -> None:
    session.add(
        BKTSkillParams(
            concept_id=concept_id,
            algo_version_id=mastery.algo_version(session).id,
            version=version,
            l0=l0,
            t=0.2,
            s=0.1,
            g=0.2,
            is_active=active,
        )
    )


def _snapshot(session, user_id, concept_id, p: float, at: datetime) -> None:
    session.add(
        MasterySnapshot(
            user_id=user_id, concept_id=concept_id, p_mastery=p, n_attempts=1, created_at=at
        )
    )


@pytest.fixture
def world(context: AppContext) -> dict[str, uuid.UUID]:
    """Two subjects; Algebra has concepts X (fitted, l0 0.3 active, 0.5 inactive), Y and Z
    (default parameters); the student has a state and snapshots of X and tasks in Algebra."""
    with session_scope(context.sessions) as session:
        me = accounts.create_user(session, "mastery@example.com", "correct horse 1")
        other = accounts.create_user(session, "other@example.com", "correct horse 1")
        algebra = catalogue.ensure_topic(session, "Mathematics", "Algebra")
        catalogue.ensure_topic(session, "Biology", "Cells")
        session.flush()
        ids = {"me": me.id, "other": other.id, "algebra": algebra.id}
        for name in ("X", "Y", "Z"):
            ids[name] = catalogue.create_concept(session, algebra.id, name).id
        for _ in range(3):
            session.add(
                Question(concept_id=ids["X"], prompt="?", options=["a", "b"], correct_option=0)
            )
        session.add(Question(concept_id=ids["Y"], prompt="?", options=["a", "b"], correct_option=1))
        _params(session, ids["X"], 0.3, active=True, version=2)
        _params(session, ids["X"], 0.5, active=False, version=1)
        session.add(
            BKTUserSkillState(user_id=me.id, concept_id=ids["X"], p_mastery=0.65, n_attempts=4)
        )
        session.add(
            BKTUserSkillState(user_id=other.id, concept_id=ids["Y"], p_mastery=0.99, n_attempts=9)
        )
        _snapshot(session, me.id, ids["X"], 0.4, _at(9))
        _snapshot(session, me.id, ids["X"], 0.65, _at(8))
        _snapshot(session, other.id, ids["X"], 0.9, _at(7))
        for correct in (True, True, False):
            session.add(
                PracticeTask(
                    user_id=me.id,
                    topic_id=algebra.id,
                    difficulty="easy",
                    completed_at=_at(6),
                    is_correct=correct,
                    actual_time_seconds=30.0,
                )
            )
        session.add(PracticeTask(user_id=me.id, topic_id=algebra.id, difficulty="easy"))
        return ids


def test_the_catalogue_overview_counts_per_subject_topic_and_concept(context, world):
    with session_scope(context.sessions) as session:
        overview = report.catalogue_overview(session, world["me"])
        subjects = [s.subject.name for s in overview]
        maths = overview[1].topics[0]
        concepts = {
            c.concept.name: (c.n_questions, c.p_mastery, c.n_attempts) for c in maths.concepts
        }
        cells = overview[0].topics[0]
    assert subjects == ["Biology", "Mathematics"]
    assert (maths.n_tasks, maths.n_correct, maths.n_questions) == (3, 2, 4)
    # The other student's mastery of Y is not mine.
    assert concepts == {"X": (3, 0.65, 4), "Y": (1, None, 0), "Z": (0, None, 0)}
    assert (cells.n_tasks, cells.concepts) == (0, [])


def test_a_concept_s_detail_uses_the_active_parameters(context, world):
    with session_scope(context.sessions) as session:
        x = report.concept_detail(session, world["me"], world["X"])
        history = [(s.p_mastery, s.created_at) for s in x.history]
        assert (x.concept.name, x.concept.topic.subject.name) == ("X", "Mathematics")
        assert x.params is not None and x.params.version == 2
        y = report.concept_detail(session, world["me"], world["Y"])
    assert (x.prior, x.p_mastery, x.n_attempts, x.n_questions) == (0.3, 0.65, 4, 3)
    assert history == [(0.65, _at(8)), (0.4, _at(9))]  # oldest first, only mine
    # No fitted parameters and no attempt yet: the default prior is the mastery shown.
    assert (y.prior, y.p_mastery, y.n_attempts, y.params, y.history) == (
        DEFAULT_PARAMS.l0,
        DEFAULT_PARAMS.l0,
        0,
        None,
        [],
    )
    with session_scope(context.sessions) as session, pytest.raises(NotFoundError):
        report.concept_detail(session, world["me"], uuid.uuid4())


def test_mastery_items_are_the_user_s_states(context, world):
    with session_scope(context.sessions) as session:
        items = report.mastery_items(session, world["me"])
    assert [(m.concept, m.topic, m.p_mastery, m.n_attempts) for m in items] == [
        ("X", "Algebra", 0.65, 4)
    ]


def _quiz(session, user_id, topic_id, answers, *, created, submitted) -> StudySession:
    """A quiz with one question per (concept id, correct or None for unanswered)."""
    quiz = StudySession(
        user_id=user_id,
        topic_id=topic_id,
        status="submitted" if submitted else "open",
        created_at=created,
        submitted_at=submitted,
    )
    session.add(quiz)
    session.flush()
    for position, (concept_id, correct) in enumerate(answers):
        q = SessionQuestion(
            session_id=quiz.id, position=position, snapshot_json={"concept_id": str(concept_id)}
        )
        session.add(q)
        session.flush()
        if correct is not None:
            session.add(
                SessionAnswer(session_question_id=q.id, chosen_option=0, is_correct=correct)
            )
    session.flush()
    return quiz


def test_a_quiz_s_mastery_changes_before_and_after(context, world):
    me, x, y, z = world["me"], world["X"], world["Y"], world["Z"]
    with session_scope(context.sessions) as session:
        _params(session, y, 0.25, active=True, version=1)
        answers = [(x, True), (x, False), (x, None), (y, True), (z, False)]
        quiz = _quiz(session, me, world["algebra"], answers, created=_at(10), submitted=_at(10, 10))
        _snapshot(session, me, x, 0.6, _at(10, 5))  # taken by the quiz
        _snapshot(session, me, y, 0.5, _at(10, 6))
        _snapshot(session, me, x, 0.95, _at(11))  # after the quiz: not its own
        quiz_id = quiz.id
    with session_scope(context.sessions) as session:
        quiz = session.get(StudySession, quiz_id)
        changes = report.quiz_mastery_changes(session, quiz)
    got = [(c.concept, c.before, c.after, c.n_answers, c.n_correct) for c in changes]
    assert got == [
        ("X", 0.4, 0.6, 2, 1),  # before: the 09:00 snapshot (the latest before the quiz)
        ("Y", 0.25, 0.5, 1, 1),  # before: Y's active prior
        ("Z", DEFAULT_PARAMS.l0, DEFAULT_PARAMS.l0, 1, 0),  # no snapshot, no fit: the default
    ]


def test_an_open_quiz_has_no_changes_and_quizzes_are_listed_newest_first(context, world):
    me = world["me"]
    with session_scope(context.sessions) as session:
        _quiz(session, me, world["algebra"], [(world["X"], True)], created=_at(12), submitted=None)
        _quiz(session, me, None, [(world["Y"], True)], created=_at(13), submitted=_at(13, 5))
        _quiz(session, world["other"], world["algebra"], [], created=_at(14), submitted=None)
    with session_scope(context.sessions) as session:
        quizzes = report.recent_quizzes(session, me)
        assert [q.created_at for q in quizzes] == [_at(13), _at(12)]
        assert report.recent_quizzes(session, me, limit=1)[0].created_at == _at(13)
        assert report.quiz_mastery_changes(session, quizzes[1]) == []
        assert report.quiz_topic_names(session, quizzes) == {world["algebra"]: "Algebra"}
        assert report.quiz_topic_names(session, quizzes[:1]) == {}
