"""The user's calendar: which time zone their days are in and where a day begins."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.orm import Session

from smartstudy.services import localtime
from smartstudy.store.repositories import reports as queries


def start_of_day(now: datetime, time_zone: str = localtime.DEFAULT_TIME_ZONE) -> datetime:
    """The UTC instant at which the user's day containing ``now`` began (local midnight)."""
    return localtime.start_of_local_day(localtime.local_date(now, time_zone), time_zone)


def user_time_zone(session: Session, user_id: uuid.UUID) -> str:
    """The user's stored time zone (UTC for an unknown user)."""
    return queries.stored_time_zone(session, user_id) or localtime.DEFAULT_TIME_ZONE
