"""Direct tests of ``services.reports.dashboard`` and ``services.reports.calendar``: today,
the week and the daily trend on the user's calendar, totals and mastery highlights, worked
out by hand for a student in Tokyo (UTC+9)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest

from smartstudy.services import accounts, catalogue
from smartstudy.services.context import AppContext
from smartstudy.services.reports import calendar
from smartstudy.services.reports.dashboard import dashboard
from smartstudy.store.db import session_scope
from smartstudy.store.orm import BKTUserSkillState, PracticeTask

#: Thursday 26 Nov 2026, 09:00 in Tokyo; the Tokyo week began on Monday 23 Nov (15:00 UTC
#: on the 22nd).
NOW = datetime(2026, 11, 26, 0, 0, tzinfo=UTC)


def _done(session, user_id, topic_id, at: datetime, correct: bool, seconds: float) -> None:
    session.add(
        PracticeTask(
            user_id=user_id,
            topic_id=topic_id,
            difficulty="medium",
            created_at=at,
            completed_at=at,
            is_correct=correct,
            actual_time_seconds=seconds,
        )
    )


@pytest.fixture
def tokyo(context: AppContext) -> uuid.UUID:
    """A Tokyo student with tasks today, earlier this week, last week and long ago, an open
    task and five concepts' mastery; another student has a task today too."""
    with session_scope(context.sessions) as session:
        me = accounts.create_user(session, "tokyo@example.com", "correct horse 1")
        me.time_zone = "Asia/Tokyo"
        other = accounts.create_user(session, "other@example.com", "correct horse 1")
        topic = catalogue.ensure_topic(session, "Mathematics", "Algebra")
        session.flush()
        _done(session, me.id, topic.id, datetime(2026, 11, 25, 23, 0, tzinfo=UTC), True, 60.0)
        _done(session, me.id, topic.id, datetime(2026, 11, 24, 0, 30, tzinfo=UTC), False, 40.0)
        _done(session, me.id, topic.id, datetime(2026, 11, 22, 14, 0, tzinfo=UTC), True, 100.0)
        _done(session, me.id, topic.id, datetime(2026, 10, 1, 12, 0, tzinfo=UTC), True, 5.0)
        _done(session, other.id, topic.id, datetime(2026, 11, 25, 23, 30, tzinfo=UTC), True, 9.0)
        session.add(PracticeTask(user_id=me.id, topic_id=topic.id, difficulty="easy"))
        for name, p in [("A", 0.9), ("B", 0.2), ("C", 0.5), ("D", 0.7), ("E", 0.1)]:
            concept = catalogue.create_concept(session, topic.id, name)
            session.add(
                BKTUserSkillState(user_id=me.id, concept_id=concept.id, p_mastery=p, n_attempts=2)
            )
        return me.id


def test_today_and_the_week_are_the_user_s(context: AppContext, tokyo: uuid.UUID):
    with session_scope(context.sessions) as session:
        d = dashboard(session, tokyo, now=NOW)
        today_times = [t.completed_at for t in d.today]
        open_ids = [t.user_id for t in d.open_tasks]
    # 23:00 UTC on the 25th is 08:00 on the 26th in Tokyo: today. The other user's is not shown.
    assert today_times == [datetime(2026, 11, 25, 23, 0, tzinfo=UTC)]
    assert open_ids == [tokyo]
    assert d.week_start == date(2026, 11, 23)
    # This week: today's task (60 s, correct) and Tuesday's (40 s, wrong); Sunday 22 Nov 23:00
    # in Tokyo belongs to the week before.
    assert (d.week_tasks, d.week_correct, d.week_seconds) == (2, 1, 100.0)
    assert (d.total_completed, d.total_correct) == (4, 3)


def test_the_daily_trend_counts_each_local_day_and_keeps_empty_days(
    context: AppContext, tokyo: uuid.UUID
):
    with session_scope(context.sessions) as session:
        days = dashboard(session, tokyo, now=NOW).days
        week = dashboard(session, tokyo, now=NOW, days=7).days
    assert len(days) == 30
    assert (days[0].day, days[-1].day) == (date(2026, 10, 28), date(2026, 11, 26))
    by_day = {d.day: d for d in days if d.tasks}
    assert set(by_day) == {date(2026, 11, 22), date(2026, 11, 24), date(2026, 11, 26)}
    assert (by_day[date(2026, 11, 24)].correct, by_day[date(2026, 11, 24)].accuracy) == (0, 0.0)
    assert by_day[date(2026, 11, 22)].seconds == 100.0
    assert days[0].accuracy is None  # no task that day
    assert [d.day for d in week] == [date(2026, 11, 20 + i) for i in range(7)]
    assert sum(d.tasks for d in week) == 3


def test_the_same_tasks_on_a_utc_calendar(context: AppContext, tokyo: uuid.UUID):
    with session_scope(context.sessions) as session:
        d = dashboard(session, tokyo, now=NOW, time_zone="UTC")
    # At 00:00 UTC on the 26th nothing has been completed "today" yet; the UTC week began on
    # Monday 23 Nov at 00:00, so it holds only the task of the 24th and the one of the 25th.
    assert d.today == []
    assert d.week_start == date(2026, 11, 23)
    assert (d.week_tasks, d.week_correct, d.week_seconds) == (2, 1, 100.0)
    assert d.days[-1].day == date(2026, 11, 26) and d.days[-1].tasks == 0


def test_the_mastery_highlights_are_the_three_strongest_and_the_weakest_others(
    context: AppContext, tokyo: uuid.UUID
):
    with session_scope(context.sessions) as session:
        d = dashboard(session, tokyo, now=NOW)
    assert [m.concept for m in d.mastery_top] == ["A", "D", "C"]
    assert [m.concept for m in d.mastery_low] == ["E", "B"]
    assert d.mastery_top[0].p_mastery == 0.9 and d.mastery_top[0].topic == "Algebra"


def test_the_calendar_of_a_user(context: AppContext, tokyo: uuid.UUID):
    assert calendar.start_of_day(NOW, "Asia/Tokyo") == datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
    assert calendar.start_of_day(NOW) == NOW
    with session_scope(context.sessions) as session:
        assert calendar.user_time_zone(session, tokyo) == "Asia/Tokyo"
        assert calendar.user_time_zone(session, uuid.uuid4()) == "UTC"
