"""The audit log of admin actions: who activated, trained, recomputed or changed what, when.

``record`` adds an entry to the caller's session, so it is committed (or rolled back) with
the action it describes: an action that fails leaves no entry, and an entry never describes
an action that did not happen. Actions done from the command line have no signed-in user;
their actor is recorded as ``COMMAND_LINE``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from smartstudy.services import rules
from smartstudy.services.mastery import FitOutcome
from smartstudy.store.orm import AuditEntry, ModelVersion, User

#: The actor name of actions run from the ``smartstudy`` command line.
COMMAND_LINE = "command line"
#: The most entries one page of the log may hold.
MAX_PAGE = rules.MAX_PAGE_SIZE


def record(
    session: Session,
    actor: User | None,
    action: str,
    target_type: str,
    target_id: uuid.UUID | str | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    """Add one entry for ``action`` (e.g. ``model.activate``) on a target, in the caller's
    transaction; ``actor`` None means the command line."""
    entry = AuditEntry(
        actor_id=actor.id if actor is not None else None,
        actor_email=actor.email if actor is not None else COMMAND_LINE,
        action=action,
        target_type=target_type,
        target_id=None if target_id is None else str(target_id),
        details=details or {},
    )
    session.add(entry)
    session.flush()
    return entry


def record_activation(session: Session, actor: User | None, row: ModelVersion) -> AuditEntry:
    """The entry of an admin making a stored model version the active one."""
    details = {"model_name": row.model_name, "version": row.version}
    return record(session, actor, "model.activate", "model_version", row.id, details)


def record_training_request(
    session: Session, actor: User | None, chain: Sequence[str]
) -> AuditEntry:
    """The entry of an admin asking for a training of the model families in ``chain``."""
    return record(session, actor, "model.train", "model", None, {"families": list(chain)})


def record_bkt_fit(session: Session, actor: User | None, outcome: FitOutcome) -> AuditEntry:
    """The entry of a BKT recompute (API, admin page or ``fit-bkt``): the run and its counts."""
    activated = sum(1 for row in outcome.fitted.values() if row.is_active)
    return record(
        session,
        actor,
        "bkt.recompute",
        "algo_run",
        outcome.run.id,
        {
            "trigger": outcome.run.trigger,
            "activate": bool(outcome.run.params.get("activate")),
            "fitted": len(outcome.fitted),
            "activated": activated,
            "skipped": len(outcome.skipped),
            "failed": len(outcome.failed),
        },
    )


@dataclass(frozen=True)
class AuditPage:
    items: list[AuditEntry]
    total: int
    limit: int
    offset: int


def list_entries(
    session: Session,
    *,
    action: str | None = None,
    actor_id: uuid.UUID | None = None,
    limit: int = 50,
    offset: int = 0,
) -> AuditPage:
    """Entries newest first, optionally of one action or one actor."""
    limit = max(1, min(limit, MAX_PAGE))
    offset = max(0, offset)
    conditions = []
    if action:
        conditions.append(AuditEntry.action == action)
    if actor_id is not None:
        conditions.append(AuditEntry.actor_id == actor_id)
    total = session.scalar(select(func.count()).select_from(AuditEntry).where(*conditions))
    items = session.scalars(
        select(AuditEntry)
        .where(*conditions)
        .order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    return AuditPage(items=list(items), total=total or 0, limit=limit, offset=offset)


def recent(session: Session, limit: int = 20) -> list[AuditEntry]:
    """The latest entries, newest first (the admin page)."""
    return list_entries(session, limit=limit).items
