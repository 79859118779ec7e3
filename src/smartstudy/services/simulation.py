"""Simulated learners written through the same service path as real completions."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from smartstudy.data.profiles import bulk_user_profile
from smartstudy.services import accounts, catalogue, tasks
from smartstudy.services.context import AppContext
from smartstudy.services.training import run_training
from smartstudy.store.db import session_scope, unit_of_work
from smartstudy.store.orm import utcnow


@dataclass(frozen=True)
class BulkUserResult:
    email: str
    password: str | None
    tasks: int


def simulate_bulk_user(
    context: AppContext, email: str, *, seed: int = 0, per_difficulty: int = 100
) -> BulkUserResult:
    """Create (or reuse) ``email`` and give it the seed-000 bulk-user history.

    Each task is created with a prediction and completed through ``tasks.complete_task``
    (the completion use case), so counters, online learning and training jobs run as for a
    real student. A final training includes every task.
    """
    profile = bulk_user_profile(per_difficulty=per_difficulty, seed=seed)
    password = None
    with session_scope(context.sessions) as session:
        user = accounts.get_user_by_email(session, email)
        if user is None:
            password = secrets.token_urlsafe(12)
            user = accounts.create_user(session, email, password, "Bulk user")
        topic_ids = {}
        for subject_name, topic_name in (
            profile[["subject", "topic"]].drop_duplicates().itertuples(index=False)
        ):
            topic_ids[topic_name] = catalogue.ensure_topic(session, subject_name, topic_name).id
        user_id = user.id
    now = utcnow()
    for row in profile.itertuples(index=False):
        done_at = now - timedelta(hours=float(row.hours_ago))
        with unit_of_work(context.sessions) as uow:
            user = accounts.get_user(uow.session, user_id)
            task = tasks.create_task(
                uow.session, context.predictor, user, topic_ids[row.topic], row.difficulty
            )
            task.created_at = done_at - timedelta(seconds=float(row.rt_seconds) + 20)
            task.started_at = done_at - timedelta(seconds=float(row.rt_seconds))
            tasks.complete_task(
                context,
                uow,
                user,
                task.id,
                bool(row.correct),
                float(row.rt_seconds),
                completed_at=done_at,
            )
    context.runner.wait_idle()
    run_training(context)
    return BulkUserResult(email=email, password=password, tasks=len(profile))
