"""The user's task history: one filtered, sorted page of it, and all of it as CSV."""

from __future__ import annotations

import csv
import io
import math
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy.orm import Session

from smartstudy.services import localtime
from smartstudy.services.errors import InvalidInputError
from smartstudy.services.reports.calendar import user_time_zone
from smartstudy.store.orm import DIFFICULTIES, PracticeTask
from smartstudy.store.repositories import reports as queries
from smartstudy.store.repositories.reports import EXPORT_COLUMNS

#: date, completed, topic, difficulty, predicted, time, result.
SORTS = tuple(queries.HISTORY_SORT_KEYS)
STATUSES = ("completed", "open")
RESULTS = ("correct", "wrong")


@dataclass(frozen=True)
class HistoryFilters:
    subject_id: uuid.UUID | None = None
    topic_id: uuid.UUID | None = None
    difficulty: str | None = None
    status: str | None = None
    result: str | None = None
    date_from: date | None = None
    date_to: date | None = None


@dataclass(frozen=True)
class HistoryPage:
    items: list[PracticeTask]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))


def task_history(
    session: Session,
    user_id: uuid.UUID,
    filters: HistoryFilters = HistoryFilters(),
    *,
    sort: str = "date",
    descending: bool = True,
    page: int = 1,
    per_page: int = 25,
    time_zone: str | None = None,
) -> HistoryPage:
    """One page of the user's tasks, filtered and sorted; a page past the end is clamped.
    The dates of ``filters`` are days of the user's calendar (``time_zone``, by default the
    user's stored zone)."""
    if sort not in SORTS:
        raise InvalidInputError("sort", f"must be one of {', '.join(SORTS)}")
    if not 1 <= per_page <= 200:
        raise InvalidInputError("per_page", "must be between 1 and 200")
    if filters.difficulty is not None and filters.difficulty not in DIFFICULTIES:
        raise InvalidInputError("difficulty", f"must be one of {', '.join(DIFFICULTIES)}")
    wanted = _task_filter(session, user_id, filters, time_zone)
    total = queries.count_tasks(session, wanted)
    page = max(1, min(page, max(1, math.ceil(total / per_page))))
    items = queries.task_page(session, wanted, sort, descending, per_page, (page - 1) * per_page)
    return HistoryPage(items=items, total=total, page=page, per_page=per_page)


def _task_filter(
    session: Session, user_id: uuid.UUID, f: HistoryFilters, time_zone: str | None
) -> queries.TaskFilter:
    """The query's filter: the dates become the UTC instants at which the user's days begin
    (the day after ``date_to`` for its end)."""
    created_from = created_before = None
    if f.date_from is not None or f.date_to is not None:
        zone = time_zone or user_time_zone(session, user_id)
        if f.date_from is not None:
            created_from = localtime.start_of_local_day(f.date_from, zone)
        if f.date_to is not None:
            created_before = localtime.start_of_local_day(f.date_to + timedelta(days=1), zone)
    return queries.TaskFilter(
        user_id=user_id,
        topic_id=f.topic_id,
        subject_id=f.subject_id,
        difficulty=f.difficulty,
        status=f.status,
        result=f.result if f.result in RESULTS else None,
        created_from=created_from,
        created_before=created_before,
    )


# -- export ----------------------------------------------------------------------------------
def export_tasks_csv(session: Session, user_id: uuid.UUID) -> str:
    """All of the user's tasks, oldest first, as CSV text (UTF-8, header row)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EXPORT_COLUMNS)
    for row in queries.export_rows(session, user_id):
        writer.writerow([_cell(v) for v in row])
    return out.getvalue()


def _cell(value: object) -> str:
    """One CSV cell: times in UTC ISO 8601, booleans 1/0, text that a spreadsheet would run
    as a formula prefixed with an apostrophe (numbers such as -1.5 are left as they are)."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, bool):
        return "1" if value else "0"
    text = str(value)
    # A cell starting with one of these is run as a formula by spreadsheet programs.
    if text[:1] in ("=", "+", "-", "@", "\t", "\r") and not _is_number(text):
        return "'" + text
    return text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
