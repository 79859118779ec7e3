"""Subjects, topics and concepts with BKT mastery and its history; quiz sessions."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from starlette.responses import Response

from smartstudy.services import catalogue, localtime, quiz
from smartstudy.services.errors import ConflictError, InvalidInputError, NotFoundError
from smartstudy.services.reports import mastery as mastery_report
from smartstudy.store.orm import StudySession
from smartstudy.web import charts, forms
from smartstudy.web.deps import DB, Form, PageRoute, PageUser, UoW, parse_id
from smartstudy.web.render import redirect, render

router = APIRouter(route_class=PageRoute, include_in_schema=False)

QUIZ_SIZES = (3, 5, 10)


def _subjects_page(
    request: Request, db: DB, user, error: str | None = None, status: int = 200
) -> Response:
    quizzes = mastery_report.recent_quizzes(db, user.id)
    return render(
        request,
        "subjects.html",
        {
            "active": "subjects",
            "overview": mastery_report.catalogue_overview(db, user.id),
            "quizzes": quizzes,
            "quiz_topics": mastery_report.quiz_topic_names(db, quizzes),
            "quiz_sizes": QUIZ_SIZES,
            "quiz_error": error,
        },
        status_code=status,
    )


@router.get("/subjects")
def subjects(request: Request, db: DB, user: PageUser) -> Response:
    return _subjects_page(request, db, user)


@router.get("/concepts/{concept_id}")
def concept(request: Request, concept_id: str, db: DB, user: PageUser) -> Response:
    detail = mastery_report.concept_detail(db, user.id, parse_id(concept_id))
    clock = localtime.clock_of(user)
    figure = charts.mastery_history(detail.history, detail.prior, clock) if detail.history else None
    return render(
        request,
        "concept.html",
        {
            "active": "subjects",
            "detail": detail,
            "charts": figure is not None,
            "figure": figure,
            "quiz_sizes": QUIZ_SIZES,
        },
    )


@router.post("/quiz")
def start_quiz(request: Request, uow: UoW, db: DB, user: PageUser, form: Form) -> Response:
    """A new quiz on a topic (``topic``) or on one concept (``concept``)."""
    topic_id = forms.optional_uuid(forms.text(form, "topic", 64))
    concept_id = forms.optional_uuid(forms.text(form, "concept", 64))
    size = forms.positive_int(forms.text(form, "n_questions", 4), 5, maximum=quiz.MAX_QUESTIONS)
    try:
        if concept_id is not None:
            catalogue.get_concept(db, concept_id)
            s = quiz.create_session(db, user, concept_ids=[concept_id], n_questions=size)
        elif topic_id is not None:
            s = quiz.create_session(db, user, topic_id=topic_id, n_questions=size)
        else:
            raise InvalidInputError("topic_id", "choose a topic for the quiz")
    except (InvalidInputError, NotFoundError) as exc:
        uow.rollback()
        message = exc.message if isinstance(exc, InvalidInputError) else str(exc)
        return _subjects_page(
            request, db, user, f"No quiz could be started: {message}.", status=422
        )
    if len(s.questions) < size:
        # The bank had fewer questions than asked for: the quiz page says so.
        return redirect(f"/quiz/{s.id}?asked={size}")
    return redirect(f"/quiz/{s.id}")


def _own_quiz(db: DB, user, session_id: str) -> StudySession:
    s = quiz.get_session(db, user, parse_id(session_id))
    if s.user_id != user.id:
        raise NotFoundError("session not found")
    return s


def _quiz_page(
    request: Request,
    db: DB,
    s: StudySession,
    chosen: dict[str, str] | None = None,
    error: str | None = None,
    status: int = 200,
    short: str | None = None,
) -> Response:
    if chosen is None:
        chosen = {str(q.id): str(q.answer.chosen_option) for q in s.questions if q.answer}
    topic = catalogue.get_topic(db, s.topic_id) if s.topic_id else None
    return render(
        request,
        "quiz.html",
        {
            "active": "subjects",
            "quiz": s,
            "topic": topic,
            "chosen": chosen,
            "error": error,
            "short": short,
            "changes": mastery_report.quiz_mastery_changes(db, s),
        },
        status_code=status,
    )


@router.get("/quiz/{session_id}")
def quiz_page(request: Request, session_id: str, db: DB, user: PageUser) -> Response:
    s = _own_quiz(db, user, session_id)
    asked = request.query_params.get("asked", "")
    short = None
    if asked.isdigit() and len(s.questions) < int(asked) <= quiz.MAX_QUESTIONS:
        n = len(s.questions)
        short = (
            f"You asked for {asked} questions; the question bank has {n} for this choice, "
            f"so this quiz has {n}."
        )
    return _quiz_page(request, db, s, short=short)


@router.post("/quiz/{session_id}")
def submit_quiz(
    request: Request, session_id: str, uow: UoW, db: DB, user: PageUser, form: Form
) -> Response:
    """Record every chosen answer, then submit: the score, then BKT mastery updates."""
    s = _own_quiz(db, user, session_id)
    if s.status != "open":
        return redirect(f"/quiz/{s.id}")
    chosen: dict[str, str] = {}
    for q in s.questions:
        value = forms.text(form, f"q-{q.id}", 4)
        if value.isdigit() and int(value) < len(q.snapshot_json["options"]):
            chosen[str(q.id)] = value
    missing = [q.position + 1 for q in s.questions if str(q.id) not in chosen]
    if missing:
        which = ", ".join(str(n) for n in missing)
        noun = "question" if len(missing) == 1 else "questions"
        return _quiz_page(
            request,
            db,
            s,
            chosen,
            f"Choose an answer for every question before submitting: {noun} {which} still open.",
            422,
        )
    quiz_id: uuid.UUID = s.id
    try:
        for q in s.questions:
            quiz.answer_question(db, user, quiz_id, q.id, int(chosen[str(q.id)]))
        # Submitting stores the answers with the score, in one transaction.
        quiz.submit_session(db, user, quiz_id)
    except ConflictError:
        uow.rollback()
    return redirect(f"/quiz/{quiz_id}#result")
