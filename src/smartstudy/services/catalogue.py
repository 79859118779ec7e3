"""Catalogue: subjects, their topics and the concepts inside topics.

Names are unique ignoring case: "mathematics" is the subject "Mathematics", whether it is
created through the API or met in an imported file.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterable
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from smartstudy.services import rules
from smartstudy.services.errors import ConflictError, InvalidInputError, NotFoundError
from smartstudy.store.orm import Concept, Subject, Topic

_Named = TypeVar("_Named", Subject, Topic, Concept)


def clean_name(name: str, field: str = "name") -> str:
    """``name`` with its runs of spaces made one space; ``InvalidInputError`` if it is empty,
    too long or holds a control character."""
    rules.check_text(name, field)  # characters first: a tab is not a space to collapse
    cleaned = " ".join(name.split())
    if not cleaned:
        raise InvalidInputError(field, "must not be empty")
    return rules.check_text(cleaned, field, rules.MAX_NAME)


def _named(rows: Iterable[_Named], name: str) -> _Named | None:
    """The row called ``name`` ignoring case. Catalogues are small, and Python's casefold
    is the same on every backend (SQL lower() is ASCII-only on SQLite)."""
    key = rules.name_key(name)
    return next((row for row in rows if rules.name_key(row.name) == key), None)


def list_subjects(session: Session) -> list[Subject]:
    return list(session.scalars(select(Subject).order_by(Subject.name)))


def list_topics(session: Session, subject_id: uuid.UUID | None = None) -> list[Topic]:
    stmt = select(Topic).join(Subject).order_by(Subject.name, Topic.name)
    if subject_id is not None:
        get_subject(session, subject_id)
        stmt = stmt.where(Topic.subject_id == subject_id)
    return list(session.scalars(stmt))


def has_topics(session: Session) -> bool:
    """Whether the catalogue has any topic to practise (one row read at most)."""
    return session.scalar(select(Topic.id).limit(1)) is not None


def list_concepts(session: Session, topic_id: uuid.UUID | None = None) -> list[Concept]:
    stmt = select(Concept).order_by(Concept.name)
    if topic_id is not None:
        get_topic(session, topic_id)
        stmt = stmt.where(Concept.topic_id == topic_id)
    return list(session.scalars(stmt))


#: How long a process may show a topic's or subject's old name after another process
#: renamed it (the process that renames it forgets its copy at once).
NAMES_TTL_S = 10.0
_names: dict[uuid.UUID, tuple[float, str, str]] = {}
_names_lock = threading.Lock()


def topic_names(session: Session, topic_id: uuid.UUID) -> tuple[str, str]:
    """The names of topic ``topic_id`` and of its subject, from a per-process copy at most
    ``NAMES_TTL_S`` old (the answer to every task carries them, and topics are never
    deleted); ``NotFoundError`` for an unknown topic."""
    now = time.monotonic()
    with _names_lock:
        cached = _names.get(topic_id)
    if cached is not None and now - cached[0] < NAMES_TTL_S:
        return cached[1], cached[2]
    row = session.execute(
        select(Topic.name, Subject.name).join(Subject).where(Topic.id == topic_id)
    ).first()
    if row is None:
        raise NotFoundError("topic not found")
    with _names_lock:
        _names[topic_id] = (now, row[0], row[1])
    return row[0], row[1]


def _forget_names() -> None:
    with _names_lock:
        _names.clear()


def get_subject(session: Session, subject_id: uuid.UUID) -> Subject:
    subject = session.get(Subject, subject_id)
    if subject is None:
        raise NotFoundError("subject not found")
    return subject


def get_topic(session: Session, topic_id: uuid.UUID) -> Topic:
    topic = session.get(Topic, topic_id)
    if topic is None:
        raise NotFoundError("topic not found")
    return topic


def get_concept(session: Session, concept_id: uuid.UUID) -> Concept:
    concept = session.get(Concept, concept_id)
    if concept is None:
        raise NotFoundError("concept not found")
    return concept


def find_subject(session: Session, name: str) -> Subject | None:
    return _named(session.scalars(select(Subject)), clean_name(name))


def find_topic(session: Session, subject: Subject, name: str) -> Topic | None:
    return _named(
        session.scalars(select(Topic).where(Topic.subject_id == subject.id)), clean_name(name)
    )


def find_concept(session: Session, topic: Topic, name: str) -> Concept | None:
    return _named(
        session.scalars(select(Concept).where(Concept.topic_id == topic.id)), clean_name(name)
    )


def ensure_topic(session: Session, subject_name: str, topic_name: str) -> Topic:
    """The topic ``topic_name`` of subject ``subject_name``, creating either if missing."""
    subject = find_subject(session, subject_name) or create_subject(session, subject_name)
    return find_topic(session, subject, topic_name) or create_topic(session, subject.id, topic_name)


class NameIndex:
    """The catalogue by name for a bulk import: ``topic`` and ``concept`` find a row the way
    ``find_*`` do (any case; ``rules.name_key``) and create what is missing, counting each
    kind created. Every row is read once, not once per line of the file."""

    def __init__(self, session: Session) -> None:
        key = rules.name_key
        self.session = session
        self.subjects = {key(s.name): s for s in session.scalars(select(Subject))}
        self.topics = {(t.subject_id, key(t.name)): t for t in session.scalars(select(Topic))}
        self.concepts = {(c.topic_id, key(c.name)): c for c in session.scalars(select(Concept))}
        self.created = {"subject": 0, "topic": 0, "concept": 0}

    def topic(self, subject_name: str, topic_name: str) -> Topic:
        subject = self.subjects.get(rules.name_key(subject_name))
        if subject is None:
            subject = create_subject(self.session, subject_name)
            self.subjects[rules.name_key(subject.name)] = subject
            self.created["subject"] += 1
        found = self.topics.get((subject.id, rules.name_key(topic_name)))
        if found is None:
            found = create_topic(self.session, subject.id, topic_name)
            self.topics[(subject.id, rules.name_key(found.name))] = found
            self.created["topic"] += 1
        return found

    def concept(self, topic: Topic, name: str) -> Concept:
        found = self.concepts.get((topic.id, rules.name_key(name)))
        if found is None:
            found = create_concept(self.session, topic.id, name)
            self.concepts[(topic.id, rules.name_key(found.name))] = found
            self.created["concept"] += 1
        return found


def _store(session: Session, row: Subject | Topic | Concept, conflict: str) -> None:
    """Add or update ``row`` in a savepoint. Two admins creating one name at once both pass
    the lookup before it; the unique index decides, and the loser gets a 409, not a 500."""
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError as exc:
        raise ConflictError(conflict) from exc


def create_subject(session: Session, name: str) -> Subject:
    name = clean_name(name)
    if find_subject(session, name) is not None:
        raise ConflictError(f"subject {name!r} already exists")
    subject = Subject(name=name)
    _store(session, subject, f"subject {name!r} already exists")
    return subject


def rename_subject(session: Session, subject_id: uuid.UUID, name: str) -> Subject:
    subject = get_subject(session, subject_id)
    name = clean_name(name)
    other = find_subject(session, name)
    if other is not None and other.id != subject.id:
        raise ConflictError(f"subject {name!r} already exists")
    subject.name = name
    _store(session, subject, f"subject {name!r} already exists")
    _forget_names()
    return subject


def create_topic(session: Session, subject_id: uuid.UUID, name: str) -> Topic:
    subject = get_subject(session, subject_id)
    name = clean_name(name)
    if find_topic(session, subject, name) is not None:
        raise ConflictError(f"topic {name!r} already exists in {subject.name}")
    topic = Topic(subject_id=subject.id, name=name)
    _store(session, topic, f"topic {name!r} already exists in {subject.name}")
    return topic


def rename_topic(session: Session, topic_id: uuid.UUID, name: str) -> Topic:
    topic = get_topic(session, topic_id)
    name = clean_name(name)
    other = find_topic(session, topic.subject, name)
    if other is not None and other.id != topic.id:
        raise ConflictError(f"topic {name!r} already exists in {topic.subject.name}")
    topic.name = name
    _store(session, topic, f"topic {name!r} already exists in {topic.subject.name}")
    _forget_names()
    return topic


def create_concept(session: Session, topic_id: uuid.UUID, name: str) -> Concept:
    topic = get_topic(session, topic_id)
    name = clean_name(name)
    if find_concept(session, topic, name) is not None:
        raise ConflictError(f"concept {name!r} already exists in {topic.name}")
    concept = Concept(topic_id=topic.id, name=name)
    _store(session, concept, f"concept {name!r} already exists in {topic.name}")
    return concept


def rename_concept(session: Session, concept_id: uuid.UUID, name: str) -> Concept:
    concept = get_concept(session, concept_id)
    name = clean_name(name)
    other = find_concept(session, concept.topic, name)
    if other is not None and other.id != concept.id:
        raise ConflictError(f"concept {name!r} already exists in {concept.topic.name}")
    concept.name = name
    _store(session, concept, f"concept {name!r} already exists in {concept.topic.name}")
    return concept
