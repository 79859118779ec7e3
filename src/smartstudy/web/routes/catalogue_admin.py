"""The admin catalogue pages: the subjects, topics and concepts students practise, and each
concept's quiz questions. An admin adds and renames subjects, topics and concepts here (as
with the API's ``/v1/subjects``, ``/v1/topics`` and ``/v1/concepts``), which are never deleted
because tasks, quizzes and mastery refer to them; and adds, edits, deletes, imports and exports
quiz questions (``/v1/questions``; every quiz keeps its own copy of the questions it asked).
Every change is in the audit log."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from functools import partial
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from starlette.datastructures import UploadFile
from starlette.responses import Response

from smartstudy.services import catalogue, catalogue_admin, question_bank, quiz, rules
from smartstudy.services.errors import ConflictError, InvalidInputError, NotFoundError
from smartstudy.services.importing import ImportErrors
from smartstudy.store.repositories.catalogue import subjects_with_topics
from smartstudy.web import forms
from smartstudy.web.deps import DB, AdminUser, Form, PageRoute, UoW, as_sentence, parse_id
from smartstudy.web.render import redirect, render

router = APIRouter(route_class=PageRoute, include_in_schema=False)

#: A question has 2 to this many answers (``quiz.checked_question``).
MAX_OPTIONS = question_bank.MAX_ANSWERS
Refusal = InvalidInputError | ConflictError | NotFoundError


def _message(exc: Refusal) -> str:
    """A refusal of the catalogue services as a sentence next to the form."""
    if isinstance(exc, InvalidInputError):
        return f"The {exc.field.replace('_', ' ')} {exc.message}."
    return as_sentence(str(exc))


def _status(exc: Refusal) -> int:
    return 409 if isinstance(exc, ConflictError) else 422


def _name_change(
    uow: UoW,
    form: Any,
    change: Callable[[str], object],
    *,
    key: str,
    page: Callable[..., Response],
    done: str,
    notice: str,
) -> Response:
    """``change`` with the name typed in ``form``'s ``name`` field, then back to ``done`` with
    ``notice``; a refusal shows ``page`` again, with the message and the typed name beside the
    form called ``key``."""
    name = forms.typed(form, "name")
    try:
        change(name)
    except (InvalidInputError, ConflictError) as exc:
        uow.rollback()
        return page(errors={key: _message(exc)}, values={key: name}, status=_status(exc))
    return redirect(done, notice=notice)


# --- the subjects and their topics ------------------------------------------------------------


def _catalogue_page(
    request: Request,
    db: DB,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    imported: question_bank.QuestionImport | None = None,
    checked_only: bool = False,
    import_problems: list[str] | None = None,
    status: int = 200,
) -> Response:
    context: dict[str, Any] = {
        "active": "catalogue",
        "subjects": subjects_with_topics(db),
        "counts": catalogue_admin.topic_counts(db),
        "empty_counts": catalogue_admin.TopicCounts(),
        "errors": errors or {},
        "values": values or {},
        "imported": imported,
        "checked_only": checked_only,
        "import_problems": import_problems or [],
        "question_columns": question_bank.COLUMNS,
    }
    return render(request, "admin_catalogue.html", context, status_code=status)


@router.get("/admin/catalogue")
def catalogue_page(request: Request, db: DB, _admin: AdminUser) -> Response:
    return _catalogue_page(request, db)


@router.post("/admin/catalogue/subjects")
def add_subject(request: Request, uow: UoW, db: DB, admin: AdminUser, form: Form) -> Response:
    return _name_change(
        uow,
        form,
        partial(catalogue_admin.add_subject, db, admin),
        key="subject",
        page=partial(_catalogue_page, request, db),
        done="/admin/catalogue",
        notice="subject-added",
    )


@router.post("/admin/catalogue/subjects/{subject_id}/rename")
def rename_subject(
    request: Request, subject_id: str, uow: UoW, db: DB, admin: AdminUser, form: Form
) -> Response:
    sid = parse_id(subject_id)
    return _name_change(
        uow,
        form,
        partial(catalogue_admin.rename_subject, db, admin, sid),
        key=f"rename-{sid}",
        page=partial(_catalogue_page, request, db),
        done="/admin/catalogue",
        notice="renamed",
    )


#: The largest question file the page takes (a bank of thousands of questions is far less).
MAX_QUESTION_FILE = 5 * 1024 * 1024


@router.get("/admin/catalogue/questions.csv")
def export_questions(db: DB, _admin: AdminUser) -> Response:
    """Every quiz question as CSV, in the format the import reads."""
    return Response(
        question_bank.export_questions_csv(db),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="smartstudy-questions.csv"'},
    )


@router.post("/admin/catalogue/questions/import")
def import_questions(request: Request, uow: UoW, db: DB, admin: AdminUser, form: Form) -> Response:
    """Questions from an uploaded CSV: all or nothing, every problem listed by line and
    column; ``check`` only checks and counts."""
    dry_run = form.get("check") == "1"
    upload = form.get("file")
    problems: list[str] = []
    data = b""
    if not isinstance(upload, UploadFile) or not upload.filename:
        problems = ["Choose a CSV file to import."]
    else:
        data = upload.file.read(MAX_QUESTION_FILE + 1)
        if len(data) > MAX_QUESTION_FILE:
            problems = [f"The file is larger than {MAX_QUESTION_FILE // 2**20} MB; split it."]
    if not problems:
        try:
            result = question_bank.import_questions_csv(db, admin, data, dry_run=dry_run)
        except ImportErrors as exc:
            uow.rollback()
            problems = exc.problems
        else:
            return _catalogue_page(request, db, imported=result, checked_only=dry_run)
    return _catalogue_page(request, db, import_problems=problems, status=422)


@router.post("/admin/catalogue/topics")
def add_topic(request: Request, uow: UoW, db: DB, admin: AdminUser, form: Form) -> Response:
    subject_id = forms.optional_uuid(forms.text(form, "subject", 64))
    name = forms.typed(form, "name")
    values = {"topic": name, "topic-subject": str(subject_id or "")}
    try:
        if subject_id is None:
            raise InvalidInputError("subject", "must be chosen")
        topic = catalogue_admin.add_topic(db, admin, subject_id, name)
    except (InvalidInputError, ConflictError, NotFoundError) as exc:
        uow.rollback()
        errors = {"topic": _message(exc)}
        return _catalogue_page(request, db, errors=errors, values=values, status=_status(exc))
    return redirect(f"/admin/catalogue/topics/{topic.id}", notice="topic-added")


# --- one topic: its concepts and their questions ----------------------------------------------


def _topic_page(
    request: Request,
    db: DB,
    topic_id: uuid.UUID,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    topic = catalogue.get_topic(db, topic_id)
    context: dict[str, Any] = {
        "active": "catalogue",
        "topic": topic,
        "concepts": catalogue.list_concepts(db, topic.id),
        "questions": catalogue_admin.questions_by_concept(db, topic.id),
        "difficulties": rules.DIFFICULTIES,
        "max_options": MAX_OPTIONS,
        "errors": errors or {},
        "values": values or {},
    }
    return render(request, "admin_topic.html", context, status_code=status)


@router.get("/admin/catalogue/topics/{topic_id}")
def topic_page(request: Request, topic_id: str, db: DB, _admin: AdminUser) -> Response:
    """``concept`` and ``difficulty`` in the query preset the question form."""
    query = request.query_params
    keep = {k: query[k][:64] for k in ("concept", "difficulty") if query.get(k)}
    return _topic_page(request, db, parse_id(topic_id), values=keep)


def _topic_change(
    request: Request,
    uow: UoW,
    db: DB,
    form: Any,
    topic_id: uuid.UUID,
    change: Callable[[str], object],
    *,
    key: str,
    notice: str,
) -> Response:
    """``_name_change`` on the page of topic ``topic_id``."""
    page = partial(_topic_page, request, db, topic_id)
    done = f"/admin/catalogue/topics/{topic_id}"
    return _name_change(uow, form, change, key=key, page=page, done=done, notice=notice)


@router.post("/admin/catalogue/topics/{topic_id}/rename")
def rename_topic(
    request: Request, topic_id: str, uow: UoW, db: DB, admin: AdminUser, form: Form
) -> Response:
    tid = parse_id(topic_id)
    change = partial(catalogue_admin.rename_topic, db, admin, tid)
    return _topic_change(request, uow, db, form, tid, change, key="rename", notice="renamed")


@router.post("/admin/catalogue/topics/{topic_id}/concepts")
def add_concept(
    request: Request, topic_id: str, uow: UoW, db: DB, admin: AdminUser, form: Form
) -> Response:
    tid = parse_id(topic_id)
    change = partial(catalogue_admin.add_concept, db, admin, tid)
    return _topic_change(
        request, uow, db, form, tid, change, key="new-concept", notice="concept-added"
    )


@router.post("/admin/catalogue/topics/{topic_id}/concepts/{concept_id}/rename")
def rename_concept(
    request: Request,
    topic_id: str,
    concept_id: str,
    uow: UoW,
    db: DB,
    admin: AdminUser,
    form: Form,
) -> Response:
    tid, cid = parse_id(topic_id), parse_id(concept_id)
    if catalogue.get_concept(db, cid).topic_id != tid:
        raise NotFoundError("concept not found")
    change = partial(catalogue_admin.rename_concept, db, admin, cid)
    return _topic_change(request, uow, db, form, tid, change, key=f"rename-{cid}", notice="renamed")


def _question_fields(db: DB, topic_id: uuid.UUID, form: Any) -> quiz.QuestionFields:
    """The question form's values, checked; ``forms.FieldError`` names the first problem."""
    concept_id = forms.optional_uuid(forms.text(form, "concept", 64))
    try:
        concept = None if concept_id is None else catalogue.get_concept(db, concept_id)
    except NotFoundError:
        concept = None
    if concept is None or concept.topic_id != topic_id:
        raise forms.FieldError("Choose the concept the question tests.")
    prompt = forms.checked_text(
        forms.typed(form, "prompt").strip(), "question", rules.MAX_PROMPT, multiline=True
    )
    if not prompt:
        raise forms.FieldError("Write the question.")
    options = [line.strip() for line in forms.typed(form, "options").splitlines() if line.strip()]
    if not 2 <= len(options) <= MAX_OPTIONS:
        raise forms.FieldError(
            f"Give 2 to {MAX_OPTIONS} answers to choose from, one per line "
            f"(there {'is' if len(options) == 1 else 'are'} {len(options)})."
        )
    for number, option in enumerate(options, start=1):
        forms.checked_text(option, f"answer on line {number}", rules.MAX_OPTION)
    correct = forms.positive_int(forms.text(form, "correct", 8), 0, maximum=MAX_OPTIONS)
    if not 1 <= correct <= len(options):
        raise forms.FieldError(f"Choose which answer is right: 1 to {len(options)}.")
    difficulty = forms.text(form, "difficulty", 16)
    if difficulty not in rules.DIFFICULTIES:
        raise forms.FieldError(f"Choose a difficulty: {forms.choices(rules.DIFFICULTIES)}.")
    return quiz.QuestionFields(concept.id, prompt, options, correct - 1, difficulty)


_QUESTION_FIELDS = ("concept", "prompt", "options", "correct", "difficulty")


@router.post("/admin/catalogue/topics/{topic_id}/questions/{question_id}/edit")
def edit_question(
    request: Request,
    topic_id: str,
    question_id: str,
    uow: UoW,
    db: DB,
    admin: AdminUser,
    form: Form,
) -> Response:
    tid, qid = parse_id(topic_id), parse_id(question_id)
    _topic_question(db, tid, qid)
    key = f"edit-{qid}"
    values = {key: {name: forms.typed(form, name) for name in _QUESTION_FIELDS}}
    try:
        fields = _question_fields(db, tid, form)
        catalogue_admin.edit_question(db, admin, qid, fields)
    except forms.FieldError as exc:
        return _topic_page(request, db, tid, errors={key: str(exc)}, values=values, status=422)
    except (InvalidInputError, ConflictError, NotFoundError) as exc:
        uow.rollback()
        errors = {key: _message(exc)}
        return _topic_page(request, db, tid, errors=errors, values=values, status=_status(exc))
    return redirect(f"/admin/catalogue/topics/{tid}", notice="question-saved")


@router.post("/admin/catalogue/topics/{topic_id}/questions/{question_id}/delete")
def delete_question(
    topic_id: str, question_id: str, db: DB, admin: AdminUser, form: Form
) -> Response:
    tid, qid = parse_id(topic_id), parse_id(question_id)
    _topic_question(db, tid, qid)
    catalogue_admin.remove_question(db, admin, qid)
    return redirect(f"/admin/catalogue/topics/{tid}", notice="question-deleted")


def _topic_question(db: DB, topic_id: uuid.UUID, question_id: uuid.UUID) -> None:
    """``NotFoundError`` (the 404 page) unless the question is one of the topic's."""
    question = quiz.get_question(db, question_id)
    if catalogue.get_concept(db, question.concept_id).topic_id != topic_id:
        raise NotFoundError("question not found")


@router.post("/admin/catalogue/topics/{topic_id}/questions")
def add_question(
    request: Request, topic_id: str, uow: UoW, db: DB, admin: AdminUser, form: Form
) -> Response:
    tid = parse_id(topic_id)
    catalogue.get_topic(db, tid)
    values = {name: forms.typed(form, name) for name in _QUESTION_FIELDS}
    try:
        fields = _question_fields(db, tid, form)
        catalogue_admin.add_question(db, admin, fields)
    except forms.FieldError as exc:
        return _topic_page(
            request, db, tid, errors={"question": str(exc)}, values=values, status=422
        )
    except (InvalidInputError, ConflictError, NotFoundError) as exc:
        uow.rollback()
        errors = {"question": _message(exc)}
        return _topic_page(request, db, tid, errors=errors, values=values, status=_status(exc))
    # The next question is often for the same concept and difficulty: the form keeps them.
    kept = urlencode({"concept": values["concept"], "difficulty": values["difficulty"]})
    return redirect(f"/admin/catalogue/topics/{tid}?{kept}", notice="question-added")
