"""Catalogue changes made by an admin, each written to the audit log in the same transaction:
the API's ``/v1/subjects``, ``/v1/topics``, ``/v1/concepts`` and ``/v1/questions`` and the
admin catalogue pages make them through here. Nothing is deleted: tasks, quizzes and mastery
refer to the rows, so names change instead.

``topic_counts`` gives, per topic, what the admin pages show beside it: its concepts, its quiz
questions and the practice tasks students have completed in it.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from typing import TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from smartstudy.services import audit, catalogue, quiz
from smartstudy.store.orm import Concept, PracticeTask, Question, Subject, Topic, User

Named = TypeVar("Named", Subject, Topic, Concept)


def _audited(session: Session, admin: User | None, action: str, row: Named) -> Named:
    kind = action.split(".", 1)[0]
    audit.record(session, admin, action, kind, row.id, {"name": row.name})
    return row


def add_subject(session: Session, admin: User | None, name: str) -> Subject:
    return _audited(session, admin, "subject.create", catalogue.create_subject(session, name))


def rename_subject(
    session: Session, admin: User | None, subject_id: uuid.UUID, name: str
) -> Subject:
    subject = catalogue.rename_subject(session, subject_id, name)
    return _audited(session, admin, "subject.update", subject)


def add_topic(session: Session, admin: User | None, subject_id: uuid.UUID, name: str) -> Topic:
    topic = catalogue.create_topic(session, subject_id, name)
    return _audited(session, admin, "topic.create", topic)


def rename_topic(session: Session, admin: User | None, topic_id: uuid.UUID, name: str) -> Topic:
    return _audited(session, admin, "topic.update", catalogue.rename_topic(session, topic_id, name))


def add_concept(session: Session, admin: User | None, topic_id: uuid.UUID, name: str) -> Concept:
    concept = catalogue.create_concept(session, topic_id, name)
    return _audited(session, admin, "concept.create", concept)


def rename_concept(
    session: Session, admin: User | None, concept_id: uuid.UUID, name: str
) -> Concept:
    concept = catalogue.rename_concept(session, concept_id, name)
    return _audited(session, admin, "concept.update", concept)


def add_question(session: Session, admin: User | None, fields: quiz.QuestionFields) -> Question:
    question = quiz.create_question(session, **asdict(fields))
    details = {"concept_id": str(question.concept_id)}
    audit.record(session, admin, "question.create", "question", question.id, details)
    return question


def edit_question(
    session: Session, admin: User | None, question_id: uuid.UUID, fields: quiz.QuestionFields
) -> Question:
    """New content for a question; quizzes already taken keep it as it was asked."""
    question = quiz.replace_question(session, question_id, fields)
    details = {"concept_id": str(question.concept_id)}
    audit.record(session, admin, "question.update", "question", question.id, details)
    return question


def remove_question(session: Session, admin: User | None, question_id: uuid.UUID) -> None:
    """Take a question out of the bank; quizzes already taken keep their copy of it."""
    question = quiz.delete_question(session, question_id)
    details = {"concept_id": str(question.concept_id), "prompt": question.prompt[:120]}
    audit.record(session, admin, "question.delete", "question", question_id, details)


@dataclass(frozen=True)
class TopicCounts:
    concepts: int = 0
    questions: int = 0
    tasks_done: int = 0


def topic_counts(session: Session) -> dict[uuid.UUID, TopicCounts]:
    """Per topic (those with anything to count): concepts, quiz questions, completed tasks."""
    concepts = dict(
        session.execute(select(Concept.topic_id, func.count()).group_by(Concept.topic_id)).all()
    )
    questions = dict(
        session.execute(
            select(Concept.topic_id, func.count(Question.id))
            .join(Question, Question.concept_id == Concept.id)
            .group_by(Concept.topic_id)
        ).all()
    )
    tasks = dict(
        session.execute(
            select(PracticeTask.topic_id, func.count())
            .where(PracticeTask.completed_at.is_not(None))
            .group_by(PracticeTask.topic_id)
        ).all()
    )
    return {
        topic_id: TopicCounts(
            concepts.get(topic_id, 0), questions.get(topic_id, 0), tasks.get(topic_id, 0)
        )
        for topic_id in concepts.keys() | questions.keys() | tasks.keys()
    }


def questions_by_concept(session: Session, topic_id: uuid.UUID) -> dict[uuid.UUID, list[Question]]:
    """The quiz questions of each concept of the topic, oldest first."""
    found: dict[uuid.UUID, list[Question]] = {}
    for question in quiz.list_questions(session, topic_id=topic_id):
        found.setdefault(question.concept_id, []).append(question)
    return found
