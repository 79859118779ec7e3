"""Subjects, concepts and the user's mastery: the catalogue overview, a concept's detail,
the latest quizzes and how much each quiz moved the mastery of its concepts.

The BKT parameters in use come from ``services.mastery.active_params``, so a concept without
fitted parameters shows the same default prior that the mastery updates start from.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from smartstudy.services import mastery
from smartstudy.services.errors import NotFoundError
from smartstudy.store.orm import (
    BKTSkillParams,
    Concept,
    MasterySnapshot,
    StudySession,
    Subject,
    Topic,
)
from smartstudy.store.repositories import reports as queries


@dataclass(frozen=True)
class MasteryItem:
    """The user's current mastery of one concept they have attempted."""

    concept_id: uuid.UUID
    concept: str
    topic: str
    p_mastery: float
    n_attempts: int


def mastery_items(session: Session, user_id: uuid.UUID) -> list[MasteryItem]:
    """The user's current mastery of every concept they have attempted, by topic and concept."""
    return [MasteryItem(*row) for row in queries.mastery_rows(session, user_id)]


# -- the catalogue overview ------------------------------------------------------------------
@dataclass
class ConceptEntry:
    concept: Concept
    n_questions: int
    p_mastery: float | None
    n_attempts: int


@dataclass
class TopicEntry:
    topic: Topic
    concepts: list[ConceptEntry] = field(default_factory=list)
    n_tasks: int = 0
    n_correct: int = 0

    @property
    def n_questions(self) -> int:
        return sum(c.n_questions for c in self.concepts)


@dataclass
class SubjectEntry:
    subject: Subject
    topics: list[TopicEntry] = field(default_factory=list)


def catalogue_overview(session: Session, user_id: uuid.UUID) -> list[SubjectEntry]:
    """Every subject, topic and concept with the user's mastery and task counts (six queries,
    whatever the size of the catalogue)."""
    states = queries.mastery_by_concept(session, user_id)
    questions = queries.question_counts(session)
    task_counts = queries.completed_by_topic(session, user_id)

    def topic_entry(topic: Topic) -> TopicEntry:
        n, correct = task_counts.get(topic.id, (0, 0))
        entry = TopicEntry(topic, n_tasks=n, n_correct=correct)
        for concept in topic.concepts:
            p, attempts = states.get(concept.id, (None, 0))
            entry.concepts.append(ConceptEntry(concept, questions.get(concept.id, 0), p, attempts))
        return entry

    return [
        SubjectEntry(subject, [topic_entry(topic) for topic in subject.topics])
        for subject in queries.subjects_with_concepts(session)
    ]


# -- one concept -----------------------------------------------------------------------------
@dataclass
class ConceptDetail:
    concept: Concept
    p_mastery: float
    n_attempts: int
    prior: float
    params: BKTSkillParams | None
    history: list[MasterySnapshot]
    n_questions: int


def concept_detail(session: Session, user_id: uuid.UUID, concept_id: uuid.UUID) -> ConceptDetail:
    """A concept with the user's mastery, its history and the BKT parameters in use; before
    the user's first attempt their mastery is the prior (L0) of those parameters."""
    concept = queries.find_concept(session, concept_id)
    if concept is None:
        raise NotFoundError("concept not found")
    params, row = mastery.active_params(session, concept_id)
    state = queries.mastery_state(session, user_id, concept_id)
    return ConceptDetail(
        concept=concept,
        p_mastery=state.p_mastery if state else params.l0,
        n_attempts=state.n_attempts if state else 0,
        prior=params.l0,
        params=row,
        history=queries.mastery_snapshots(session, user_id, [concept_id]),
        n_questions=queries.count_questions(session, concept_id),
    )


# -- quizzes ---------------------------------------------------------------------------------
def recent_quizzes(session: Session, user_id: uuid.UUID, limit: int = 10) -> list[StudySession]:
    """The user's latest quiz sessions, newest first, with their questions loaded."""
    return queries.recent_quizzes(session, user_id, limit)


def quiz_topic_names(session: Session, quizzes: list[StudySession]) -> dict[uuid.UUID, str]:
    """The name of the topic of each quiz that has one, by topic id."""
    ids = {q.topic_id for q in quizzes if q.topic_id is not None}
    return queries.topic_names(session, ids) if ids else {}


@dataclass(frozen=True)
class MasteryChange:
    concept_id: uuid.UUID
    concept: str
    before: float
    after: float
    n_answers: int
    n_correct: int


def _answer_counts(quiz: StudySession) -> dict[uuid.UUID, list[int]]:
    """[answered, correct] per concept of the quiz's answered questions."""
    counts: dict[uuid.UUID, list[int]] = defaultdict(lambda: [0, 0])
    for q in quiz.questions:
        concept = (q.snapshot_json or {}).get("concept_id")
        if concept and q.answer is not None:
            c = counts[uuid.UUID(str(concept))]
            c[0] += 1
            c[1] += 1 if q.answer.is_correct else 0
    return counts


def quiz_mastery_changes(session: Session, quiz: StudySession) -> list[MasteryChange]:
    """For each concept of a submitted quiz: mastery just before it and after it.

    The quiz's own snapshots are those taken between its creation and its submission;
    "before" is the snapshot preceding them, or the concept's prior when there is none.
    """
    if quiz.status != "submitted" or quiz.submitted_at is None:
        return []
    counts = _answer_counts(quiz)
    if not counts:
        return []
    names = queries.concept_names(session, counts)
    before: dict[uuid.UUID, float] = {}
    after: dict[uuid.UUID, float] = {}
    for snap in queries.mastery_snapshots(session, quiz.user_id, counts, until=quiz.submitted_at):
        seen = before if snap.created_at < quiz.created_at else after
        seen[snap.concept_id] = snap.p_mastery
    out = []
    for cid, (n, c) in counts.items():
        if cid not in names:
            continue  # the concept was deleted since
        prior = before[cid] if cid in before else mastery.active_params(session, cid)[0].l0
        out.append(MasteryChange(cid, names[cid], prior, after.get(cid, prior), n, c))
    return sorted(out, key=lambda m: m.concept)
