"""/v1/admin/person-fit: students whose times or answers the active LNIRT does not explain
(admins only; issue 15)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from smartstudy.api.deps import DB, AdminUser, Context
from smartstudy.services.person_fit import PersonFitReport, person_fit_report

router = APIRouter(prefix="/v1/admin", tags=["admin"])


class PersonFitRowOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    user_id: uuid.UUID
    email: str
    n: int = Field(description="completed tasks scored")
    n_time: int = Field(description="of them with a response time")
    lz_time: float | None = Field(
        description="lZ of the log times (Fox & Marianti 2017): chi-square with n_time - 1 "
        "degrees of freedom per topic under the model; None with too few times"
    )
    p_time: float | None = Field(description="upper-tail p-value of lz_time")
    mean_resid: float | None = Field(
        description="mean standardised log-time residual against the student's median speed: "
        "< 0 faster, > 0 slower"
    )
    lz_resp: float | None = Field(
        description="lz of the answers (Drasgow, Levine & Williams 1985); low = answers the "
        "student's ability does not explain"
    )
    p_resp: float | None = Field(description="lower-tail p-value of lz_resp")
    flag_time: bool
    flag_resp: bool
    kind: Literal["rapid", "slow", "erratic responses", ""]


class PersonFitOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    model_version: int | None = Field(
        description="the active LNIRT version that scored the students; None when none is active"
    )
    trained_until: datetime | None
    level: float
    n_students: int = Field(description="students with completed tasks scored")
    n_flagged: int
    rows: list[PersonFitRowOut]
    message: str | None = Field(description="why the report is empty, when it is")


@router.get("/person-fit", response_model=PersonFitOut)
def person_fit(
    context: Context,
    session: DB,
    _admin: AdminUser,
    level: Annotated[
        float, Query(gt=0.0, lt=1.0, description="flag when a p-value is below this, e.g. 0.01")
    ] = 0.05,
    all_students: Annotated[
        bool, Query(alias="all", description="list every student, not only the flagged")
    ] = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> PersonFitReport:
    """Person-fit statistics of the students with completed tasks, by the active LNIRT: the
    flagged ones (rapid guessing, times far slower than their own speed, erratic answers)
    first, most aberrant first. Empty, with a ``message``, when no LNIRT version is active."""
    return person_fit_report(
        context, session, level=level, flagged_only=not all_students, limit=limit
    )
