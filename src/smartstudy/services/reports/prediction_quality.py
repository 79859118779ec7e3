"""How the stored predictions compared with what happened, and how the user progressed:
accuracy and time per topic and difficulty, the reliability diagram, expected calibration
error and 80% interval coverage (``smartstudy.eval.metrics``, the same definitions that the
offline evaluation reports) and weekly progress.

The per-task series come from one narrow column query (``completed_rows``) and are bucketed
in Python, which stays well under a few milliseconds for thousands of tasks.
"""

from __future__ import annotations

import math
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy.orm import Session

from smartstudy.eval import metrics
from smartstudy.services import localtime
from smartstudy.services.reports.calendar import user_time_zone
from smartstudy.store.orm import DIFFICULTIES
from smartstudy.store.repositories import reports as queries

#: Completed tasks with a stored prediction needed before calibration (ECE, reliability
#: diagram) is shown: with ten bins, fewer tasks leave most bins with one or two tasks, whose
#: observed rate is 0% or 100% by chance and makes any prediction look miscalibrated.
CALIBRATION_MIN_TASKS = 30
#: Outcome vectors drawn to find the ECE that chance alone gives (``metrics.calibrated_ece``):
#: enough for a stable mean and 95th percentile, a few milliseconds for thousands of tasks.
CHANCE_DRAWS = 200


@dataclass(frozen=True)
class GroupStat:
    """Completed tasks of one topic at one difficulty."""

    subject: str
    topic: str
    difficulty: str
    n: int
    n_correct: int
    mean_seconds: float
    mean_predicted: float | None
    mean_predicted_seconds: float | None

    @property
    def accuracy(self) -> float:
        return self.n_correct / self.n if self.n else 0.0


def by_topic_and_difficulty(session: Session, user_id: uuid.UUID) -> list[GroupStat]:
    """Accuracy and time of completed tasks per (topic, difficulty), aggregated in SQL, by
    subject, topic and then difficulty from easy to hard."""
    stats = [
        GroupStat(
            subject=s,
            topic=t,
            difficulty=d,
            n=int(n),
            n_correct=int(c or 0),
            mean_seconds=float(sec or 0.0),
            mean_predicted=None if p is None else float(p),
            mean_predicted_seconds=None if pt is None else float(pt),
        )
        for s, t, d, n, c, sec, p, pt in queries.topic_difficulty_aggregates(session, user_id)
    ]
    rank = {d: i for i, d in enumerate(DIFFICULTIES)}
    return sorted(stats, key=lambda g: (g.subject, g.topic, rank.get(g.difficulty, 9)))


@dataclass(frozen=True)
class CompletedRow:
    """One completed task, the columns the analytics charts need."""

    completed_at: datetime
    topic: str
    difficulty: str
    correct: bool
    seconds: float
    p_correct: float | None
    median_s: float | None
    p10_s: float | None
    p90_s: float | None
    model_name: str | None


def completed_rows(
    session: Session, user_id: uuid.UUID, time_zone: str | None = None
) -> list[CompletedRow]:
    """The user's completed tasks, oldest first (columns only, no ORM objects), with
    ``completed_at`` on the user's clock (``time_zone``, by default the user's stored zone),
    so the weeks and chart axes built from them are the user's."""
    zone = time_zone or user_time_zone(session, user_id)
    return [
        CompletedRow(
            localtime.to_local(at, zone),
            topic,
            d,
            bool(c),
            float(sec or 0.0),
            p,
            med,
            p10,
            p90,
            model,
        )
        for at, topic, d, c, sec, p, med, p10, p90, model in queries.completed_task_columns(
            session, user_id
        )
    ]


# -- calibration -----------------------------------------------------------------------------
@dataclass(frozen=True)
class CalibrationBin:
    lower: float
    upper: float
    n: int
    mean_predicted: float
    observed: float


def calibration(rows: list[CompletedRow], n_bins: int = 10) -> list[CalibrationBin]:
    """Reliability diagram: predicted chance against observed frequency in equal-width bins,
    the bins of ``metrics.expected_calibration_error`` (``k/n <= p < (k+1)/n``, ``p == 1``
    in the last); empty bins are left out."""
    sums: dict[int, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
    for r in rows:
        if r.p_correct is None:
            continue
        k = min(n_bins - 1, max(0, int(r.p_correct * n_bins)))
        b = sums[k]
        b[0] += 1
        b[1] += r.p_correct
        b[2] += 1.0 if r.correct else 0.0
    return [
        CalibrationBin(k / n_bins, (k + 1) / n_bins, int(b[0]), b[1] / b[0], b[2] / b[0])
        for k, b in sorted(sums.items())
    ]


def calibration_shortfall(rows: list[CompletedRow]) -> int:
    """How many more completed tasks with a prediction calibration needs (0: enough)."""
    scored = sum(1 for r in rows if r.p_correct is not None)
    return max(0, CALIBRATION_MIN_TASKS - scored)


# -- prediction quality ----------------------------------------------------------------------
@dataclass(frozen=True)
class Quality:
    """How well the stored predictions matched what happened."""

    n: int
    accuracy: float | None
    mean_predicted: float | None
    brier: float | None
    ece: float | None
    coverage80: float | None
    median_abs_log_ratio: float | None
    #: The ECE that predictions calibrated perfectly would show on these tasks by chance
    #: alone: its mean and 95th percentile (``metrics.calibrated_ece``). On few tasks it is
    #: large (about 15% on 40), so an ECE below the percentile is no sign of miscalibration.
    ece_by_chance: float | None = None
    ece_by_chance_p95: float | None = None
    #: Tasks with a predicted chance (those the Brier score and the ECE are about).
    scored: int = 0
    #: Tasks with a predicted interval, and the range the coverage of exact 80% intervals
    #: falls in on that many tasks 95 times in 100 (``metrics.coverage_by_chance``).
    timed: int = 0
    coverage_by_chance: tuple[float, float] | None = None

    @property
    def ece_beyond_chance(self) -> bool | None:
        """Whether the ECE is larger than chance alone gives 95 times in 100."""
        if self.ece is None or self.ece_by_chance_p95 is None:
            return None
        return self.ece > self.ece_by_chance_p95

    @property
    def coverage_beyond_chance(self) -> bool | None:
        """Whether the coverage is outside the range chance alone gives exact intervals."""
        if self.coverage80 is None or self.coverage_by_chance is None:
            return None
        low, high = self.coverage_by_chance
        return not low <= self.coverage80 <= high


def prediction_quality(rows: list[CompletedRow], n_bins: int = 10) -> Quality:
    """Accuracy of every completed task; Brier score, mean predicted chance and ECE
    (``n_bins`` bins) of those with a predicted chance, with the ECE chance alone would give
    them; coverage of the 80% interval, with the range chance alone would give it, and the
    median of |log(actual / predicted median)| of those with a predicted time.

    A task counts as timed when its time and its predicted median, p10 and p90 are positive
    and p10 <= p90 (the service never stores another interval; a reversed one is no interval
    and is left out instead of being counted as a miss)."""
    if not rows:
        return Quality(0, None, None, None, None, None, None)
    brier = ece = mean_p = chance = chance_p95 = None
    scored = [r for r in rows if r.p_correct is not None]
    if scored:
        y = [float(r.correct) for r in scored]
        p = [float(r.p_correct) for r in scored]  # type: ignore[arg-type]
        brier = sum((pi - yi) ** 2 for pi, yi in zip(p, y, strict=True)) / len(p)
        mean_p = sum(p) / len(p)
        ece = metrics.expected_calibration_error(y, p, n_bins)
        chance, chance_p95 = metrics.calibrated_ece(p, n_bins, draws=CHANCE_DRAWS)
    coverage = median_log = chance_range = None
    timed = [r for r in rows if _has_interval(r)]
    if timed:
        chance_range = metrics.coverage_by_chance(len(timed))
        actual = [r.seconds for r in timed]
        coverage = metrics.interval_coverage(
            actual, [r.p10_s for r in timed], [r.p90_s for r in timed]
        )
        logs = sorted(abs(math.log(r.seconds / r.median_s)) for r in timed)  # type: ignore[operator]
        median_log = logs[len(logs) // 2]
    return Quality(
        n=len(rows),
        accuracy=sum(r.correct for r in rows) / len(rows),
        mean_predicted=mean_p,
        brier=brier,
        ece=ece,
        coverage80=coverage,
        median_abs_log_ratio=median_log,
        ece_by_chance=chance,
        ece_by_chance_p95=chance_p95,
        scored=len(scored),
        timed=len(timed),
        coverage_by_chance=chance_range,
    )


def _has_interval(r: CompletedRow) -> bool:
    """Whether the task has a time and an ordered, positive predicted interval and median."""
    if r.seconds <= 0 or r.median_s is None or r.p10_s is None or r.p90_s is None:
        return False
    return r.median_s > 0 and 0 < r.p10_s <= r.p90_s


# -- progress --------------------------------------------------------------------------------
@dataclass(frozen=True)
class PeriodStat:
    """Completed tasks of one week (starting Monday, on the user's calendar)."""

    start: date
    tasks: int
    correct: int
    seconds: float
    mean_predicted: float | None

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.tasks if self.tasks else None


def progress_by_week(rows: list[CompletedRow]) -> list[PeriodStat]:
    """Tasks, accuracy, study time and mean predicted chance per week, with empty weeks.
    A task's day is the date of ``completed_at`` in the zone it is given in (``completed_rows``
    gives the user's; a naive time counts as UTC)."""
    if not rows:
        return []
    weeks: dict[date, list[float]] = {}
    for r in rows:
        day = r.completed_at.date()
        start = day - timedelta(days=day.weekday())
        b = weeks.setdefault(start, [0, 0, 0.0, 0.0, 0])
        b[0] += 1
        b[1] += 1 if r.correct else 0
        b[2] += r.seconds
        if r.p_correct is not None:
            b[3] += r.p_correct
            b[4] += 1
    out = []
    current, last = min(weeks), max(weeks)
    while current <= last:
        b = weeks.get(current, [0, 0, 0.0, 0.0, 0])
        out.append(
            PeriodStat(
                start=current,
                tasks=int(b[0]),
                correct=int(b[1]),
                seconds=float(b[2]),
                mean_predicted=(b[3] / b[4]) if b[4] else None,
            )
        )
        current += timedelta(days=7)
    return out
