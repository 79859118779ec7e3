"""CSV import of completed practice tasks: validate every row, then write all or nothing.

The file has one row per completed task, with the columns

    email, subject, topic, difficulty, correct, rt_seconds[, completed_at][, description]

``email`` names an existing account; a subject or topic that does not exist yet is
created; ``correct`` is 0/1 (or true/false); ``rt_seconds`` is the time spent (more than 0,
at most 24 h); ``completed_at`` is an ISO 8601 time (UTC if no zone is given; default: the
rows are spaced one minute apart, ending now, in file order).

The rows are completed through the completion use case (``tasks.complete_tasks``), as one
batch: one transaction for the whole file, the training counter bumped and claimed once,
then the served models learn from every row and a due training is scheduled.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from smartstudy.services import catalogue, rules, tasks
from smartstudy.services.accounts import normalise_email
from smartstudy.services.errors import InvalidInputError, ServiceError
from smartstudy.store.orm import PracticeTask, User, utcnow

if TYPE_CHECKING:
    from smartstudy.services.context import AppContext
    from smartstudy.store.db import UnitOfWork

REQUIRED = ("email", "subject", "topic", "difficulty", "correct", "rt_seconds")
OPTIONAL = ("completed_at", "description")
MAX_ERRORS = 50
_TRUE = {"1", "true", "yes"}
_FALSE = {"0", "false", "no"}


@dataclass
class ImportErrors(ServiceError):
    """Every problem found, each as 'line N, column C: what is wrong'."""

    problems: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        more = "" if len(self.problems) < MAX_ERRORS else f"\n(stopped after {MAX_ERRORS})"
        return "\n".join(self.problems) + more


@dataclass(frozen=True)
class ImportResult:
    rows: int
    subjects_created: int
    topics_created: int


@dataclass(frozen=True)
class _Row:
    line: int
    user: User
    subject: str
    topic: str
    difficulty: str
    correct: bool
    seconds: float
    completed_at: datetime | None
    description: str | None


def import_tasks_csv(
    context: AppContext,
    uow: UnitOfWork,
    source: Path | str | io.TextIOBase,
    *,
    dry_run: bool = False,
) -> ImportResult:
    """Validate the whole file, then complete every row through the completion use case,
    which commits them all at once; ``dry_run`` checks and counts, then rolls back.

    Raises ``ImportErrors`` (and adds nothing) if any row is wrong.
    """
    rows = _validate(uow.session, read_text(source))
    result, completions = _write(uow.session, rows)
    if dry_run:
        uow.rollback()
    else:
        tasks.complete_tasks(context, uow, completions)
    return result


def read_text(source: Path | str | bytes | io.TextIOBase) -> str:
    """The text of a CSV file given by path or as its bytes (UTF-8, with or without a
    byte-order mark), or of an open text stream; ``ImportErrors`` says what is wrong."""
    if isinstance(source, bytes):
        data = source
    elif isinstance(source, str | Path):
        path = Path(source)
        if not path.is_file():
            raise ImportErrors([f"{path}: no such file"])
        data = path.read_bytes()
    else:
        return source.read()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ImportErrors(
            [f"line {line}: byte 0x{data[exc.start]:02x} is not UTF-8; save the file as UTF-8"]
        ) from None


def _header(
    reader: csv.DictReader, required: tuple[str, ...], optional: tuple[str, ...]
) -> list[str]:
    header = [h.strip() for h in (reader.fieldnames or [])]
    if not header:
        raise ImportErrors(["line 1: the file is empty; expected a header row"])
    missing = [c for c in required if c not in header]
    unknown = [c for c in header if c not in required + optional]
    problems = []
    if missing:
        problems.append(f"line 1: missing column(s) {', '.join(missing)}")
    if unknown:
        problems.append(
            f"line 1: unknown column(s) {', '.join(shown(c) for c in unknown)}; "
            f"expected {', '.join(required + optional)}"
        )
    if problems:
        raise ImportErrors(problems)
    return header


T = TypeVar("T")


def read_rows(
    text: str,
    required: tuple[str, ...],
    optional: tuple[str, ...],
    check_row: Callable[[int, dict[str, str], list[str]], T | None],
) -> list[T]:
    """Every row of the CSV ``text`` checked by ``check_row`` (its line number, its cells by
    column, stripped, an optional column left out reading as empty, and the problems found so
    far: the row's value, or None with what is wrong added to the problems). ``ImportErrors``
    lists up to ``MAX_ERRORS`` problems, each naming its line and column."""
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames = _header(reader, required, optional)
    out: list[T] = []
    problems: list[str] = []
    while len(problems) < MAX_ERRORS:
        first_line = reader.line_num + 1
        try:
            raw = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            problems.append(f"line {first_line}: {_csv_problem(exc)}")
            break  # the reader cannot go on past a malformed row
        if None in raw:  # more cells than header columns
            problems.append(
                f"line {reader.line_num}: {len(raw[None]) + len(header)} cells, "
                f"expected {len(header)}"
            )
            continue
        cells = {column: "" for column in optional}
        cells.update({k: (v or "").strip() for k, v in raw.items()})
        row = check_row(reader.line_num, cells, problems)
        if row is not None:
            out.append(row)
    if problems:
        raise ImportErrors(problems[:MAX_ERRORS])
    if not out:
        raise ImportErrors(["line 2: the file has a header but no rows"])
    return out


def _validate(session: Session, text: str) -> list[_Row]:
    users = {u.email: u for u in session.scalars(select(User))}
    now = utcnow()

    def check(line: int, values: dict[str, str], problems: list[str]) -> _Row | None:
        return _check_row(line, values, users, now, problems)

    return read_rows(text, REQUIRED, OPTIONAL, check)


def _csv_problem(exc: csv.Error) -> str:
    if "field limit" in str(exc):
        # The csv module refuses a cell over its own limit (131,072 characters); every
        # column's limit is far lower, so say which is the longest allowed.
        return (
            f"a cell is too long for any column ({exc}); the longest allowed is a "
            f"description of {rules.MAX_DESCRIPTION:,} characters"
        )
    return f"the row is not valid CSV: {exc}"


def shown(value: str, limit: int = 40) -> str:
    """``value`` quoted for a message, cut short: a bad cell may be 100,000 characters."""
    return repr(value if len(value) <= limit else value[:limit] + "...")


def _check_row(
    line: int, values: dict[str, str], users: dict[str, User], now: datetime, problems: list[str]
) -> _Row | None:
    """The row, or None with what is wrong added to ``problems`` ('line N, column C: ...')."""
    before = len(problems)

    def bad(column: str, message: str) -> None:
        problems.append(f"line {line}, column {column}: {message}")

    user = users.get(normalise_email(values["email"]))
    if not values["email"]:
        bad("email", "is empty")
    elif user is None:
        bad("email", f"no account with e-mail {shown(values['email'])}")
    names = {}
    for col in ("subject", "topic"):
        try:
            names[col] = catalogue.clean_name(values[col], col)
        except InvalidInputError as exc:
            bad(col, exc.message)
    description = values.get("description", "")
    problem = rules.text_problem(description, rules.MAX_DESCRIPTION, multiline=True)
    if problem is not None:
        bad("description", problem)
    difficulty = values["difficulty"].lower()
    if difficulty not in rules.DIFFICULTIES:
        choices = ", ".join(rules.DIFFICULTIES)
        bad("difficulty", f"{shown(values['difficulty'])} is not one of {choices}")
    correct_text = values["correct"].lower()
    if correct_text not in _TRUE | _FALSE:
        bad("correct", f"{shown(values['correct'])} is not 0/1 (or true/false)")
    seconds = _seconds(values["rt_seconds"], bad)
    completed_at = _completed_at(values.get("completed_at", ""), now, bad)
    if len(problems) > before or user is None:
        return None
    return _Row(
        line=line,
        user=user,
        subject=names["subject"],
        topic=names["topic"],
        difficulty=difficulty,
        correct=correct_text in _TRUE,
        seconds=seconds,
        completed_at=completed_at,
        description=description or None,
    )


def _seconds(text: str, bad: Callable[[str, str], None]) -> float:
    try:
        seconds = float(text)
    except ValueError:
        bad("rt_seconds", f"{shown(text)} is not a number of seconds")
        return math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        bad("rt_seconds", f"{shown(text)} must be more than 0 seconds")
    elif seconds > rules.MAX_TASK_SECONDS:
        bad(
            "rt_seconds",
            f"{shown(text)} is more than {rules.MAX_TASK_HOURS} h ({rules.MAX_TASK_SECONDS} s)",
        )
    return seconds


def _completed_at(text: str, now: datetime, bad: Callable[[str, str], None]) -> datetime | None:
    if not text:
        return None
    try:
        completed_at = datetime.fromisoformat(text)
    except ValueError:
        bad("completed_at", f"{shown(text)} is not an ISO 8601 time")
        return None
    if completed_at.tzinfo is None:
        completed_at = completed_at.replace(tzinfo=UTC)
    if completed_at > now + timedelta(minutes=5):
        bad("completed_at", f"{shown(text)} is in the future")
    return completed_at


def _write(session: Session, rows: list[_Row]) -> tuple[ImportResult, list[tasks.Completion]]:
    """The catalogue entries the rows name and one started task per row, added to
    ``session``, and the completion of each task for the use case to record."""
    # "maths" in the file is the subject "Maths" (see catalogue.NameIndex).
    names = catalogue.NameIndex(session)
    now = utcnow()
    added: list[tuple[_Row, PracticeTask, datetime]] = []
    for i, row in enumerate(rows):
        topic = names.topic(row.subject, row.topic)
        done = row.completed_at or now - timedelta(minutes=len(rows) - 1 - i)
        started = done - timedelta(seconds=row.seconds)
        task = PracticeTask(
            user_id=row.user.id,
            topic_id=topic.id,
            difficulty=row.difficulty,
            description=row.description,
            created_at=started,
            started_at=started,
            model_name=None,
            model_version=None,
        )
        session.add(task)
        added.append((row, task, done))
    session.flush()
    completions = [
        tasks.Completion(row.user, task.id, row.correct, row.seconds, done)
        for row, task, done in added
    ]
    result = ImportResult(
        rows=len(rows),
        subjects_created=names.created["subject"],
        topics_created=names.created["topic"],
    )
    return result, completions
