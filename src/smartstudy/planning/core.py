"""Recommendations and exam plans from predicted success and time.

Inputs are what the models predict now for each (topic, difficulty) cell
(:class:`CellForecast`) and a little history per topic (:class:`TopicState`). Both functions
are pure, so the same state gives the same answer; the app recomputes them on every request,
which is what re-plans after each completion and after a missed day.

**Recommendations** (:func:`recommend`) score each topic's best cell on four things, each
between 0 and 1:

- *band*: desirable difficulty. A predicted success inside the target band (60–85 % by
  default) scores 1, and the score falls off outside it (Bjork's "desirable difficulties";
  Wilson et al. 2019 put the fastest learning near 85 % success);
- *need*: low mastery (BKT, from quizzes) or low recent accuracy in the topic;
- *spacing*: how long ago the topic was practised (never: 1; yesterday: 0.28);
- *weight*: the exam's weight of the topic, relative to the heaviest (1 without an exam).

``score = weight x (0.4 band + 0.4 need + 0.2 spacing)``.

**Plans** (:func:`build_plan`) fill each study day, greedily, with the task that adds the most
weighted readiness per predicted minute. Readiness of a topic is the predicted success at the
exam's difficulty on the exam date. The planner's own model of learning, stated here because
it is an assumption and not a fitted result:

- a task shifts the topic's log-odds of success, at every difficulty, by ``GAIN x
  PRACTICE_SCALE / (PRACTICE_SCALE + n) x exp(-((logit p - logit p*) / GAIN_WIDTH)^2 / 2)``:
  less with each task already done on the topic (``n``: its history, and the planned tasks as
  far as they are still remembered, fading like their gains; same-day tasks count as the
  fraction below: the power law of practice, Newell & Rosenbloom 1981),
  and most for tasks near the middle of the band ``p*``, less for tasks far too easy or too
  hard (desirable difficulty);
- same-day practice on a topic pays less: a task's gain fades as
  ``exp(-minutes already spent on the topic that day / MASSED_MINUTES)``;
- a gain fades towards the exam as ``exp(-days / S)``; the stability ``S`` starts at
  ``STABILITY_DAYS`` and grows by ``STABILITY_GROWTH`` with each earlier day the topic was
  practised, so spreading practice over days pays (the spacing effect);
- below the target, a step of readiness (in log-odds) counts ``1 + s`` at a shortfall ``s``,
  so the widest gaps are closed first and a topic far behind gets its share from the first
  day; above the target a step counts ``ABOVE_TARGET``: the plan closes gaps before it
  polishes;
- predicted times do not change with practice.

A day is filled in about ``STEPS_PER_DAY`` steps, each a block of tasks of one (topic,
difficulty) lasting about a sixth of the day's budget (at least one task), so short tasks
do not make planning slow.

Every study day gets at least one task (the shortest, if nothing fits), so a day's predicted
minutes exceed its budget by at most its smallest task. Readiness intervals combine the
uncertainty of today's estimate (from how many tasks the topic has) with half of the projected
gain. The workload curve repeats the plan at other daily budgets.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Self

import numpy as np

DIFFICULTIES: tuple[str, ...] = ("easy", "medium", "hard")

#: Log-odds gained by a topic's first task at the sweet spot (planner assumption, see the
#: module doc).
GAIN = 0.2
#: Gains shrink as PRACTICE_SCALE / (PRACTICE_SCALE + tasks already done on the topic).
PRACTICE_SCALE = 10.0
#: Width, in log-odds, of the sweet spot of difficulty.
GAIN_WIDTH = 1.75
#: Same-day practice on a topic: a task's gain fades as exp(-minutes already spent on the
#: topic that day / MASSED_MINUTES).
MASSED_MINUTES = 45.0
#: Days over which a gain fades by 1/e, for a topic not yet practised in the plan.
STABILITY_DAYS = 7.0
#: Stability grows by this factor with each earlier day the topic was practised...
STABILITY_GROWTH = 1.6
#: ... up to this many days (7 x 1.6^12 is about 1,960 days: no fading to speak of).
MAX_STABILITY_LEVEL = 12
#: Readiness above the target counts this much (below it: fully), so the plan closes gaps
#: before it polishes.
ABOVE_TARGET = 0.25
#: At most this many tasks are planned on one day.
MAX_TASKS_PER_DAY = 200
#: A day is filled in about this many steps, each a block of tasks of one cell.
STEPS_PER_DAY = 6
#: Prior strength, in tasks, of today's estimate of a topic (for the readiness interval).
PRIOR_TASKS = 4.0
#: The workload curve's daily budgets (the exam's own is added).
WORKLOAD_MINUTES: tuple[int, ...] = (10, 20, 30, 45, 60, 90, 120)
#: ``minutes_needed`` is searched in steps of this many minutes up to the cap.
NEEDED_STEP = 5
NEEDED_CAP = 240
_Z80 = 1.2815515655446004
_EPS = 1e-4


@dataclass(frozen=True)
class CellForecast:
    """What the models predict now for one (topic, difficulty)."""

    topic_id: str
    difficulty: str
    p_correct: float
    time_median_s: float
    time_p10_s: float
    time_p90_s: float


@dataclass(frozen=True)
class TopicState:
    """A student's history in one topic, and the topic's weight in the exam."""

    topic_id: str
    name: str
    weight: float = 1.0
    mastery: float | None = None
    recent_correct: int = 0
    recent_total: int = 0
    n_tasks: int = 0
    days_since_practice: float | None = None


@dataclass(frozen=True)
class RecommendationSettings:
    band: tuple[float, float] = (0.60, 0.85)
    limit: int = 5


@dataclass(frozen=True)
class _PredictedTask:
    """A (topic, difficulty) task with its predicted success and time: what a
    recommendation and a planned task both show."""

    topic_id: str
    topic_name: str
    difficulty: str
    p_correct: float
    time_median_s: float
    time_p10_s: float
    time_p90_s: float

    @classmethod
    def from_forecast(
        cls, cell: CellForecast, topic_name: str, p_correct: float, **rest: Any
    ) -> Self:
        """The task of ``cell``'s topic and difficulty, with its forecast times and the chance
        ``p_correct`` (a plan may expect another than the forecast); ``rest``: the fields of
        the subclass."""
        return cls(
            topic_id=cell.topic_id,
            topic_name=topic_name,
            difficulty=cell.difficulty,
            p_correct=p_correct,
            time_median_s=cell.time_median_s,
            time_p10_s=cell.time_p10_s,
            time_p90_s=cell.time_p90_s,
            **rest,
        )


@dataclass(frozen=True)
class Recommendation(_PredictedTask):
    score: float
    reason: str
    components: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ExamSpec:
    exam_date: date
    daily_minutes: int
    days_off: frozenset[date] = frozenset()
    weekdays_off: frozenset[int] = frozenset()
    target: float = 0.8
    exam_difficulty: str = "medium"

    def is_day_off(self, day: date) -> bool:
        return day in self.days_off or day.weekday() in self.weekdays_off


@dataclass(frozen=True)
class PlannedTask(_PredictedTask):
    reason: str


@dataclass(frozen=True)
class PlanDay:
    day: date
    budget_minutes: float
    day_off: bool
    tasks: tuple[PlannedTask, ...]
    minutes: float


@dataclass(frozen=True)
class Readiness:
    topic_id: str
    topic_name: str
    weight: float
    now: float
    p: float
    low: float
    high: float
    reaches_target: bool


@dataclass(frozen=True)
class WorkloadPoint:
    daily_minutes: int
    readiness: float
    topics_at_target: int


@dataclass(frozen=True)
class Plan:
    today: date
    exam_date: date
    daily_minutes: int
    target: float
    exam_difficulty: str
    days: tuple[PlanDay, ...]
    readiness: tuple[Readiness, ...]
    trajectory: dict[str, tuple[float, ...]]
    workload: tuple[WorkloadPoint, ...]
    minutes_needed: int | None
    summary: str


# -- small helpers -------------------------------------------------------------------------


def _clip(p: float) -> float:
    return min(max(float(p), _EPS), 1.0 - _EPS)


def _logit(p: float) -> float:
    p = _clip(p)
    return math.log(p / (1.0 - p))


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def _percent(p: float) -> str:
    return f"{round(100 * p)}%"


def _cells(
    topics: Sequence[TopicState], forecasts: Sequence[CellForecast]
) -> dict[tuple[str, str], CellForecast]:
    """The forecasts by (topic, difficulty); every topic needs all three difficulties."""
    cells = {(f.topic_id, f.difficulty): f for f in forecasts}
    for t in topics:
        missing = [d for d in DIFFICULTIES if (t.topic_id, d) not in cells]
        if missing:
            raise ValueError(f"topic {t.name!r} has no forecast for {', '.join(missing)}")
    return cells


def _weights(topics: Sequence[TopicState]) -> dict[str, float]:
    """Exam weights normalised to sum to 1."""
    for t in topics:
        if not (t.weight > 0 and math.isfinite(t.weight)):
            raise ValueError(f"topic {t.name!r}: weight must be a positive number")
    total = sum(t.weight for t in topics)
    return {t.topic_id: t.weight / total for t in topics}


# -- recommendations -----------------------------------------------------------------------


def _band_score(p: float, band: tuple[float, float]) -> float:
    low, high = band
    distance = max(low - p, p - high, 0.0)
    return math.exp(-((distance / 0.10) ** 2))


def _need(topic: TopicState, p_medium: float) -> tuple[float, str]:
    """How much the topic needs practice (0..1), and the fact that says so."""
    parts: list[float] = []
    facts: list[str] = []
    if topic.mastery is not None:
        parts.append(1.0 - topic.mastery)
        facts.append(f"mastery of {topic.name} is {_percent(topic.mastery)}")
    if topic.recent_total >= 3:
        parts.append(1.0 - topic.recent_correct / topic.recent_total)
        facts.append(
            f"you solved {topic.recent_correct} of your last {topic.recent_total} "
            f"{topic.name} tasks"
        )
    if not parts:
        parts.append(1.0 - p_medium)
        if topic.n_tasks == 0:
            facts.append(f"you have not practised {topic.name} yet")
        else:
            facts.append(f"at medium you are predicted to solve {_percent(p_medium)}")
    return float(np.mean(parts)), "; ".join(facts)


def _spacing(days: float | None) -> float:
    if days is None:
        return 1.0
    return 1.0 - math.exp(-max(days, 0.0) / 3.0)


def _best_difficulty(
    topic: TopicState, cells: dict[tuple[str, str], CellForecast], band: tuple[float, float]
) -> list[tuple[float, str]]:
    """The topic's difficulties, best band fit first (ties: nearest the band's middle)."""
    middle = (band[0] + band[1]) / 2
    ranked = []
    for d in DIFFICULTIES:
        p = cells[(topic.topic_id, d)].p_correct
        ranked.append((_band_score(p, band), -abs(p - middle), d))
    ranked.sort(reverse=True)
    return [(score, d) for score, _, d in ranked]


def _band_sentence(p: float, difficulty: str, band: tuple[float, float]) -> str:
    low, high = band
    where = f"at {difficulty} you are predicted to succeed {_percent(p)} of the time"
    if low <= p <= high:
        return f"{where}, which is where practice pays most"
    span = f"{_percent(low)}–{_percent(high)}"
    side = "easy" if p > high else "hard"
    closest = f"the closest of the levels to the {span} where practice pays most"
    return f"{where}: a little {side}, but {closest}"


def _days_sentence(days: float | None) -> str:
    if days is None:
        return ""
    whole = int(days)
    if whole <= 0:
        return "practised today"
    return f"last practised {whole} day{'s' if whole != 1 else ''} ago"


def recommend(
    topics: Sequence[TopicState],
    forecasts: Sequence[CellForecast],
    settings: RecommendationSettings = RecommendationSettings(),
) -> list[Recommendation]:
    """The best (topic, difficulty) choices now, best first (see the module doc)."""
    if not topics:
        return []
    low, high = settings.band
    if not (0.0 < low < high < 1.0):
        raise ValueError("band must satisfy 0 < low < high < 1")
    cells = _cells(topics, forecasts)
    heaviest = max(t.weight for t in topics)
    _weights(topics)
    firsts: list[Recommendation] = []
    seconds: list[Recommendation] = []
    for topic in topics:
        need, need_fact = _need(topic, cells[(topic.topic_id, "medium")].p_correct)
        spacing = _spacing(topic.days_since_practice)
        weight = topic.weight / heaviest
        for rank, (band_score, difficulty) in enumerate(
            _best_difficulty(topic, cells, settings.band)
        ):
            if rank > 1:
                break
            cell = cells[(topic.topic_id, difficulty)]
            score = weight * (0.4 * band_score + 0.4 * need + 0.2 * spacing)
            facts = [need_fact, _band_sentence(cell.p_correct, difficulty, settings.band)]
            when = _days_sentence(topic.days_since_practice)
            if when:
                facts.append(when)
            reason = "; ".join(facts)
            rec = Recommendation.from_forecast(
                cell,
                topic.name,
                cell.p_correct,
                score=round(score, 4),
                reason=reason[0].upper() + reason[1:] + ".",
                components={
                    "band": round(band_score, 4),
                    "need": round(need, 4),
                    "spacing": round(spacing, 4),
                    "weight": round(weight, 4),
                },
            )
            (firsts if rank == 0 else seconds).append(rec)
    firsts.sort(key=lambda r: (-r.score, r.topic_name, r.difficulty))
    seconds.sort(key=lambda r: (-r.score, r.topic_name, r.difficulty))
    return (firsts + seconds)[: max(settings.limit, 0)]


# -- plans ---------------------------------------------------------------------------------


#: The log-odds of success where a task teaches most: the middle of the default band.
SWEET_SPOT = math.log(0.725 / 0.275)


def gain(p: float) -> float:
    """Log-odds one task at predicted success ``p`` adds (the planner's assumption)."""
    return _gain_at(_logit(p))


def _gain_at(log_odds: float) -> float:
    return GAIN * math.exp(-0.5 * ((log_odds - SWEET_SPOT) / GAIN_WIDTH) ** 2)


@dataclass
class _Topic:
    """One topic while a plan is built, day after day: base log-odds per difficulty, and the
    gains planned so far. Gains are kept summed per stability (stabilities take the values
    ``STABILITY_DAYS x STABILITY_GROWTH^k``), each sum faded to the current day, so moving
    on a day or adding a gain costs the same however long the plan is."""

    state: TopicState
    weight: float
    base: dict[str, float]
    minutes: dict[str, float]
    horizon: int
    #: tasks done on the topic before the plan
    history: float = 0.0
    #: the gains faded to the exam day, kept as tasks are added
    exam_shift: float = 0.0
    #: the day the sums below are faded to
    today: int = 0
    #: k -> the gains made at stability STABILITY_DAYS x STABILITY_GROWTH^k, faded to today
    sums: dict[int, float] = field(default_factory=dict)
    #: k -> the planned tasks (in full tasks: same-day practice counts less) made at that
    #: stability, faded to today like their gains
    tasks: dict[int, float] = field(default_factory=dict)
    #: days on which the topic was practised in the plan, before today
    days_before: int = 0
    practised_today: bool = False

    def advance(self, day: int) -> None:
        """Move on to ``day``: the gains so far fade by the days passed."""
        passed = day - self.today
        if passed <= 0:
            return
        for k in self.sums:
            kept = math.exp(-passed / _stability(k))
            self.sums[k] *= kept
            self.tasks[k] *= kept
        self.days_before += self.practised_today
        self.practised_today = False
        self.today = day

    def shift(self) -> float:
        """Log-odds gained so far, faded to today."""
        return sum(self.sums.values())

    @property
    def practised(self) -> float:
        """Tasks that slow further learning (the power law of practice): the history, and
        the planned tasks as far as they are still remembered."""
        return self.history + sum(self.tasks.values())

    def stability(self) -> float:
        return _stability(self._level())

    def _level(self) -> int:
        return min(self.days_before, MAX_STABILITY_LEVEL)

    def add(self, g: float, effective: float) -> None:
        """Tasks today worth ``effective`` full tasks that gained ``g`` in all."""
        k = self._level()
        self.sums[k] = self.sums.get(k, 0.0) + g
        self.tasks[k] = self.tasks.get(k, 0.0) + effective
        self.exam_shift += g * math.exp(-(self.horizon - self.today) / _stability(k))
        self.practised_today = True


def _stability(level: int) -> float:
    return STABILITY_DAYS * STABILITY_GROWTH**level


def _topics(
    topics: Sequence[TopicState], cells: dict[tuple[str, str], CellForecast], horizon: int
) -> list[_Topic]:
    weights = _weights(topics)
    return [
        _Topic(
            state=t,
            weight=weights[t.topic_id],
            horizon=horizon,
            history=float(max(t.n_tasks, 0)),
            base={d: _logit(cells[(t.topic_id, d)].p_correct) for d in DIFFICULTIES},
            minutes={
                d: max(cells[(t.topic_id, d)].time_median_s, 1.0) / 60.0 for d in DIFFICULTIES
            },
        )
        for t in topics
    ]


def _study_days(exam: ExamSpec, today: date) -> list[date]:
    if exam.exam_date <= today:
        raise ValueError("the exam date must be after today")
    return [today + timedelta(days=i) for i in range((exam.exam_date - today).days)]


@dataclass
class _Choice:
    """A block of ``count`` tasks of one (topic, difficulty) on one day."""

    topic: _Topic
    difficulty: str
    count: int
    #: what the block is worth in full tasks (same-day practice counts less)
    effective: float
    minutes: float
    #: predicted success at the start of the block
    p: float
    #: log-odds the block adds (before fading to the exam)
    gain: float
    #: the topic's projected readiness on the exam date before this block
    ready: float
    value: float


def _utility(log_odds: float, target: float) -> float:
    """What readiness is worth, in log-odds: below the target each step counts ``1 + s`` at
    a shortfall ``s``, so the further behind a topic is, the more its progress counts (the
    plan closes the widest gaps first, from the first day); above the target a step counts
    ``ABOVE_TARGET``."""
    shortfall = target - log_odds
    if shortfall > 0:
        return -(shortfall + shortfall * shortfall / 2)
    return -ABOVE_TARGET * shortfall


def _massed(count: int, minutes: float, done: float) -> float:
    """How many full tasks ``count`` tasks of ``minutes`` each are worth after ``done``
    minutes on the topic that day (same-day practice fades as exp(-minutes / MASSED_MINUTES))."""
    fade = math.exp(-minutes / MASSED_MINUTES)
    return math.exp(-done / MASSED_MINUTES) * (1.0 - fade**count) / (1.0 - fade)


def _block_gain(log_odds: float, worth: float, practised: float) -> float:
    """Log-odds gained by tasks worth ``worth`` full tasks, after ``practised`` on the topic
    (see the module doc; the practice factor is taken at the block's middle)."""
    practice = PRACTICE_SCALE / (PRACTICE_SCALE + practised + worth / 2)
    return _gain_at(log_odds) * practice * worth


def _best_block(
    plan: list[_Topic],
    exam: ExamSpec,
    day: int,
    start: dict[str, float],
    done: dict[str, float],
    room: float,
    block: float,
    most: int,
) -> _Choice | None:
    """The block of tasks adding the most value per minute that fits in ``room``. A block
    is about ``block`` minutes of one cell (at least one task), so a day takes a bounded
    number of steps however short its tasks are."""
    best: _Choice | None = None
    best_key = -math.inf
    goal = _logit(exam.target)
    for topic in plan:
        tid = topic.state.topic_id
        at_exam = topic.base[exam.exam_difficulty] + topic.exam_shift
        ready = _sigmoid(at_exam)
        fade = math.exp(-(topic.horizon - day) / topic.stability())
        current = _utility(at_exam, goal)
        for difficulty in DIFFICULTIES:
            minutes = topic.minutes[difficulty]
            count = min(max(int(block // minutes), 1), int(room // minutes), most)
            if count < 1:
                continue
            log_odds = topic.base[difficulty] + start[tid]
            effective = _massed(count, minutes, done[tid])
            g = _block_gain(log_odds, effective, topic.practised)
            value = topic.weight * (_utility(at_exam + g * fade, goal) - current)
            key = value / (count * minutes)
            if key > best_key:
                best_key = key
                best = _Choice(
                    topic,
                    difficulty,
                    count,
                    effective,
                    minutes,
                    _sigmoid(log_odds),
                    g,
                    ready,
                    value,
                )
    return best


def _shortest(
    plan: list[_Topic], exam: ExamSpec, start: dict[str, float], done: dict[str, float]
) -> _Choice:
    """The shortest single task: a day with nothing that fits still gets one."""
    topic, difficulty = min(
        ((t, d) for t in plan for d in DIFFICULTIES), key=lambda td: td[0].minutes[td[1]]
    )
    tid = topic.state.topic_id
    log_odds = topic.base[difficulty] + start[tid]
    minutes = topic.minutes[difficulty]
    effective = _massed(1, minutes, done[tid])
    g = _block_gain(log_odds, effective, topic.practised)
    ready = _sigmoid(topic.base[exam.exam_difficulty] + topic.exam_shift)
    return _Choice(topic, difficulty, 1, effective, minutes, _sigmoid(log_odds), g, ready, 0.0)


def _fill_day(plan: list[_Topic], exam: ExamSpec, day: int, budget: float) -> list[_Choice]:
    """Greedy: the block with the most value per minute that fits, until none fits or the
    day holds ``MAX_TASKS_PER_DAY`` tasks; a day with nothing that fits gets its shortest
    task."""
    for t in plan:
        t.advance(day)
    start = {t.state.topic_id: t.shift() for t in plan}
    done = {t.state.topic_id: 0.0 for t in plan}
    chosen: list[_Choice] = []
    room = budget
    block = max(budget / STEPS_PER_DAY, 1e-9)
    tasks = 0
    while tasks < MAX_TASKS_PER_DAY:
        choice = _best_block(plan, exam, day, start, done, room, block, MAX_TASKS_PER_DAY - tasks)
        if choice is None or choice.value <= 0:
            if chosen:
                break
            choice = _shortest(plan, exam, start, done)
        tid = choice.topic.state.topic_id
        choice.topic.add(choice.gain, choice.effective)
        start[tid] += choice.gain
        done[tid] += choice.count * choice.minutes
        chosen.append(choice)
        tasks += choice.count
        room -= choice.count * choice.minutes
    return chosen


def _budgets(exam: ExamSpec, days: list[date], daily: float, done_today: float) -> list[float]:
    budgets = []
    for i, day in enumerate(days):
        if exam.is_day_off(day):
            budgets.append(0.0)
        elif i == 0:
            budgets.append(max(daily - done_today, 0.0))
        else:
            budgets.append(float(daily))
    return budgets


def _run(
    topics: Sequence[TopicState],
    cells: dict[tuple[str, str], CellForecast],
    exam: ExamSpec,
    days: list[date],
    budgets: list[float],
    trajectory: dict[str, list[float]] | None = None,
) -> tuple[list[_Topic], list[list[_Choice]]]:
    """Plan every day in order; ``trajectory`` (topic id -> list) receives each topic's
    readiness at the end of each day, if the exam were then."""
    horizon = len(days)
    plan = _topics(topics, cells, horizon)
    chosen = []
    for i, budget in enumerate(budgets):
        for t in plan:
            t.advance(i)
        chosen.append(_fill_day(plan, exam, i, budget) if budget > 0 else [])
        if trajectory is not None:
            for t in plan:
                trajectory[t.state.topic_id].append(
                    _sigmoid(t.base[exam.exam_difficulty] + t.shift())
                )
    return plan, chosen


def _exam_readiness(plan: list[_Topic], exam: ExamSpec) -> list[float]:
    return [_sigmoid(t.base[exam.exam_difficulty] + t.exam_shift) for t in plan]


def _reaches(p: float, target: float) -> bool:
    """At the target as a whole percentage shows it (79.96 % reads as 80 %)."""
    return bool(p >= target - 0.005)


def _readiness(plan: list[_Topic], exam: ExamSpec) -> tuple[Readiness, ...]:
    out = []
    for t in plan:
        base = t.base[exam.exam_difficulty]
        shift = t.exam_shift
        now = _sigmoid(base)
        spread = max(now * (1 - now), 0.05)
        se = math.sqrt(1.0 / ((t.state.n_tasks + PRIOR_TASKS) * spread) + (0.5 * shift) ** 2)
        p = _sigmoid(base + shift)
        out.append(
            Readiness(
                topic_id=t.state.topic_id,
                topic_name=t.state.name,
                weight=round(t.weight, 6),
                now=now,
                p=p,
                low=_sigmoid(base + shift - _Z80 * se),
                high=_sigmoid(base + shift + _Z80 * se),
                reaches_target=_reaches(p, exam.target),
            )
        )
    return tuple(out)


def _reason(choice: _Choice, exam: ExamSpec, first_day: bool) -> str:
    name = choice.topic.state.name
    when = "now" if first_day else "by then (projected)"
    goal = (
        f"below the {_percent(exam.target)} target"
        if choice.ready < exam.target
        else "at the target; this keeps it there"
    )
    return (
        f"Your readiness for the exam in {name} is {_percent(choice.ready)} {when}, {goal}; "
        f"at {choice.difficulty} you are predicted to succeed {_percent(choice.p)} of the time."
    )


def _plan_days(
    days: list[date],
    budgets: list[float],
    exam: ExamSpec,
    chosen: list[list[_Choice]],
    cells: dict[tuple[str, str], CellForecast],
) -> tuple[PlanDay, ...]:
    out = []
    for i, (day, budget, choices) in enumerate(zip(days, budgets, chosen, strict=True)):
        tasks = []
        for c in choices:
            cell = cells[(c.topic.state.topic_id, c.difficulty)]
            task = PlannedTask.from_forecast(
                cell,
                c.topic.state.name,
                c.p,
                reason=_reason(c, exam, i == 0),
            )
            tasks.extend([task] * c.count)
        out.append(
            PlanDay(
                day=day,
                budget_minutes=budget,
                day_off=exam.is_day_off(day),
                tasks=tuple(tasks),
                minutes=sum(c.count * c.minutes for c in choices),
            )
        )
    return tuple(out)


class _Budgets:
    """Exam readiness per topic at other daily budgets, each worked out once."""

    def __init__(self, topics, cells, exam: ExamSpec, days: list[date], done_today: float):
        self.topics, self.cells, self.exam, self.days = topics, cells, exam, days
        self.done_today = done_today
        weights = _weights(topics)
        self.weights = np.array([weights[t.topic_id] for t in topics])
        self.memo: dict[int, list[float]] = {}

    def readiness(self, minutes: int) -> list[float]:
        if minutes not in self.memo:
            budgets = _budgets(self.exam, self.days, minutes, self.done_today)
            plan, _ = _run(self.topics, self.cells, self.exam, self.days, budgets)
            self.memo[minutes] = _exam_readiness(plan, self.exam)
        return self.memo[minutes]

    def enough(self, minutes: int) -> bool:
        return all(_reaches(r, self.exam.target) for r in self.readiness(minutes))

    def workload(self) -> tuple[WorkloadPoint, ...]:
        points = []
        for minutes in sorted({*WORKLOAD_MINUTES, int(self.exam.daily_minutes)}):
            ready = np.array(self.readiness(minutes))
            points.append(
                WorkloadPoint(
                    daily_minutes=minutes,
                    readiness=float(self.weights @ ready),
                    topics_at_target=sum(bool(_reaches(r, self.exam.target)) for r in ready),
                )
            )
        return tuple(points)

    def minutes_needed(self) -> int | None:
        """The smallest daily budget (a multiple of NEEDED_STEP) that brings every topic to
        the target, by bisection (readiness grows with the budget), starting from the
        budgets already worked out; None if the cap does not."""
        steps = sorted(m // NEEDED_STEP for m in self.memo if m % NEEDED_STEP == 0)
        low = max([0, *(k for k in steps if not self.enough(k * NEEDED_STEP))])
        high = min([NEEDED_CAP // NEEDED_STEP, *(k for k in steps if self.enough(k * NEEDED_STEP))])
        if not self.enough(high * NEEDED_STEP):
            return None
        while high - low > 1:
            mid = (low + high) // 2
            if self.enough(mid * NEEDED_STEP):
                high = mid
            else:
                low = mid
        return high * NEEDED_STEP


def _summary(exam: ExamSpec, readiness: Sequence[Readiness], needed: int | None) -> str:
    n = len(readiness)
    reached = sum(r.reaches_target for r in readiness)
    target = _percent(exam.target)
    head = f"At {exam.daily_minutes} min/day you reach {target} on "
    if reached == n:
        enough = (
            f" ({needed} min/day would be enough)" if needed and needed < exam.daily_minutes else ""
        )
        return head + f"all {n} topic{'s' if n != 1 else ''}{enough}."
    head += f"{reached} of {n} topics"
    if needed is None:
        return head + f"; even {NEEDED_CAP} min/day would not cover all."
    return head + f"; {needed} min/day would cover all."


def build_plan(
    topics: Sequence[TopicState],
    forecasts: Sequence[CellForecast],
    exam: ExamSpec,
    today: date,
    *,
    minutes_done_today: float = 0.0,
    workload: bool = True,
) -> Plan:
    """A day-by-day plan from ``today`` to the day before the exam (see the module doc)."""
    if not topics:
        raise ValueError("an exam needs at least one topic")
    if exam.exam_difficulty not in DIFFICULTIES:
        raise ValueError(f"exam difficulty must be one of {', '.join(DIFFICULTIES)}")
    if exam.daily_minutes <= 0:
        raise ValueError("daily minutes must be positive")
    cells = _cells(topics, forecasts)
    days = _study_days(exam, today)
    budgets = _budgets(exam, days, exam.daily_minutes, minutes_done_today)
    trajectory: dict[str, list[float]] = {t.topic_id: [] for t in topics}
    plan, chosen = _run(topics, cells, exam, days, budgets, trajectory)
    readiness = _readiness(plan, exam)
    others = _Budgets(topics, cells, exam, days, minutes_done_today)
    others.memo[exam.daily_minutes] = [r.p for r in readiness]
    curve = others.workload() if workload else ()
    needed = others.minutes_needed() if workload else None
    return Plan(
        today=today,
        exam_date=exam.exam_date,
        daily_minutes=exam.daily_minutes,
        target=exam.target,
        exam_difficulty=exam.exam_difficulty,
        days=_plan_days(days, budgets, exam, chosen, cells),
        readiness=readiness,
        trajectory={k: tuple(v) for k, v in trajectory.items()},
        workload=curve,
        minutes_needed=needed,
        summary=_summary(exam, readiness, needed) if workload else "",
    )
