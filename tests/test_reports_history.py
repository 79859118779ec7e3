"""Direct tests of ``services.reports.history``: filters (dates on the user's calendar),
sorting, paging and the CSV export, whose cells a spreadsheet must not run as formulas."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, date, datetime

import pytest

from smartstudy.services import accounts, catalogue
from smartstudy.services.context import AppContext
from smartstudy.services.errors import InvalidInputError
from smartstudy.services.reports import history
from smartstudy.services.reports.history import HistoryFilters
from smartstudy.store.db import session_scope
from smartstudy.store.orm import PracticeTask


@pytest.fixture
def student(context: AppContext) -> dict[str, uuid.UUID]:
    """A Tokyo student with four tasks in two subjects (one open) and another student's task."""
    with session_scope(context.sessions) as session:
        me = accounts.create_user(session, "hist@example.com", "correct horse 1")
        me.time_zone = "Asia/Tokyo"
        other = accounts.create_user(session, "other@example.com", "correct horse 1")
        algebra = catalogue.ensure_topic(session, "Mathematics", "Algebra")
        cells = catalogue.ensure_topic(session, "Biology", "Cells")
        session.flush()
        tasks = [
            # created 09:00 on 1 Nov in Tokyo
            (algebra, "hard", datetime(2026, 11, 1, 0, 0, tzinfo=UTC), True, 0.3),
            # created 08:00 on 3 Nov in Tokyo (23:00 UTC on the 2nd)
            (algebra, "easy", datetime(2026, 11, 2, 23, 0, tzinfo=UTC), False, 0.8),
            (cells, "medium", datetime(2026, 11, 4, 0, 0, tzinfo=UTC), True, 0.6),
        ]
        for topic, difficulty, at, correct, p in tasks:
            session.add(
                PracticeTask(
                    user_id=me.id,
                    topic_id=topic.id,
                    difficulty=difficulty,
                    created_at=at,
                    completed_at=at,
                    is_correct=correct,
                    actual_time_seconds=60.0,
                    predicted_correct=p,
                )
            )
        session.add(
            PracticeTask(
                user_id=me.id,
                topic_id=cells.id,
                difficulty="easy",
                created_at=datetime(2026, 11, 5, 0, 0, tzinfo=UTC),
            )
        )
        session.add(PracticeTask(user_id=other.id, topic_id=algebra.id, difficulty="easy"))
        return {"user": me.id, "maths": algebra.subject_id, "algebra": algebra.id}


def _page(context: AppContext, user_id: uuid.UUID, filters=HistoryFilters(), **kw):
    with session_scope(context.sessions) as session:
        page = history.task_history(session, user_id, filters, **kw)
        return page, [(t.difficulty, t.is_correct) for t in page.items]


def test_filters_select_the_user_s_tasks(context: AppContext, student):
    me = student["user"]
    page, items = _page(context, me)
    assert (page.total, len(items)) == (4, 4)  # the other student's task is not there
    _, items = _page(context, me, HistoryFilters(subject_id=student["maths"]))
    assert sorted(d for d, _ in items) == ["easy", "hard"]
    _, items = _page(context, me, HistoryFilters(difficulty="medium"))
    assert items == [("medium", True)]
    _, items = _page(context, me, HistoryFilters(status="open"))
    assert items == [("easy", None)]
    page, _ = _page(context, me, HistoryFilters(status="completed", result="correct"))
    assert page.total == 2
    with pytest.raises(InvalidInputError):
        _page(context, me, HistoryFilters(difficulty="impossible"))


def test_date_filters_are_days_of_the_user_s_calendar(context: AppContext, student):
    me = student["user"]
    # 23:00 UTC on 2 Nov is 3 Nov in Tokyo: only that task was created on 3 Nov there.
    only_third = HistoryFilters(date_from=date(2026, 11, 3), date_to=date(2026, 11, 3))
    _, items = _page(context, me, only_third)
    assert items == [("easy", False)]
    _, items = _page(context, me, only_third, time_zone="UTC")
    assert items == []
    _, items = _page(context, me, HistoryFilters(date_to=date(2026, 11, 2)), time_zone="UTC")
    assert items == [("easy", False), ("hard", True)]


def test_sorting_puts_open_tasks_last_and_paging_clamps(context: AppContext, student):
    me = student["user"]
    _, items = _page(context, me, sort="difficulty", descending=False)
    assert [d for d, _ in items] == ["easy", "easy", "medium", "hard"]
    _, items = _page(context, me, sort="predicted", descending=False)
    assert items == [("hard", True), ("medium", True), ("easy", False), ("easy", None)]
    _, items = _page(context, me, sort="predicted")
    assert items[-1] == ("easy", None)
    page, items = _page(context, me, page=99, per_page=3)
    assert (page.page, page.pages, len(items)) == (2, 2, 1)
    with pytest.raises(InvalidInputError):
        _page(context, me, sort="colour")
    with pytest.raises(InvalidInputError):
        _page(context, me, per_page=201)


def test_the_csv_export_escapes_formula_like_text(context: AppContext, student):
    with session_scope(context.sessions) as session:
        user = student["user"]
        for description in ('=HYPERLINK("http://x")', "-1.5", "+SUM(A1)", "@me"):
            session.add(
                PracticeTask(
                    user_id=user,
                    topic_id=student["algebra"],
                    difficulty="easy",
                    description=description,
                    created_at=datetime(2026, 12, 1, 12, 0, tzinfo=UTC),
                )
            )
    with session_scope(context.sessions) as session:
        text = history.export_tasks_csv(session, user)
    lines = text.splitlines()
    assert lines[0] == ",".join(history.EXPORT_COLUMNS)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 8  # four tasks of the fixture, four here; none of the other student's
    first = rows[0]  # the oldest: the hard Algebra task of 1 Nov
    assert (first["subject"], first["topic"], first["difficulty"]) == (
        "Mathematics",
        "Algebra",
        "hard",
    )
    assert first["created_at"] == "2026-11-01T00:00:00+00:00"
    assert (first["correct"], first["rt_seconds"], first["predicted_correct"]) == (
        "1",
        "60.0",
        "0.3",
    )
    assert first["started_at"] == "" and first["model_name"] == ""
    described = {r["description"] for r in rows[4:]}
    assert described == {'\'=HYPERLINK("http://x")', "-1.5", "'+SUM(A1)", "'@me"}
    # The line as written: quotes doubled by the CSV writer, the apostrophe inside the cell.
    assert any(',"\'=HYPERLINK(""http://x"")",' in line for line in lines)


@pytest.mark.parametrize("sort", history.SORTS)
def test_every_sort_lists_every_task_once_with_open_tasks_last(context, student, sort: str):
    me = student["user"]
    for descending in (True, False):
        page, items = _page(context, me, sort=sort, descending=descending)
        assert (page.total, len(items)) == (4, 4)
        if sort in ("completed", "predicted", "time", "result"):  # no value for an open task
            assert items[-1] == ("easy", None)
