"""/v1/questions and /v1/sessions: the question bank and quiz sessions."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from smartstudy.api.deps import DB, AdminUser, CurrentUser
from smartstudy.api.schemas import (
    AnswerIn,
    MasteryChange,
    QuestionIn,
    QuestionOut,
    SessionIn,
    SessionOut,
    SessionQuestionOut,
    SubmissionOut,
)
from smartstudy.services import catalogue_admin, quiz
from smartstudy.store.orm import Question, StudySession, User

router = APIRouter(prefix="/v1", tags=["quiz"])


def question_out(q: Question, user: User) -> QuestionOut:
    return QuestionOut(
        id=q.id,
        concept_id=q.concept_id,
        prompt=q.prompt,
        options=list(q.options),
        difficulty=q.difficulty,  # type: ignore[arg-type]
        correct_option=q.correct_option if user.role == "admin" else None,
    )


def _content(body: QuestionIn) -> quiz.QuestionFields:
    """A question's content as the catalogue services take it."""
    return quiz.QuestionFields(
        body.concept_id, body.prompt, body.options, body.correct_option, body.difficulty
    )


def session_out(s: StudySession) -> SessionOut:
    done = s.status == "submitted"
    questions = []
    for q in s.questions:
        snap = q.snapshot_json
        questions.append(
            SessionQuestionOut(
                id=q.id,
                position=q.position,
                prompt=snap["prompt"],
                options=snap["options"],
                concept_id=snap.get("concept_id"),
                chosen_option=q.answer.chosen_option if q.answer else None,
                is_correct=q.answer.is_correct if (done and q.answer) else None,
                correct_option=snap["correct_option"] if done else None,
            )
        )
    return SessionOut(
        id=s.id,
        user_id=s.user_id,
        topic_id=s.topic_id,
        status=s.status,  # type: ignore[arg-type]
        created_at=s.created_at,
        submitted_at=s.submitted_at,
        n_correct=s.n_correct,
        questions=questions,
    )


@router.get("/questions", response_model=list[QuestionOut])
def list_questions(
    session: DB,
    user: CurrentUser,
    topic_id: uuid.UUID | None = None,
    concept_id: uuid.UUID | None = None,
) -> list[QuestionOut]:
    return [
        question_out(q, user)
        for q in quiz.list_questions(session, topic_id=topic_id, concept_id=concept_id)
    ]


@router.post("/questions", response_model=QuestionOut, status_code=status.HTTP_201_CREATED)
def create_question(body: QuestionIn, session: DB, admin: AdminUser) -> QuestionOut:
    q = catalogue_admin.add_question(session, admin, _content(body))
    return question_out(q, admin)


@router.put("/questions/{question_id}", response_model=QuestionOut)
def replace_question(
    question_id: uuid.UUID, body: QuestionIn, session: DB, admin: AdminUser
) -> QuestionOut:
    """New content for a question (admins). Quizzes already taken keep the question as it
    was asked, so their scores and the mastery they gave do not change."""
    q = catalogue_admin.edit_question(session, admin, question_id, _content(body))
    return question_out(q, admin)


@router.delete("/questions/{question_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_question(question_id: uuid.UUID, session: DB, admin: AdminUser) -> Response:
    """Take a question out of the bank (admins); quizzes already taken keep their copy."""
    catalogue_admin.remove_question(session, admin, question_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/sessions", response_model=SessionOut, status_code=status.HTTP_201_CREATED)
def create_session(body: SessionIn, session: DB, user: CurrentUser) -> SessionOut:
    """Start a quiz of questions from a topic, or from some concepts."""
    s = quiz.create_session(
        session,
        user,
        topic_id=body.topic_id,
        concept_ids=body.concept_ids,
        n_questions=body.n_questions,
    )
    return session_out(quiz.get_session(session, user, s.id))


@router.get("/sessions/{session_id}", response_model=SessionOut)
def get_session(session_id: uuid.UUID, session: DB, user: CurrentUser) -> SessionOut:
    return session_out(quiz.get_session(session, user, session_id))


@router.post("/sessions/{session_id}/answers", response_model=SessionOut)
def answer(session_id: uuid.UUID, body: AnswerIn, session: DB, user: CurrentUser) -> SessionOut:
    quiz.answer_question(session, user, session_id, body.session_question_id, body.chosen_option)
    return session_out(quiz.get_session(session, user, session_id))


@router.post("/sessions/{session_id}/submit", response_model=SubmissionOut)
def submit(session_id: uuid.UUID, session: DB, user: CurrentUser) -> SubmissionOut:
    """Score the session, then update BKT mastery for each answered question."""
    result = quiz.submit_session(session, user, session_id)
    return SubmissionOut(
        session=session_out(quiz.get_session(session, user, session_id)),
        n_questions=result.n_questions,
        n_answered=result.n_answered,
        n_correct=result.n_correct,
        mastery=[MasteryChange(**m) for m in result.mastery],
        warnings=result.warnings,
    )
