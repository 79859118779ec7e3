"""CSV import of completed practice tasks: validate every row, then write all or nothing.

The file has one row per completed task, with the columns

    email, subject, topic, difficulty, correct, rt_seconds[, completed_at][, description]

``email`` names an existing account; a subject or topic that does not exist yet is
created; ``correct`` is 0/1 (or true/false); ``rt_seconds`` is the time spent (more than 0,
at most 24 h); ``completed_at`` is an ISO 8601 time (UTC if no zone is given; default: the
rows are spaced one minute apart, ending now, in file order).
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from smartstudy.services import catalogue, tasks
from smartstudy.services.accounts import normalise_email
from smartstudy.services.errors import ServiceError
from smartstudy.store.orm import DIFFICULTIES, PracticeTask, Subject, Topic, User, utcnow

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


def import_tasks_csv(session: Session, source: Path | str | io.TextIOBase) -> ImportResult:
    """Validate the whole file, then add every row in the caller's transaction.

    Raises ``ImportErrors`` (and adds nothing) if any row is wrong.
    """
    if isinstance(source, str | Path):
        path = Path(source)
        if not path.is_file():
            raise ImportErrors([f"{path}: no such file"])
        text = path.read_text(encoding="utf-8-sig")
    else:
        text = source.read()
    rows = _validate(session, text)
    return _write(session, rows)


def _validate(session: Session, text: str) -> list[_Row]:
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in (reader.fieldnames or [])]
    if not header:
        raise ImportErrors(["line 1: the file is empty; expected a header row"])
    reader.fieldnames = header
    missing = [c for c in REQUIRED if c not in header]
    unknown = [c for c in header if c not in REQUIRED + OPTIONAL]
    problems = []
    if missing:
        problems.append(f"line 1: missing column(s) {', '.join(missing)}")
    if unknown:
        problems.append(
            f"line 1: unknown column(s) {', '.join(unknown)}; "
            f"expected {', '.join(REQUIRED + OPTIONAL)}"
        )
    if problems:
        raise ImportErrors(problems)

    users = {u.email: u for u in session.scalars(select(User))}
    now = utcnow()
    out: list[_Row] = []
    for raw in reader:
        line = reader.line_num
        if len(problems) >= MAX_ERRORS:
            break
        if None in raw:  # more cells than header columns
            problems.append(
                f"line {line}: {len(raw[None]) + len(header)} cells, expected {len(header)}"
            )
            continue
        values = {k: (v or "").strip() for k, v in raw.items()}
        row_problems: list[str] = []

        def bad(column: str, message: str, _line: int = line, _p: list = row_problems) -> None:
            _p.append(f"line {_line}, column {column}: {message}")

        user = users.get(normalise_email(values["email"]))
        if not values["email"]:
            bad("email", "is empty")
        elif user is None:
            bad("email", f"no account with e-mail {values['email']!r}")
        for col in ("subject", "topic"):
            if not values[col]:
                bad(col, "is empty")
            elif len(values[col]) > 120:
                bad(col, "is longer than 120 characters")
        difficulty = values["difficulty"].lower()
        if difficulty not in DIFFICULTIES:
            bad("difficulty", f"{values['difficulty']!r} is not one of {', '.join(DIFFICULTIES)}")
        correct_text = values["correct"].lower()
        if correct_text not in _TRUE | _FALSE:
            bad("correct", f"{values['correct']!r} is not 0/1 (or true/false)")
        seconds = math.nan
        try:
            seconds = float(values["rt_seconds"])
        except ValueError:
            bad("rt_seconds", f"{values['rt_seconds']!r} is not a number of seconds")
        else:
            if not math.isfinite(seconds) or seconds <= 0:
                bad("rt_seconds", f"{values['rt_seconds']} must be more than 0 seconds")
            elif seconds > tasks.MAX_TASK_SECONDS:
                bad("rt_seconds", f"{values['rt_seconds']} is more than 24 h (86400 s)")
        completed_at = None
        if values.get("completed_at"):
            try:
                completed_at = datetime.fromisoformat(values["completed_at"])
            except ValueError:
                bad("completed_at", f"{values['completed_at']!r} is not an ISO 8601 time")
            else:
                if completed_at.tzinfo is None:
                    completed_at = completed_at.replace(tzinfo=UTC)
                if completed_at > now + timedelta(minutes=5):
                    bad("completed_at", f"{values['completed_at']} is in the future")
        if row_problems:
            problems.extend(row_problems)
            continue
        assert user is not None
        out.append(
            _Row(
                line=line,
                user=user,
                subject=" ".join(values["subject"].split()),
                topic=" ".join(values["topic"].split()),
                difficulty=difficulty,
                correct=correct_text in _TRUE,
                seconds=seconds,
                completed_at=completed_at,
                description=values.get("description") or None,
            )
        )
    if problems:
        raise ImportErrors(problems[:MAX_ERRORS])
    if not out:
        raise ImportErrors(["line 2: the file has a header but no rows"])
    return out


def _write(session: Session, rows: list[_Row]) -> ImportResult:
    subjects = {s.name: s for s in session.scalars(select(Subject))}
    topics = {(t.subject_id, t.name): t for t in session.scalars(select(Topic))}
    new_subjects = new_topics = 0
    now = utcnow()
    for i, row in enumerate(rows):
        subject = subjects.get(row.subject)
        if subject is None:
            subject = catalogue.create_subject(session, row.subject)
            subjects[subject.name] = subject
            new_subjects += 1
        topic = topics.get((subject.id, row.topic))
        if topic is None:
            topic = catalogue.create_topic(session, subject.id, row.topic)
            topics[(subject.id, topic.name)] = topic
            new_topics += 1
        done = row.completed_at or now - timedelta(minutes=len(rows) - 1 - i)
        started = done - timedelta(seconds=row.seconds)
        session.add(
            PracticeTask(
                user_id=row.user.id,
                topic_id=topic.id,
                difficulty=row.difficulty,
                description=row.description,
                created_at=started,
                started_at=started,
                completed_at=done,
                is_correct=row.correct,
                actual_time_seconds=row.seconds,
                model_name=None,
                model_version=None,
            )
        )
    tasks.bump_training_counter(session, by=len(rows))
    session.flush()
    return ImportResult(rows=len(rows), subjects_created=new_subjects, topics_created=new_topics)
