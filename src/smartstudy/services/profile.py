"""A user's own account: profile, and deleting the account with its data.

Deletion removes, in the caller's one transaction, everything that belongs to the user: quiz
answers, quiz questions and sessions, mastery state and snapshots, practice tasks, web
sessions, and the account itself; fitting runs they started keep their record without the
link. Model versions already trained on their tasks are aggregates and stay until the next
training, which no longer sees those tasks.
"""

from __future__ import annotations

import uuid

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from smartstudy.services import rules
from smartstudy.services.accounts import get_user_by_email, normalise_email
from smartstudy.services.errors import ConflictError, InvalidInputError
from smartstudy.store.orm import (
    AlgoRun,
    AuthSession,
    BKTUserSkillState,
    Exam,
    MasterySnapshot,
    PracticeTask,
    SessionAnswer,
    SessionQuestion,
    StudySession,
    User,
)


def update_profile(session: Session, user: User, display_name: str, email: str) -> User:
    """Change the display name and e-mail; the e-mail must be valid and not taken."""
    name = " ".join(display_name.split())
    if not name:
        raise InvalidInputError("display_name", "must not be empty")
    rules.check_text(name, "display_name", rules.MAX_DISPLAY_NAME)
    address = normalise_email(email)
    if not address:
        raise InvalidInputError("email", "must not be empty")
    try:
        validate_email(address, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidInputError("email", str(exc)) from exc
    other = get_user_by_email(session, address)
    if other is not None and other.id != user.id:
        raise ConflictError(f"an account with e-mail {address} already exists")
    user.display_name = name
    user.email = address
    session.flush()
    return user


def delete_account(session: Session, user: User) -> dict[str, int]:
    """Delete the user and all their data; the caller commits. Returns rows removed by kind.

    The last active admin cannot be deleted, so that the installation keeps an admin.
    """
    if user.role == "admin":
        admins = session.scalar(
            select(func.count())
            .select_from(User)
            .where(User.role == "admin", User.is_active.is_(True), User.id != user.id)
        )
        if not admins:
            raise ConflictError("the last admin account cannot be deleted")
    uid: uuid.UUID = user.id
    quiz_ids = select(StudySession.id).where(StudySession.user_id == uid)
    question_ids = select(SessionQuestion.id).where(SessionQuestion.session_id.in_(quiz_ids))
    removed: dict[str, int] = {}
    # Children first, so nothing depends on ON DELETE CASCADE being enforced.
    answers = SessionAnswer.session_question_id.in_(question_ids)
    steps = (
        ("quiz_answers", delete(SessionAnswer).where(answers)),
        ("quiz_questions", delete(SessionQuestion).where(SessionQuestion.session_id.in_(quiz_ids))),
        ("quiz_sessions", delete(StudySession).where(StudySession.user_id == uid)),
        ("mastery_snapshots", delete(MasterySnapshot).where(MasterySnapshot.user_id == uid)),
        ("mastery_states", delete(BKTUserSkillState).where(BKTUserSkillState.user_id == uid)),
        ("tasks", delete(PracticeTask).where(PracticeTask.user_id == uid)),
        ("exams", delete(Exam).where(Exam.user_id == uid)),
        ("web_sessions", delete(AuthSession).where(AuthSession.user_id == uid)),
    )
    for name, stmt in steps:
        removed[name] = session.execute(stmt.execution_options(synchronize_session=False)).rowcount
    session.execute(update(AlgoRun).where(AlgoRun.requested_by == uid).values(requested_by=None))
    session.expunge(user)
    removed["users"] = session.execute(delete(User).where(User.id == uid)).rowcount
    session.flush()
    return removed
