"""The quiz question bank as a CSV file: export every question, import many at once.

One row per question, with the columns

    subject, topic, concept, question, answer_1, answer_2[, answer_3 … answer_8], right
    [, difficulty]

``right`` is the number of the right answer (1 for ``answer_1``); answers fill their columns
in order; ``difficulty`` is easy, medium or hard (medium when left out). A subject, topic or
concept that does not exist yet is created (names match whatever their case). A question
whose concept already has one with the same text (or that an earlier row adds) is skipped, so
importing a file twice, or an export into the installation it came from, adds nothing new.

The import checks every row first and then adds all or nothing (``importing.read_rows``:
every problem named by line and column). It is one audit entry, ``question.import``.
"""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from smartstudy.services import audit, catalogue, quiz, rules
from smartstudy.services.errors import InvalidInputError
from smartstudy.services.importing import ImportErrors, read_rows, read_text, shown
from smartstudy.store.orm import Concept, Question, Subject, Topic, User

MAX_ANSWERS = 8
ANSWERS = tuple(f"answer_{k}" for k in range(1, MAX_ANSWERS + 1))
REQUIRED = ("subject", "topic", "concept", "question", *ANSWERS[:2], "right")
OPTIONAL = (*ANSWERS[2:], "difficulty")
#: The export's columns, in order.
COLUMNS = ("subject", "topic", "concept", "question", *ANSWERS, "right", "difficulty")


@dataclass(frozen=True)
class _Row:
    line: int
    subject: str
    topic: str
    concept: str
    prompt: str
    options: list[str]
    right: int  # 0-based
    difficulty: str


@dataclass(frozen=True)
class QuestionImport:
    rows: int
    added: int
    skipped: int
    subjects_created: int
    topics_created: int
    concepts_created: int


def import_questions_csv(
    session: Session,
    admin: User | None,
    source: Path | str | bytes | io.TextIOBase,
    *,
    dry_run: bool = False,
) -> QuestionImport:
    """Check every row of the file, then add its questions (and the subjects, topics and
    concepts they name) to ``session``; ``dry_run`` checks and counts, then rolls back what
    it added. ``ImportErrors`` (and nothing added) if any row is wrong."""
    rows = read_rows(read_text(source), REQUIRED, OPTIONAL, _check_row)
    with session.begin_nested() as savepoint:
        result = _write(session, rows)
        if dry_run:
            savepoint.rollback()
        else:
            details = {
                "rows": result.rows,
                "added": result.added,
                "skipped": result.skipped,
                "subjects_created": result.subjects_created,
                "topics_created": result.topics_created,
                "concepts_created": result.concepts_created,
            }
            audit.record(session, admin, "question.import", "question", None, details)
    return result


def _check_row(line: int, values: dict[str, str], problems: list[str]) -> _Row | None:
    before = len(problems)

    def bad(column: str, message: str) -> None:
        problems.append(f"line {line}, column {column}: {message}")

    names = {}
    for column in ("subject", "topic", "concept"):
        try:
            names[column] = catalogue.clean_name(values[column], column)
        except InvalidInputError as exc:
            bad(column, exc.message)
    prompt = values["question"]
    problem = rules.text_problem(prompt, rules.MAX_PROMPT, multiline=True)
    if not prompt:
        bad("question", "is empty")
    elif problem is not None:
        bad("question", problem)
    options: list[str] = []
    for k, column in enumerate(ANSWERS):
        answer = values.get(column, "")
        if not answer:
            continue
        if len(options) < k:
            bad(column, f"{ANSWERS[len(options)]} is empty; fill the answers in order")
            break
        problem = rules.text_problem(answer, rules.MAX_OPTION)
        if problem is not None:
            bad(column, problem)
        options.append(answer)
    if len(options) < 2:
        bad("answer_2" if options else "answer_1", "a question needs at least 2 answers")
    elif len(set(options)) < len(options):
        bad("answer_1", "two answers are the same; answers must differ from each other")
    right_text = values["right"]
    right = int(right_text) if right_text.isdecimal() and len(right_text) < 4 else 0
    if len(options) >= 2 and not 1 <= right <= len(options):
        bad("right", f"{shown(right_text)} is not the number of an answer (1 to {len(options)})")
    difficulty = (values.get("difficulty") or "medium").lower()
    if difficulty not in rules.DIFFICULTIES:
        choices = ", ".join(rules.DIFFICULTIES)
        bad("difficulty", f"{shown(values['difficulty'])} is not one of {choices}")
    if len(problems) > before:
        return None
    return _Row(
        line,
        names["subject"],
        names["topic"],
        names["concept"],
        prompt,
        options,
        right - 1,
        difficulty,
    )


def _write(session: Session, rows: list[_Row]) -> QuestionImport:
    names = catalogue.NameIndex(session)
    asked: set[tuple[uuid.UUID, str]] = {
        (q.concept_id, q.prompt) for q in session.scalars(select(Question))
    }
    added = 0
    for row in rows:
        concept = names.concept(names.topic(row.subject, row.topic), row.concept)
        if (concept.id, row.prompt) in asked:
            continue
        try:
            quiz.create_question(
                session, concept.id, row.prompt, row.options, row.right, row.difficulty
            )
        except InvalidInputError as exc:  # checked above; a rule added later still names its line
            raise ImportErrors([f"line {row.line}: {exc}"]) from None
        asked.add((concept.id, row.prompt))
        added += 1
    return QuestionImport(
        rows=len(rows),
        added=added,
        skipped=len(rows) - added,
        subjects_created=names.created["subject"],
        topics_created=names.created["topic"],
        concepts_created=names.created["concept"],
    )


def export_questions_csv(session: Session) -> str:
    """Every question of the bank as CSV (``COLUMNS``), by subject, topic, concept and age."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    stmt = (
        select(Question, Concept, Topic, Subject)
        .join(Concept, Question.concept_id == Concept.id)
        .join(Topic, Concept.topic_id == Topic.id)
        .join(Subject, Topic.subject_id == Subject.id)
        .order_by(Subject.name, Topic.name, Concept.name, Question.created_at, Question.id)
    )
    for question, concept, topic, subject in session.execute(stmt):
        answers = list(question.options) + [""] * (MAX_ANSWERS - len(question.options))
        writer.writerow(
            [
                subject.name,
                topic.name,
                concept.name,
                question.prompt,
                *answers,
                question.correct_option + 1,
                question.difficulty,
            ]
        )
    return out.getvalue()
