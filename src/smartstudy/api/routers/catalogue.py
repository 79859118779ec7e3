"""/v1/subjects, /v1/topics, /v1/concepts: read by anyone signed in, changed by admins."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, status

from smartstudy.api.deps import DB, AdminUser, CurrentUser
from smartstudy.api.schemas import (
    ConceptIn,
    ConceptOut,
    NameIn,
    SubjectOut,
    TopicIn,
    TopicOut,
)
from smartstudy.services import catalogue, catalogue_admin
from smartstudy.store.orm import Concept, Subject, Topic

router = APIRouter(prefix="/v1", tags=["catalogue"])


@router.get("/subjects", response_model=list[SubjectOut])
def list_subjects(session: DB, _user: CurrentUser) -> list[Subject]:
    return catalogue.list_subjects(session)


@router.post("/subjects", response_model=SubjectOut, status_code=status.HTTP_201_CREATED)
def create_subject(body: NameIn, session: DB, admin: AdminUser) -> Subject:
    return catalogue_admin.add_subject(session, admin, body.name)


@router.patch("/subjects/{subject_id}", response_model=SubjectOut)
def rename_subject(subject_id: uuid.UUID, body: NameIn, session: DB, admin: AdminUser) -> Subject:
    return catalogue_admin.rename_subject(session, admin, subject_id, body.name)


@router.get("/topics", response_model=list[TopicOut])
def list_topics(
    session: DB, _user: CurrentUser, subject_id: uuid.UUID | None = None
) -> list[Topic]:
    return catalogue.list_topics(session, subject_id)


@router.post("/topics", response_model=TopicOut, status_code=status.HTTP_201_CREATED)
def create_topic(body: TopicIn, session: DB, admin: AdminUser) -> Topic:
    return catalogue_admin.add_topic(session, admin, body.subject_id, body.name)


@router.patch("/topics/{topic_id}", response_model=TopicOut)
def rename_topic(topic_id: uuid.UUID, body: NameIn, session: DB, admin: AdminUser) -> Topic:
    return catalogue_admin.rename_topic(session, admin, topic_id, body.name)


@router.get("/concepts", response_model=list[ConceptOut])
def list_concepts(
    session: DB, _user: CurrentUser, topic_id: uuid.UUID | None = None
) -> list[Concept]:
    return catalogue.list_concepts(session, topic_id)


@router.post("/concepts", response_model=ConceptOut, status_code=status.HTTP_201_CREATED)
def create_concept(body: ConceptIn, session: DB, admin: AdminUser) -> Concept:
    return catalogue_admin.add_concept(session, admin, body.topic_id, body.name)


@router.patch("/concepts/{concept_id}", response_model=ConceptOut)
def rename_concept(concept_id: uuid.UUID, body: NameIn, session: DB, admin: AdminUser) -> Concept:
    return catalogue_admin.rename_concept(session, admin, concept_id, body.name)
