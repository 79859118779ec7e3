"""Reads of the model registry and the BKT parameter runs for the admin views."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from smartstudy.store.orm import AlgoRun, BKTSkillParams, ModelVersion


def active_versions(session: Session, names: Iterable[str]) -> dict[str, ModelVersion | None]:
    """The active version of each family named, or None where none is active."""
    wanted = list(names)
    rows = session.scalars(
        select(ModelVersion).where(
            ModelVersion.model_name.in_(wanted), ModelVersion.is_active.is_(True)
        )
    )
    found = {row.model_name: row for row in rows}
    return {name: found.get(name) for name in wanted}


def recent_bkt_runs(session: Session, limit: int) -> list[AlgoRun]:
    """The newest BKT fitting runs first."""
    return list(session.scalars(select(AlgoRun).order_by(AlgoRun.started_at.desc()).limit(limit)))


def count_active_bkt_params(session: Session) -> int:
    """How many BKT parameter sets are active (one per fitted concept)."""
    count = session.scalar(
        select(func.count()).select_from(BKTSkillParams).where(BKTSkillParams.is_active.is_(True))
    )
    return count or 0
