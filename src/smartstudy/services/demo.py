"""Demo data: the subjects and topics of the original system, a few students with history.

Every demo task goes through the same service path as a real one (prediction on creation,
then completion), so the demo shows the models at work. Passwords are random and written to
``<data_dir>/demo-credentials.txt`` (readable by its owner only) once the demo data are
committed, never stored in the repository.
"""

from __future__ import annotations

import dataclasses
import math
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from smartstudy.config import private_dir, write_private_file
from smartstudy.services import accounts, catalogue, mastery, planning, quiz, tasks, training
from smartstudy.store.orm import Job, Topic, User, utcnow

if TYPE_CHECKING:
    from smartstudy.services.context import AppContext
    from smartstudy.services.predictor import PredictionService
    from smartstudy.store.db import UnitOfWork

#: Subjects -> topics -> concepts, after the topics the original system's users studied.
CATALOGUE: dict[str, dict[str, list[str]]] = {
    "Mathematics": {
        "Calculus": ["Limits", "Derivatives", "Chain rule", "Integrals"],
        "Trigonometric identities": ["Pythagorean identities", "Double-angle formulas"],
        "Sequences and series": ["Arithmetic series", "Geometric series"],
    },
    "Economics": {
        "Microeconomics": ["Supply and demand", "Elasticity", "Market failure"],
        "Macroeconomics": ["Aggregate demand", "Inflation", "Fiscal policy"],
    },
    "Physics": {
        "Mechanics": ["Kinematics", "Newton's laws", "Work and energy"],
        "Waves": ["Wave properties", "Interference", "Doppler effect"],
    },
}

#: A small question bank for the demo quizzes: concept -> (prompt, options, right option).
QUESTIONS: dict[str, list[tuple[str, list[str], int]]] = {
    "Limits": [
        ("lim x→0 of sin(x)/x is", ["0", "1", "∞", "undefined"], 1),
        ("lim x→∞ of 1/x is", ["0", "1", "∞", "−1"], 0),
        ("lim x→2 of (x² − 4)/(x − 2) is", ["0", "2", "4", "undefined"], 2),
    ],
    "Derivatives": [
        ("d/dx of x³ is", ["x²", "3x²", "3x", "x³/3"], 1),
        ("d/dx of eˣ is", ["eˣ", "x·eˣ⁻¹", "ln x", "1"], 0),
        ("d/dx of ln x (x > 0) is", ["ln x", "x", "1/x", "eˣ"], 2),
    ],
    "Chain rule": [
        ("d/dx of sin(2x) is", ["cos(2x)", "2cos(2x)", "−2cos(2x)", "2sin(x)"], 1),
        ("d/dx of (3x + 1)² is", ["2(3x + 1)", "6(3x + 1)", "(3x + 1)", "9x"], 1),
    ],
    "Integrals": [
        ("∫ 2x dx is", ["x² + C", "2x² + C", "x + C", "2 + C"], 0),
        ("∫₀¹ x dx is", ["1", "1/2", "2", "0"], 1),
    ],
    "Supply and demand": [
        (
            "If demand rises and supply is unchanged, the price",
            ["falls", "rises", "stays", "is 0"],
            1,
        ),
        (
            "A price ceiling below equilibrium causes",
            ["a surplus", "a shortage", "nothing", "deflation"],
            1,
        ),
    ],
    "Elasticity": [
        ("Demand is elastic when |PED| is", ["< 1", "= 1", "> 1", "= 0"], 2),
        ("For a good with perfectly inelastic demand, PED is", ["0", "1", "∞", "−1"], 0),
    ],
    "Kinematics": [
        (
            "A car goes from 0 to 20 m/s in 4 s; its acceleration is",
            ["4 m/s²", "5 m/s²", "80 m/s²", "16 m/s²"],
            1,
        ),
        ("Displacement is the area under the graph of", ["a–t", "v–t", "s–t", "F–t"], 1),
    ],
    "Newton's laws": [
        (
            "A 2 kg mass with a net force of 10 N accelerates at",
            ["5 m/s²", "20 m/s²", "12 m/s²", "0.2 m/s²"],
            0,
        ),
        (
            "Action and reaction forces act on",
            ["the same body", "different bodies", "no body", "the ground only"],
            1,
        ),
    ],
}

# Typical time on a task by difficulty (seconds) and log-odds of success shifts, taken from
# the bulk-user profile of seed 000 (easy ~60-80 s, medium ~220-250 s, hard ~450-550 s).
_TIME_BY_DIFFICULTY = {"easy": 70.0, "medium": 230.0, "hard": 500.0}
_LOGIT_BY_DIFFICULTY = {"easy": 1.3, "medium": 0.3, "hard": -0.8}

DEMO_STUDENTS: tuple[tuple[str, str], ...] = (
    ("ada@example.com", "Ada"),
    ("ben@example.com", "Ben"),
    ("chloe@example.com", "Chloe"),
    ("dev@example.com", "Dev"),
)
DEMO_ADMIN = ("admin@example.com", "Admin")
#: The first demo student's exam is this many days ahead.
DEMO_EXAM_DAYS_AHEAD = 14
CREDENTIALS_FILE = "demo-credentials.txt"


#: A training threshold the seeding never reaches (it trains every family itself at the end).
_NEVER = 2**31 - 1  # the largest count the INTEGER column holds


@dataclass(frozen=True)
class DemoResult:
    created: bool
    students: int
    tasks: int
    #: Lines of the credentials file; write them with ``write_credentials`` after the commit.
    credentials: tuple[str, ...] = ()


def write_credentials(data_dir: Path, result: DemoResult) -> Path | None:
    """Write the demo accounts' passwords to ``<data_dir>/demo-credentials.txt`` (0600).

    Call it only after the demo data are committed: a file listing accounts that a failed
    commit never created would send people to log in with passwords that do not exist.
    """
    if not result.credentials:
        return None
    path = private_dir(data_dir) / CREDENTIALS_FILE
    write_private_file(path, "\n".join(result.credentials) + "\n")
    return path


def seed_catalogue(session: Session) -> None:
    for subject_name, topics in CATALOGUE.items():
        for topic_name, concepts in topics.items():
            topic = catalogue.ensure_topic(session, subject_name, topic_name)
            existing = {c.name: c for c in catalogue.list_concepts(session, topic.id)}
            for name in concepts:
                if name in existing:
                    continue
                concept = catalogue.create_concept(session, topic.id, name)
                for prompt, options, right in QUESTIONS.get(name, []):
                    quiz.create_question(session, concept.id, prompt, options, right)


def seed_demo(
    context: AppContext,
    uow: UnitOfWork,
    *,
    tasks_per_student: int = 40,
    seed: int = 0,
) -> DemoResult:
    """Create the demo catalogue, accounts and history once; later calls change nothing.

    Tasks are completed through the completion use case. Give a unit of work that holds
    one transaction (``unit_of_work(..., hold=True)``): nothing is stored until it ends, and
    only then does the caller write the credentials (``write_credentials``). The history
    claims no training as it goes: every family is trained on all of it at the end.
    """
    session, predictor = uow.session, context.predictor
    seeding = dataclasses.replace(
        context, settings=context.settings.model_copy(update={"retrain_every": _NEVER})
    )
    seed_catalogue(session)
    if session.scalar(select(User).where(User.email == DEMO_STUDENTS[0][0])) is not None:
        return DemoResult(created=False, students=0, tasks=0)

    rng = np.random.default_rng(seed)
    lines = ["# SmartStudy demo accounts (random passwords, made by `smartstudy demo`)"]
    admin_password = secrets.token_urlsafe(12)
    accounts.create_user(session, DEMO_ADMIN[0], admin_password, DEMO_ADMIN[1], role="admin")
    lines.append(f"{DEMO_ADMIN[0]}  {admin_password}  (admin)")

    topics = catalogue.list_topics(session)
    now = utcnow()
    n_tasks = 0
    first_student: User | None = None
    for email, name in DEMO_STUDENTS:
        password = secrets.token_urlsafe(12)
        user = accounts.create_user(session, email, password, name)
        first_student = first_student or user
        lines.append(f"{email}  {password}")
        ability = rng.normal(0.0, 0.8)
        speed = rng.normal(0.0, 0.25)
        studied = rng.choice(len(topics), size=min(3, len(topics)), replace=False)
        topic_skill = {int(i): rng.normal(0.0, 0.5) for i in studied}
        # Spread the history over the last 30 days, oldest first.
        offsets = np.sort(rng.uniform(0.5, 30 * 24, size=tasks_per_student))[::-1]
        for hours_ago in offsets:
            t_index = int(rng.choice(studied))
            topic = topics[t_index]
            difficulty = str(rng.choice(("easy", "medium", "hard"), p=(0.4, 0.4, 0.2)))
            logit = ability + topic_skill[t_index] + _LOGIT_BY_DIFFICULTY[difficulty]
            correct = bool(rng.random() < 1.0 / (1.0 + math.exp(-logit)))
            seconds = float(
                np.clip(
                    _TIME_BY_DIFFICULTY[difficulty] * math.exp(-speed + rng.normal(0.0, 0.35)),
                    5.0,
                    3 * 3600.0,
                )
            )
            done_at = now - timedelta(hours=float(hours_ago))
            task = tasks.create_task(session, predictor, user, topic.id, difficulty)
            task.created_at = done_at - timedelta(seconds=seconds + 30)
            task.started_at = done_at - timedelta(seconds=seconds)
            tasks.complete_task(seeding, uow, user, task.id, correct, seconds, completed_at=done_at)
            n_tasks += 1
    _seed_quizzes(session, topics, now, seed)
    _seed_exam(session, first_student)
    # Back-dated completions are older than what the served models have seen; fresh
    # versions trained on everything keep every process consistent.
    _train_on_history(session, predictor, n_tasks)
    return DemoResult(
        created=True, students=len(DEMO_STUDENTS), tasks=n_tasks, credentials=tuple(lines)
    )


def _train_on_history(session: Session, predictor: PredictionService, rows: int) -> None:
    """Train every family on the whole demo history and record it as the training run it is:
    a succeeded job in the admin's list, with the completion counter back at zero (so the
    admin page does not say that nothing has been trained, and "Train now" right after the
    demo says that there is nothing new)."""
    started = utcnow()
    summary: dict[str, object] = {"rows": rows}
    for name in predictor.chain:
        version = predictor.train(session, name)
        summary[name] = {"version": version.version, "status": version.status}
    training.mark_trained(session)
    session.add(
        Job(
            kind=training.TRAINING_JOB,
            status="succeeded",
            created_at=started,
            started_at=started,
            finished_at=utcnow(),
            summary=summary,
            worker="demo",
        )
    )


def _seed_exam(session: Session, user: User | None) -> None:
    """The first demo student prepares for a Mathematics exam two weeks ahead, 30 minutes a
    day with Sundays off, so the Preparation page has a plan to show."""
    if user is None:
        return
    subject = catalogue.find_subject(session, "Mathematics")
    if subject is None:
        return
    planning.create_exam(
        session,
        user,
        name="Mathematics exam",
        exam_date=utcnow().date() + timedelta(days=DEMO_EXAM_DAYS_AHEAD),
        daily_minutes=30,
        subject_id=subject.id,
        weekdays_off=[6],
    )


def _seed_quizzes(session: Session, topics: list[Topic], now: datetime, seed: int) -> None:
    """A few back-dated, submitted quizzes per demo student, so mastery has a history.

    Answers improve from quiz to quiz; mastery is updated and snapshotted at each answer's
    time, as a submission does (without its commit: the demo is one transaction).
    """
    rng = np.random.default_rng(seed + 1)  # its own stream: the task history stays as it was
    quizzable = [t for t in topics if any(c.name in QUESTIONS for c in t.concepts)]
    for k, (email, _name) in enumerate(DEMO_STUDENTS):
        user = accounts.get_user_by_email(session, email)
        assert user is not None
        ability = rng.normal(0.0, 0.7)
        for n in range(4):
            topic = quizzable[(k + n // 2) % len(quizzable)]  # two quizzes on each of two topics
            started = now - timedelta(days=float(24 - 6 * n - rng.uniform(0, 3)))
            s = quiz.create_session(
                session, user, topic_id=topic.id, n_questions=5, seed=seed + 10 * k + n
            )
            s.created_at = started
            for i, q in enumerate(s.questions):
                p = 1.0 / (1.0 + math.exp(-(ability + 0.6 * n - 0.4)))
                snap = q.snapshot_json
                right = snap["correct_option"]
                choice = right if rng.random() < p else (right + 1) % len(snap["options"])
                answer = quiz.answer_question(session, user, s.id, q.id, choice)
                answer.answered_at = started + timedelta(seconds=40 * (i + 1))
                mastery.apply_attempt(
                    session,
                    user.id,
                    uuid.UUID(snap["concept_id"]),
                    answer.is_correct,
                    at=answer.answered_at,
                    snapshot=True,
                    source="session",
                )
            s.status = "submitted"
            s.submitted_at = started + timedelta(seconds=40 * len(s.questions) + 10)
            s.n_correct = sum(1 for q in s.questions if q.answer and q.answer.is_correct)
    session.flush()
