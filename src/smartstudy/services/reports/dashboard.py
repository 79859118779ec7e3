"""The dashboard: today's tasks, this week's study time, a daily accuracy trend and the
concepts the user masters most and least.

Days are the user's: "today", the week (from Monday) and each day of the trend begin at
midnight in the user's time zone (``services.localtime``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy.orm import Session

from smartstudy.services import localtime
from smartstudy.services.reports.calendar import user_time_zone
from smartstudy.services.reports.mastery import MasteryItem, mastery_items
from smartstudy.store.orm import PracticeTask, utcnow
from smartstudy.store.repositories import reports as queries
from smartstudy.store.repositories import tasks as task_rows

#: How many of today's completed tasks and of the open tasks the dashboard lists.
TODAY_SHOWN = 20
OPEN_SHOWN = 5
#: How many concepts the strongest and the weakest lists show.
MASTERY_SHOWN = 3


@dataclass(frozen=True)
class DayStat:
    """Completed tasks of one day of the user's calendar (their time zone)."""

    day: date
    tasks: int
    correct: int
    seconds: float

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.tasks if self.tasks else None


@dataclass
class Dashboard:
    today: list[PracticeTask]
    open_tasks: list[PracticeTask]
    week_start: date
    week_seconds: float
    week_tasks: int
    week_correct: int
    total_completed: int
    total_correct: int
    days: list[DayStat]
    mastery_top: list[MasteryItem]
    mastery_low: list[MasteryItem]


def dashboard(
    session: Session,
    user_id: uuid.UUID,
    *,
    now: datetime | None = None,
    days: int = 30,
    time_zone: str | None = None,
) -> Dashboard:
    """Today's tasks, this week's study time, a daily accuracy trend and mastery highlights.

    Days are the user's: "today", the week (from Monday) and each day of the trend begin at
    midnight in ``time_zone`` (by default the zone stored for the user)."""
    now = now or utcnow()
    time_zone = time_zone or user_time_zone(session, user_id)
    local_today = localtime.local_date(now, time_zone)
    today = localtime.start_of_local_day(local_today, time_zone)
    week_first_day = local_today - timedelta(days=local_today.weekday())
    week_start = localtime.start_of_local_day(week_first_day, time_zone)
    total, total_correct, _ = queries.completed_totals(session, user_id)
    week_tasks, week_correct, week_seconds = queries.completed_totals(session, user_id, week_start)
    top, low = _mastery_highlights(mastery_items(session, user_id))
    return Dashboard(
        today=queries.completed_tasks_since(session, user_id, today, TODAY_SHOWN),
        open_tasks=task_rows.open_tasks(session, user_id, OPEN_SHOWN),
        week_start=week_first_day,
        week_seconds=week_seconds,
        week_tasks=week_tasks,
        week_correct=week_correct,
        total_completed=total,
        total_correct=total_correct,
        days=daily_trend(session, user_id, local_today, days, time_zone),
        mastery_top=top,
        mastery_low=low,
    )


def daily_trend(
    session: Session, user_id: uuid.UUID, last_day: date, days: int, time_zone: str
) -> list[DayStat]:
    """One ``DayStat`` per day of the ``days`` ending on ``last_day`` (the user's calendar
    in ``time_zone``), oldest first, days without a completed task included."""
    first_day = last_day - timedelta(days=days - 1)
    buckets: dict[date, list[float]] = {
        first_day + timedelta(days=i): [0, 0, 0.0] for i in range(days)
    }
    since = localtime.start_of_local_day(first_day, time_zone)
    for at, correct, seconds in queries.completions_since(session, user_id, since):
        b = buckets.get(localtime.local_date(at, time_zone))
        if b is not None:
            b[0] += 1
            b[1] += 1 if correct else 0
            b[2] += seconds or 0.0
    return [DayStat(d, int(b[0]), int(b[1]), float(b[2])) for d, b in sorted(buckets.items())]


def _mastery_highlights(
    items: list[MasteryItem],
) -> tuple[list[MasteryItem], list[MasteryItem]]:
    """The best-mastered concepts, and the least-mastered ones not among them."""
    ranked = sorted(items, key=lambda m: m.p_mastery, reverse=True)
    top = ranked[:MASTERY_SHOWN]
    low = [m for m in reversed(ranked) if m not in top][:MASTERY_SHOWN]
    return top, low
