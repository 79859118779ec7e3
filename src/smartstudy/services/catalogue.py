"""Catalogue: subjects, their topics and the concepts inside topics."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from smartstudy.services.errors import ConflictError, InvalidInputError, NotFoundError
from smartstudy.store.orm import Concept, Subject, Topic


def _clean_name(name: str) -> str:
    cleaned = " ".join(name.split())
    if not cleaned:
        raise InvalidInputError("name", "must not be empty")
    if len(cleaned) > 120:
        raise InvalidInputError("name", "must be at most 120 characters")
    return cleaned


def list_subjects(session: Session) -> list[Subject]:
    return list(session.scalars(select(Subject).order_by(Subject.name)))


def list_topics(session: Session, subject_id: uuid.UUID | None = None) -> list[Topic]:
    stmt = select(Topic).join(Subject).order_by(Subject.name, Topic.name)
    if subject_id is not None:
        get_subject(session, subject_id)
        stmt = stmt.where(Topic.subject_id == subject_id)
    return list(session.scalars(stmt))


def list_concepts(session: Session, topic_id: uuid.UUID | None = None) -> list[Concept]:
    stmt = select(Concept).order_by(Concept.name)
    if topic_id is not None:
        get_topic(session, topic_id)
        stmt = stmt.where(Concept.topic_id == topic_id)
    return list(session.scalars(stmt))


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
    return session.scalar(select(Subject).where(Subject.name == _clean_name(name)))


def find_topic(session: Session, subject: Subject, name: str) -> Topic | None:
    return session.scalar(
        select(Topic).where(Topic.subject_id == subject.id, Topic.name == _clean_name(name))
    )


def ensure_topic(session: Session, subject_name: str, topic_name: str) -> Topic:
    """The topic ``topic_name`` of subject ``subject_name``, creating either if missing."""
    subject = find_subject(session, subject_name) or create_subject(session, subject_name)
    return find_topic(session, subject, topic_name) or create_topic(session, subject.id, topic_name)


def create_subject(session: Session, name: str) -> Subject:
    name = _clean_name(name)
    if find_subject(session, name) is not None:
        raise ConflictError(f"subject {name!r} already exists")
    subject = Subject(name=name)
    session.add(subject)
    session.flush()
    return subject


def rename_subject(session: Session, subject_id: uuid.UUID, name: str) -> Subject:
    subject = get_subject(session, subject_id)
    name = _clean_name(name)
    other = find_subject(session, name)
    if other is not None and other.id != subject.id:
        raise ConflictError(f"subject {name!r} already exists")
    subject.name = name
    session.flush()
    return subject


def create_topic(session: Session, subject_id: uuid.UUID, name: str) -> Topic:
    subject = get_subject(session, subject_id)
    name = _clean_name(name)
    if find_topic(session, subject, name) is not None:
        raise ConflictError(f"topic {name!r} already exists in {subject.name}")
    topic = Topic(subject_id=subject.id, name=name)
    session.add(topic)
    session.flush()
    return topic


def rename_topic(session: Session, topic_id: uuid.UUID, name: str) -> Topic:
    topic = get_topic(session, topic_id)
    name = _clean_name(name)
    other = find_topic(session, topic.subject, name)
    if other is not None and other.id != topic.id:
        raise ConflictError(f"topic {name!r} already exists in {topic.subject.name}")
    topic.name = name
    session.flush()
    return topic


def create_concept(session: Session, topic_id: uuid.UUID, name: str) -> Concept:
    topic = get_topic(session, topic_id)
    name = _clean_name(name)
    exists = session.scalar(
        select(Concept).where(Concept.topic_id == topic.id, Concept.name == name)
    )
    if exists is not None:
        raise ConflictError(f"concept {name!r} already exists in {topic.name}")
    concept = Concept(topic_id=topic.id, name=name)
    session.add(concept)
    session.flush()
    return concept


def rename_concept(session: Session, concept_id: uuid.UUID, name: str) -> Concept:
    concept = get_concept(session, concept_id)
    name = _clean_name(name)
    other = session.scalar(
        select(Concept).where(Concept.topic_id == concept.topic_id, Concept.name == name)
    )
    if other is not None and other.id != concept.id:
        raise ConflictError(f"concept {name!r} already exists in {concept.topic.name}")
    concept.name = name
    session.flush()
    return concept
