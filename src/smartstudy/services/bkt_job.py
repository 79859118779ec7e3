"""The ``fit_bkt`` job: fit BKT parameters per concept from quiz history, as a named job.

The CLI (``smartstudy fit-bkt``) and the admin endpoints fit at once and show the result; this
job is the same fit (``services.mastery.fit_concepts``) for work handed to a runner, e.g. a
``smartstudy worker``. Like the training job, it lives with the use cases it runs: ``jobs``
holds only the machinery (registry, runners, the durable queue) and imports nothing from
``services``. Its arguments are plain JSON: dates as ISO 8601 strings, ids as
strings, bounds as ``{"g": [0.0, 0.3]}``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from smartstudy.jobs import durable
from smartstudy.services import audit
from smartstudy.services.context import AppContext
from smartstudy.services.mastery import FitOptions, fit_concepts
from smartstudy.store.db import session_scope
from smartstudy.store.orm import Job

FIT_BKT_JOB = "fit_bkt"


def fit_bkt(
    context: AppContext,
    *,
    job_id: str | None = None,
    concept_ids: list[str] | None = None,
    from_date: str | None = None,
    to_date: str | None = None,
    min_attempts: int = 10,
    min_users: int = 3,
    bounds: dict[str, list[float]] | None = None,
    forgets: bool = False,
    n_restarts: int = 5,
    activate: bool = False,
    requested_by: str | None = None,
) -> Job | None:
    """Fit the concepts (all with answers when ``concept_ids`` is None) as one recorded job;
    with ``job_id``, the queued job of that id with the arguments stored in it. The job row,
    or None when another process took the queued job first."""
    args = {
        "concept_ids": concept_ids,
        "from_date": from_date,
        "to_date": to_date,
        "min_attempts": min_attempts,
        "min_users": min_users,
        "bounds": bounds or {},
        "forgets": forgets,
        "n_restarts": n_restarts,
        "activate": activate,
        "requested_by": requested_by,
    }
    return durable.run_recorded(
        context, FIT_BKT_JOB, args, lambda stored: _fit(context, stored), job_id=job_id
    )


def _date(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{name}: {value!r} is not an ISO 8601 date") from None


def _fit(context: AppContext, args: dict[str, Any]) -> dict[str, Any]:
    ids = args.get("concept_ids")
    options = FitOptions(
        from_date=_date(args.get("from_date"), "from_date"),
        to_date=_date(args.get("to_date"), "to_date"),
        min_attempts=int(args.get("min_attempts", 10)),
        min_users=int(args.get("min_users", 3)),
        bounds={k: (float(lo), float(hi)) for k, (lo, hi) in (args.get("bounds") or {}).items()},
        forgets=bool(args.get("forgets", False)),
        n_restarts=int(args.get("n_restarts", 5)),
        activate=bool(args.get("activate", False)),
    )
    requested_by = args.get("requested_by")
    with session_scope(context.sessions) as session:
        outcome = fit_concepts(
            session,
            None if ids is None else [uuid.UUID(i) for i in ids],
            options,
            trigger="job",
            requested_by=uuid.UUID(requested_by) if requested_by else None,
            progress=lambda _concept, _state: durable.check_stop(),
        )
        if any(row.is_active for row in outcome.fitted.values()):
            audit.record_bkt_fit(session, None, outcome)
        return {
            "run_id": str(outcome.run.id),
            "fitted": sorted(outcome.fitted),
            "skipped": outcome.skipped,
            "failed": outcome.failed,
        }
