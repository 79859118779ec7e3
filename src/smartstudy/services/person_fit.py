"""Person fit of the active LNIRT for admins (issue 15): students whose response times or
answers the model does not explain, such as rapid guessing or times far from their own speed.

The statistics are those of ``LNIRT.person_fit`` (``models.lnirt.personfit``): the lZ
statistic of the log response times (Fox & Marianti 2017) and the lz statistic of the answers
(Drasgow, Levine & Williams 1985), computed by the served ``TopicLNIRT`` on every completed
task and combined over each student's topics.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from smartstudy.models.lnirt.personfit import NothingToScoreError
from smartstudy.services import accounts
from smartstudy.services.context import AppContext
from smartstudy.services.errors import InvalidInputError
from smartstudy.services.predictor import completed_interactions
from smartstudy.store.repositories import models as model_rows

#: The model family whose person fit is reported.
FAMILY = "lnirt"


@dataclass(frozen=True)
class PersonFitRow:
    """One student's statistics; NaN statistics (too few timed tasks) are None."""

    user_id: uuid.UUID
    email: str
    n: int
    n_time: int
    lz_time: float | None
    p_time: float | None
    mean_resid: float | None
    lz_resp: float | None
    p_resp: float | None
    flag_time: bool
    flag_resp: bool
    kind: str


@dataclass(frozen=True)
class PersonFitReport:
    """The students of the report (flagged ones first, by p-value) and what it was made of.

    ``model_version`` is None when no LNIRT version is active; ``message`` then says why the
    report is empty."""

    model_version: int | None
    trained_until: datetime | None
    level: float
    n_students: int
    n_flagged: int
    rows: list[PersonFitRow]
    message: str | None = None


def _number(value: Any) -> float | None:
    out = float(value)
    return out if math.isfinite(out) else None


def person_fit_report(
    context: AppContext,
    session: Session,
    *,
    level: float = 0.05,
    flagged_only: bool = True,
    limit: int = 100,
) -> PersonFitReport:
    """Person fit of every student with completed tasks, by the active LNIRT version.

    ``flagged_only`` keeps the flagged students (time or answers); ``limit`` caps the rows
    (most aberrant first: smallest of the two p-values). Without an active LNIRT version
    the report is empty and says so. Raises ``InvalidInputError`` for a level outside (0, 1).
    """
    if not 0.0 < level < 1.0:
        raise InvalidInputError("level", f"must lie strictly between 0 and 1, got {level}")
    active = model_rows.active_versions(session, [FAMILY])[FAMILY]
    if active is None:
        return PersonFitReport(
            None, None, level, 0, 0, [], message="no active LNIRT version: train the models first"
        )
    model = context.predictor.served_model(session, FAMILY)
    if not hasattr(model, "person_fit"):
        raise TypeError(f"the served {FAMILY} model {type(model).__name__} has no person fit")
    data = completed_interactions(session)
    try:
        table = model.person_fit(data, level=level) if len(data) else None
    except NothingToScoreError:
        table = None  # no completed task of a topic the model was fitted on
    if table is None:
        return PersonFitReport(
            active.version,
            active.trained_until,
            level,
            0,
            0,
            [],
            message="no completed task of a topic the active LNIRT was fitted on",
        )
    flagged = table["flag_time"] | table["flag_resp"]
    n_students, n_flagged = len(table), int(flagged.sum())
    if flagged_only:
        table = table[flagged]
    worst = table[["p_time", "p_resp"]].min(axis=1).fillna(1.0)
    table = table.assign(_worst=worst).sort_values(["_worst", "user_id"]).head(limit)
    rows = [
        PersonFitRow(
            user_id=uuid.UUID(str(r.user_id)),
            email=accounts.get_user(session, uuid.UUID(str(r.user_id))).email,
            n=int(r.n),
            n_time=int(r.n_time),
            lz_time=_number(r.lz_time),
            p_time=_number(r.p_time),
            mean_resid=_number(r.mean_resid),
            lz_resp=_number(r.lz_resp),
            p_resp=_number(r.p_resp),
            flag_time=bool(r.flag_time),
            flag_resp=bool(r.flag_resp),
            kind=str(r.kind),
        )
        for r in table.itertuples(index=False)
    ]
    return PersonFitReport(active.version, active.trained_until, level, n_students, n_flagged, rows)
