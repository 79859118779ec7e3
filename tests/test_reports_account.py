"""Direct tests of ``services.reports.account`` (what account deletion would remove) and
``services.reports.admin`` (the newest model versions per family)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from smartstudy.services import accounts, catalogue
from smartstudy.services.context import AppContext
from smartstudy.services.reports.account import count_owned
from smartstudy.services.reports.admin import recent_versions
from smartstudy.store.db import session_scope
from smartstudy.store.orm import (
    BKTUserSkillState,
    Exam,
    MasterySnapshot,
    ModelVersion,
    PracticeTask,
    SessionQuestion,
    StudySession,
)


def test_the_owned_counts_are_the_user_s_rows_of_each_kind(context: AppContext):
    with session_scope(context.sessions) as session:
        me = accounts.create_user(session, "owner@example.com", "correct horse 1")
        other = accounts.create_user(session, "other@example.com", "correct horse 1")
        topic = catalogue.ensure_topic(session, "Mathematics", "Algebra")
        concept = catalogue.create_concept(session, topic.id, "Sets")
        session.flush()
        for user, n_tasks, n_questions in ((me, 3, 4), (other, 1, 1)):
            for _ in range(n_tasks):
                session.add(PracticeTask(user_id=user.id, topic_id=topic.id, difficulty="easy"))
            quiz = StudySession(user_id=user.id, topic_id=topic.id)
            session.add(quiz)
            session.flush()
            for position in range(n_questions):
                session.add(
                    SessionQuestion(session_id=quiz.id, position=position, snapshot_json={})
                )
            session.add(BKTUserSkillState(user_id=user.id, concept_id=concept.id, p_mastery=0.5))
            session.add(
                MasterySnapshot(user_id=user.id, concept_id=concept.id, p_mastery=0.5, n_attempts=1)
            )
        session.add(
            MasterySnapshot(user_id=me.id, concept_id=concept.id, p_mastery=0.6, n_attempts=2)
        )
        session.add(
            Exam(user_id=me.id, name="Finals", exam_date=date(2027, 6, 1), daily_minutes=30)
        )
        me_id, other_id = me.id, other.id
    with session_scope(context.sessions) as session:
        assert count_owned(session, me_id) == {
            "tasks": 3,
            "quiz_sessions": 1,
            "quiz_questions": 4,
            "mastery_states": 1,
            "mastery_snapshots": 2,
            "exams": 1,
        }
        assert count_owned(session, other_id) == {
            "tasks": 1,
            "quiz_sessions": 1,
            "quiz_questions": 1,
            "mastery_states": 1,
            "mastery_snapshots": 1,
            "exams": 0,
        }


def test_recent_versions_lists_the_newest_of_each_family_first(context: AppContext):
    start = datetime(2026, 11, 1, tzinfo=UTC)
    with session_scope(context.sessions) as session:
        for name, n in (("neural", 3), ("baseline", 1), ("experimental", 2)):
            for version in range(1, n + 1):
                session.add(
                    ModelVersion(
                        model_name=name,
                        version=version,
                        created_at=start + timedelta(days=version),
                        artifact=b"weights",
                    )
                )
    with session_scope(context.sessions) as session:
        shown, counts = recent_versions(session, ["neural", "lnirt", "baseline"], per_model=2)
        listed = {name: [v.version for v in rows] for name, rows in shown.items()}
    assert counts == {"neural": 3, "baseline": 1, "experimental": 2}
    # The chain's families first, in its order (lnirt has none yet), then any other family.
    assert list(listed) == ["neural", "lnirt", "baseline", "experimental"]
    assert listed == {"neural": [3, 2], "lnirt": [], "baseline": [1], "experimental": [2, 1]}
