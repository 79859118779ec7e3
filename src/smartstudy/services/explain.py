"""Why this prediction: the facts behind a (topic, difficulty) prediction, in plain words.

A student sees a chance of success and a time range before a task. This module says where
they come from, from the same evidence the models learn from: the student's own record in
that cell (their last tasks at that topic and difficulty), how other students do there, the
student's typical time, and what the 80% range means. The model's name and version are kept
apart (``Explanation.model``), so pages can put them behind a details toggle.

Cost: two queries per explanation, both bounded. The student's record reads at most
``RECENT`` rows of their own tasks (the ``user_id`` index); the population rate is one
aggregate over the cell's completed tasks (the ``topic_id`` index). Where the cell has fewer
than ``FEW_OTHERS`` tasks by others, a third aggregate gives their record at that difficulty
in every topic; where the student has fewer than ``FEW_OWN`` there, two grouped queries give
the student's ``Standing``. A prediction just made takes all of these from the predictor's
counts instead.
"""

from __future__ import annotations

import math
import statistics
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from smartstudy.services.predictor import Prediction, PredictionService, standing_of
from smartstudy.store.orm import PracticeTask
from smartstudy.store.repositories import tasks as tasks_repo

#: How many of the student's latest tasks in the cell are summarised.
RECENT = 10
#: Below this many own tasks the wording says that the prediction leans on other students.
FEW_OWN = 3
#: Below this many tasks by others their rate is given as counts, not as a percentage.
FEW_OTHERS = 5
#: A student's record against other students' rates is told from this many tasks on, and
#: only where it differs from what those rates give by at least a tenth (and two tasks).
STANDING_MIN_TASKS = 10
#: The expected median is explained against the student's usual time in the cell when the
#: two differ by more than this in log time (a quarter: 5 minutes against 4).
TIME_GAP = math.log(1.25)


@dataclass(frozen=True)
class CellRecord:
    """A student's latest completed tasks in one (topic, difficulty) cell (at most RECENT)."""

    n: int
    correct: int
    median_time_s: float | None


@dataclass(frozen=True)
class PopulationRate:
    """Other students' completed tasks in the cell."""

    n_tasks: int
    correct: int
    n_users: int
    #: Where the cell has fewer than ``FEW_OTHERS`` such tasks: the other students' record
    #: at the same difficulty in every topic, which the prediction leans on instead.
    level: PopulationRate | None = None
    #: The student's record in the cells others have practised too, against their rates
    #: there (``Standing``), where the student has fewer than ``FEW_OWN`` tasks in the cell.
    standing: Standing | None = None

    @property
    def rate(self) -> float | None:
        return self.correct / self.n_tasks if self.n_tasks else None


@dataclass(frozen=True)
class Standing:
    """A student's completed tasks and successes in the cells other students have practised
    too, and the successes the other students' rate in each of those cells would give."""

    n_tasks: int
    correct: int
    expected: float


@dataclass(frozen=True)
class Explanation:
    """The sentences to show, the model for a details toggle, and the facts behind them."""

    sentences: list[str]
    model: str | None  # "Baseline version 3": for a details toggle, not the main text
    record: CellRecord
    population: PopulationRate


def own_record(
    session: Session,
    user_id: uuid.UUID,
    topic_id: uuid.UUID,
    difficulty: str,
    before: datetime | None = None,
) -> CellRecord:
    """The student's last ``RECENT`` completed tasks in the cell (completed before ``before``)."""
    rows = tasks_repo.cell_outcomes(
        session, user_id, topic_id, difficulty, before=before, limit=RECENT
    )
    times = [t for _, t in rows if t is not None]
    return CellRecord(
        n=len(rows),
        correct=sum(1 for ok, _ in rows if ok),
        median_time_s=statistics.median(times) if times else None,
    )


def known_population(
    predictor: PredictionService,
    session: Session,
    user_id: uuid.UUID,
    topic_id: uuid.UUID,
    difficulty: str,
) -> PopulationRate:
    """The other students' record in the cell from the counts the predictor keeps
    (``PredictionService.others_in_cell``): for a prediction just made, no query. With
    fewer than ``FEW_OTHERS`` tasks there, also their record at the difficulty in every
    topic (``PredictionService.others_at_level``); with fewer than ``FEW_OWN`` of the
    student's own, the student's ``Standing`` (``PredictionService.standing``)."""
    cell = predictor.others_in_cell(session, user_id, topic_id, difficulty)
    level = None
    if cell[0] < FEW_OTHERS:
        level = PopulationRate(*predictor.others_at_level(session, user_id, difficulty))
    standing = None
    if predictor.own_in_cell(session, user_id, topic_id, difficulty) < FEW_OWN:
        standing = Standing(*predictor.standing(session, user_id))
    return PopulationRate(*cell, level=level, standing=standing)


def population_rate(
    session: Session,
    user_id: uuid.UUID,
    topic_id: uuid.UUID,
    difficulty: str,
    before: datetime | None = None,
) -> PopulationRate:
    """Other students' completed tasks in the cell, as one aggregate query; with fewer than
    ``FEW_OTHERS`` of them, a second one at the difficulty in every topic."""
    cell = _others_record(session, user_id, difficulty, before, topic_id)
    if cell.n_tasks < FEW_OTHERS:
        cell = replace(cell, level=_others_record(session, user_id, difficulty, before))
    return cell


def standing(session: Session, user_id: uuid.UUID, before: datetime | None = None) -> Standing:
    """``Standing`` from the database: the student's tasks per cell, then the other
    students' in the same topics (two grouped queries)."""
    own = tasks_repo.cell_tallies(session, user_id=user_id, before=before)
    topics = {topic for topic, _ in own}
    others = tasks_repo.cell_tallies(session, other_than=user_id, topic_ids=topics, before=before)
    return Standing(*standing_of((*mine, *others.get(key, (0, 0))) for key, mine in own.items()))


def _others_record(
    session: Session,
    user_id: uuid.UUID,
    difficulty: str,
    before: datetime | None,
    topic_id: uuid.UUID | None = None,
) -> PopulationRate:
    """Other students' completed tasks at ``difficulty``, in one topic or in all."""
    stmt = select(
        func.count(),
        func.coalesce(func.sum(case((PracticeTask.is_correct.is_(True), 1), else_=0)), 0),
        func.count(func.distinct(PracticeTask.user_id)),
    ).where(
        PracticeTask.difficulty == difficulty,
        PracticeTask.completed_at.is_not(None),
        PracticeTask.user_id != user_id,
    )
    if topic_id is not None:
        stmt = stmt.where(PracticeTask.topic_id == topic_id)
    if before is not None:
        stmt = stmt.where(PracticeTask.completed_at < before)
    n, correct, users = session.connection().execute(stmt).one()  # plain row, no ORM step
    return PopulationRate(n_tasks=int(n), correct=int(correct), n_users=int(users))


def spoken_duration(seconds: float) -> str:
    """A time for a sentence: "40 seconds", "about 4 minutes", "about 1.5 hours"."""
    if seconds < 90:
        n = max(1, round(seconds))
        return f"{n} second{'' if n == 1 else 's'}"
    if seconds < 90 * 60:
        n = round(seconds / 60)
        return f"about {n} minute{'' if n == 1 else 's'}"
    return f"about {seconds / 3600:.1f} hours"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def record_sentence(record: CellRecord, cell: str) -> str:
    """What the student has done in the cell, worded for none, few and enough tasks."""
    if record.n == 0:
        return (
            f"This is your first {cell} task, so the prediction leans on how other students "
            "do and on your other tasks."
        )
    if record.n < FEW_OWN:
        return (
            f"You have done {_plural(record.n, f'{cell} task')} so far and solved "
            f"{record.correct}; with so few, the prediction still leans on other students."
        )
    if record.n < RECENT:
        return f"You solved {record.correct} of your {record.n} {cell} tasks so far."
    return f"You solved {record.correct} of your last {record.n} {cell} tasks."


def level_sentence(population: PopulationRate, difficulty: str) -> str | None:
    """Where the cell has few tasks by others: how they do at ``difficulty`` in every topic,
    which is what the prediction leans on (None when that is unknown or as scarce)."""
    level = population.level
    if population.n_tasks >= FEW_OTHERS or level is None or level.n_tasks < FEW_OTHERS:
        return None
    return (
        f"Across all topics, other students solve about {round(100 * (level.rate or 0.0))}% "
        f"of {difficulty} tasks ({_plural(level.n_tasks, 'task')})."
    )


def standing_sentence(record: CellRecord, standing: Standing | None) -> str | None:
    """Where the prediction leans on the student's other tasks (fewer than ``FEW_OWN`` in
    the cell): their record against other students' rates in the same cells, when it
    differs from them by at least a tenth of their tasks (and two)."""
    if standing is None or record.n >= FEW_OWN or standing.n_tasks < STANDING_MIN_TASKS:
        return None
    if abs(standing.correct - standing.expected) < max(2.0, 0.1 * standing.n_tasks):
        return None
    return (
        f"On the topics and difficulties you have practised you solved {standing.correct} "
        f"of your {standing.n_tasks} tasks, where other students would solve about "
        f"{round(standing.expected)}; the prediction takes your record into account."
    )


def population_sentence(population: PopulationRate) -> str:
    """How other students do in the cell."""
    if population.n_tasks == 0:
        return "No other student has done one of these yet."
    if population.n_tasks < FEW_OTHERS:
        return (
            f"Other students have done only {_plural(population.n_tasks, 'such task')} "
            f"and solved {population.correct}."
        )
    rate = population.rate or 0.0
    return (
        f"Other students solve about {round(100 * rate)}% of these "
        f"({_plural(population.n_tasks, 'task')} by {_plural(population.n_users, 'student')})."
    )


def time_sentences(
    record: CellRecord, p10: float | None, p90: float | None, median: float | None = None
) -> list[str]:
    """Typical time, why the expected ``median`` differs from it where it differs clearly
    (by more than ``TIME_GAP``), and the meaning of the 80% range."""
    out = []
    if record.median_time_s is not None:
        own = record.median_time_s
        took = spoken_duration(own)
        if record.n == 1:
            out.append(f"Your one such task took you {took}.")
        else:
            out.append(f"Your usual time on these is {took}.")
        if median is not None and median > 0 and abs(math.log(median / own)) > TIME_GAP:
            longer = "longer" if median > own else "shorter"
            out.append(
                f"The expected time, {spoken_duration(median)}, is {longer} because it also "
                "weighs your other tasks and how long other students take on these; the more "
                "of these you do, the more it follows your own times."
            )
    if p10 is not None and p90 is not None:
        out.append(
            f"The 80% range, {spoken_duration(p10)} to {spoken_duration(p90)}, is where 8 of "
            "10 of your times should fall."
        )
    return out


def explain(
    session: Session,
    user_id: uuid.UUID,
    topic_id: uuid.UUID,
    topic_name: str,
    difficulty: str,
    *,
    p10: float | None,
    p90: float | None,
    model_name: str | None,
    model_version: str | None,
    median: float | None = None,
    before: datetime | None = None,
    population: PopulationRate | None = None,
) -> Explanation:
    """The plain-language explanation of one prediction for ``user_id`` in (topic, difficulty).

    ``before`` limits the evidence to tasks completed before it: the facts a stored
    prediction was made from (pass the task's creation time); None means everything so far.
    ``population``: the other students' record in the cell, when the caller has it (the
    predictor keeps it up to date, ``PredictionService.others_in_cell``); otherwise it is
    one aggregate query.
    """
    record = own_record(session, user_id, topic_id, difficulty, before)
    if population is None:
        population = population_rate(session, user_id, topic_id, difficulty, before)
        if record.n < FEW_OWN:
            population = replace(population, standing=standing(session, user_id, before))
    cell = f"{difficulty} {topic_name}"
    sentences = [record_sentence(record, cell), population_sentence(population)]
    for extra in (
        level_sentence(population, difficulty),
        standing_sentence(record, population.standing),
    ):
        if extra is not None:
            sentences.append(extra)
    sentences += time_sentences(record, p10, p90, median)
    model = f"{model_name} version {model_version}" if model_name else None
    return Explanation(sentences=sentences, model=model, record=record, population=population)


def for_task(
    session: Session,
    task: PracticeTask,
    topic_name: str | None = None,
    population: PopulationRate | None = None,
) -> Explanation:
    """The explanation of a task's stored prediction, from the tasks completed before it
    (``topic_name`` spares loading the task's topic; ``population``, for a task just
    created, the other students' record so far: see ``explain``)."""
    return explain(
        session,
        task.user_id,
        task.topic_id,
        topic_name or task.topic.name,
        task.difficulty,
        p10=task.predicted_time_p10_s,
        p90=task.predicted_time_p90_s,
        median=task.predicted_time_median_s,
        model_name=task.model_name,
        model_version=task.model_version,
        before=task.created_at,
        population=population,
    )


def for_prediction(
    session: Session,
    user_id: uuid.UUID,
    topic_id: uuid.UUID,
    topic_name: str,
    difficulty: str,
    prediction: Prediction,
    population: PopulationRate | None = None,
) -> Explanation:
    """The explanation of a fresh prediction (a preview), from everything completed so far."""
    return explain(
        session,
        user_id,
        topic_id,
        topic_name,
        difficulty,
        p10=prediction.time_p10_s,
        p90=prediction.time_p90_s,
        median=prediction.time_median_s,
        model_name=prediction.model_name,
        model_version=prediction.model_version,
        population=population,
    )


def shown_next(session: Session, task: PracticeTask, prediction: Prediction) -> dict[str, Any]:
    """What the result page shows as the next prediction after ``task``: the prediction and
    its explanation, as stored in ``practice_tasks.next_prediction``."""
    why = for_prediction(
        session, task.user_id, task.topic_id, task.topic.name, task.difficulty, prediction
    )
    return {
        "p_correct": prediction.p_correct,
        "time_median_s": prediction.time_median_s,
        "time_p10_s": prediction.time_p10_s,
        "time_p90_s": prediction.time_p90_s,
        "model_name": prediction.model_name,
        "model_version": prediction.model_version,
        "sentences": list(why.sentences),
        "at": datetime.now(UTC).isoformat(),
    }


__all__ = [
    "FEW_OTHERS",
    "FEW_OWN",
    "RECENT",
    "CellRecord",
    "Explanation",
    "PopulationRate",
    "Standing",
    "explain",
    "for_prediction",
    "for_task",
    "level_sentence",
    "own_record",
    "population_rate",
    "population_sentence",
    "record_sentence",
    "shown_next",
    "spoken_duration",
    "standing",
    "standing_sentence",
    "time_sentences",
]
