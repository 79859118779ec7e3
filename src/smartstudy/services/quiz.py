"""Question bank and quiz sessions; submitting a session feeds BKT mastery.

Submission first scores and commits the session; only then is mastery updated, question by
question, in its own transaction. A BKT failure is logged as a warning and never undoes or
fails the submission; a question whose snapshot has no concept is skipped with a warning.
"""

from __future__ import annotations

import logging
import random
import uuid
from dataclasses import asdict, dataclass, field, replace

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from smartstudy.services import catalogue, mastery
from smartstudy.services.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
)
from smartstudy.store.orm import (
    DIFFICULTIES,
    Concept,
    Question,
    SessionAnswer,
    SessionQuestion,
    StudySession,
    User,
    utcnow,
)

log = logging.getLogger(__name__)

MAX_QUESTIONS = 50


@dataclass(frozen=True)
class QuestionFields:
    """A question's content: what ``checked_question`` checks, and what an edit replaces."""

    concept_id: uuid.UUID
    prompt: str
    options: list[str]
    correct_option: int
    difficulty: str = "medium"


def checked_question(session: Session, fields: QuestionFields) -> QuestionFields:
    """``fields`` trimmed; ``InvalidInputError`` names the first problem and
    ``NotFoundError`` an unknown concept."""
    catalogue.get_concept(session, fields.concept_id)
    prompt = fields.prompt.strip()
    if not prompt:
        raise InvalidInputError("prompt", "must not be empty")
    cleaned = [o.strip() for o in fields.options]
    if not 2 <= len(cleaned) <= 8:
        raise InvalidInputError("options", "give between 2 and 8 options")
    if any(not o for o in cleaned):
        raise InvalidInputError("options", "options must not be empty")
    if len(set(cleaned)) != len(cleaned):
        raise InvalidInputError("options", "options must differ from each other")
    if not 0 <= fields.correct_option < len(cleaned):
        raise InvalidInputError(
            "correct_option", f"must be the index of an option, 0 to {len(cleaned) - 1}"
        )
    if fields.difficulty not in DIFFICULTIES:
        raise InvalidInputError("difficulty", f"must be one of {', '.join(DIFFICULTIES)}")
    return replace(fields, prompt=prompt, options=cleaned)


def create_question(
    session: Session,
    concept_id: uuid.UUID,
    prompt: str,
    options: list[str],
    correct_option: int,
    difficulty: str = "medium",
) -> Question:
    content = QuestionFields(concept_id, prompt, options, correct_option, difficulty)
    question = Question(**asdict(checked_question(session, content)))
    session.add(question)
    session.flush()
    return question


def get_question(session: Session, question_id: uuid.UUID) -> Question:
    question = session.get(Question, question_id)
    if question is None:
        raise NotFoundError("question not found")
    return question


def replace_question(session: Session, question_id: uuid.UUID, fields: QuestionFields) -> Question:
    """Give a question new content. Quizzes already taken keep the question as it was asked
    (``SessionQuestion.snapshot_json``), so their scores and mastery do not change."""
    question = get_question(session, question_id)
    for name, value in asdict(checked_question(session, fields)).items():
        setattr(question, name, value)
    session.flush()
    return question


def delete_question(session: Session, question_id: uuid.UUID) -> Question:
    """Take a question out of the bank; quizzes already taken keep their copy of it."""
    question = get_question(session, question_id)
    session.delete(question)
    session.flush()
    return question


def list_questions(
    session: Session, *, topic_id: uuid.UUID | None = None, concept_id: uuid.UUID | None = None
) -> list[Question]:
    stmt = select(Question).join(Concept).order_by(Concept.name, Question.created_at)
    if topic_id is not None:
        catalogue.get_topic(session, topic_id)
        stmt = stmt.where(Concept.topic_id == topic_id)
    if concept_id is not None:
        catalogue.get_concept(session, concept_id)
        stmt = stmt.where(Question.concept_id == concept_id)
    return list(session.scalars(stmt))


def create_session(
    session: Session,
    user: User,
    *,
    topic_id: uuid.UUID | None = None,
    concept_ids: list[uuid.UUID] | None = None,
    n_questions: int = 5,
    seed: int | None = None,
) -> StudySession:
    """A new quiz of up to ``n_questions`` distinct questions from the chosen part of the bank."""
    if not 1 <= n_questions <= MAX_QUESTIONS:
        raise InvalidInputError("n_questions", f"must be between 1 and {MAX_QUESTIONS}")
    pool: list[Question] = []
    if concept_ids:
        for concept_id in dict.fromkeys(concept_ids):
            pool.extend(list_questions(session, concept_id=concept_id))
    else:
        pool = list_questions(session, topic_id=topic_id)
    if not pool:
        raise InvalidInputError("topic_id", "there are no questions for this choice yet")
    chosen = random.Random(seed).sample(pool, min(n_questions, len(pool)))
    quiz = StudySession(user_id=user.id, topic_id=topic_id)
    session.add(quiz)
    session.flush()
    for position, q in enumerate(chosen):
        session.add(
            SessionQuestion(
                session_id=quiz.id,
                question_id=q.id,
                position=position,
                snapshot_json={
                    "prompt": q.prompt,
                    "options": list(q.options),
                    "correct_option": q.correct_option,
                    "difficulty": q.difficulty,
                    "concept_id": str(q.concept_id),
                },
            )
        )
    session.flush()
    session.refresh(quiz)
    return quiz


def get_session(session: Session, actor: User, session_id: uuid.UUID) -> StudySession:
    quiz = session.scalar(
        select(StudySession)
        .options(selectinload(StudySession.questions).selectinload(SessionQuestion.answer))
        .where(StudySession.id == session_id)
    )
    if quiz is None or (actor.role != "admin" and quiz.user_id != actor.id):
        raise NotFoundError("session not found")
    return quiz


def _lock_open_session(session: Session, actor: User, session_id: uuid.UUID) -> StudySession:
    """The actor's own open session, its row locked until the transaction ends.

    Answering and submitting both go through this lock, so concurrent requests on one
    session run one after the other: a first answer is inserted once (the second request
    sees it and changes it), a session is submitted once, and no answer changes after the
    submission has read them. Questions and answers load after the lock is granted, so they
    include what the request before committed. On SQLite the lock is a no-op: BEGIN
    IMMEDIATE serialises writing transactions already.
    """
    quiz = session.scalar(
        select(StudySession)
        .options(selectinload(StudySession.questions).selectinload(SessionQuestion.answer))
        .where(StudySession.id == session_id)
        .with_for_update(of=StudySession)
        .execution_options(populate_existing=True)
    )
    # Admins may read anyone's session, but only its owner answers and submits it.
    if quiz is None or quiz.user_id != actor.id:
        raise NotFoundError("session not found")
    if quiz.status != "open":
        raise ConflictError("session is already submitted")
    return quiz


def answer_question(
    session: Session,
    actor: User,
    session_id: uuid.UUID,
    session_question_id: uuid.UUID,
    chosen_option: int,
) -> SessionAnswer:
    """Record (or change, until submission) the answer to one question of a session."""
    quiz = _lock_open_session(session, actor, session_id)
    question = next((q for q in quiz.questions if q.id == session_question_id), None)
    if question is None:
        raise InvalidInputError("session_question_id", "is not a question of this session")
    n_options = len(question.snapshot_json["options"])
    if not 0 <= chosen_option < n_options:
        raise InvalidInputError("chosen_option", f"must be between 0 and {n_options - 1}")
    correct = chosen_option == question.snapshot_json["correct_option"]
    if question.answer is None:
        question.answer = SessionAnswer(
            session_question_id=question.id, chosen_option=chosen_option, is_correct=correct
        )
    else:
        question.answer.chosen_option = chosen_option
        question.answer.is_correct = correct
        question.answer.answered_at = utcnow()
    session.flush()
    return question.answer


@dataclass
class Submission:
    session: StudySession
    n_questions: int
    n_answered: int
    n_correct: int
    mastery: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def submit_session(session: Session, actor: User, session_id: uuid.UUID) -> Submission:
    """Score and commit the session, then update BKT mastery (best effort).

    Only the first of concurrent submissions scores the session and feeds mastery; the
    others wait for its commit and get ``ConflictError``.
    """
    quiz = _lock_open_session(session, actor, session_id)
    answered = [q for q in quiz.questions if q.answer is not None]
    quiz.status = "submitted"
    quiz.submitted_at = utcnow()
    quiz.n_correct = sum(q.answer.is_correct for q in answered if q.answer)
    session.commit()

    result = Submission(
        session=quiz,
        n_questions=len(quiz.questions),
        n_answered=len(answered),
        n_correct=quiz.n_correct or 0,
    )
    for q in answered:
        concept = q.snapshot_json.get("concept_id")
        if not concept:
            message = f"question {q.position + 1} has no concept; mastery not updated"
            log.warning(message)
            result.warnings.append(message)
            continue
        try:
            assert q.answer is not None
            state = mastery.apply_attempt(
                session,
                quiz.user_id,
                uuid.UUID(str(concept)),
                q.answer.is_correct,
                at=q.answer.answered_at,
                snapshot=True,
                source="session",
            )
            session.commit()
            result.mastery.append(mastery.change_entry(session, state))
        except Exception as exc:
            session.rollback()
            message = f"BKT update failed for question {q.position + 1}: {exc}"
            log.warning(message, exc_info=True)
            result.warnings.append(message)
    return result
