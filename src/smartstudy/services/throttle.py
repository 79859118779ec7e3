"""Log-in throttling: failed password checks counted per account and per client.

The counts live in ``auth_throttle`` so that every API process sees the same ones. A key
(``account:<normalised e-mail>`` or ``client:<address>``) that collects ``limit`` failures
within ``window`` is locked for ``lock``; while it is locked no password is even checked, and
the caller answers 429 with the seconds to wait. Only failures count, so a user who logs in
often is never slowed down, and a successful log-in clears its account's count (never the
client's: one good account must not buy an attacker more guesses at others). Accounts that
do not exist are counted like real ones, so a lock says nothing about which e-mails exist.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, delete, literal, null, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from smartstudy.services.errors import TooManyAttemptsError
from smartstudy.store.orm import AuthThrottle, UTCDateTime, utcnow


@dataclass(frozen=True)
class Policy:
    """``limit`` failures within ``window`` lock the key for ``lock``."""

    limit: int
    window: timedelta
    lock: timedelta
    #: Says who is locked out, in the 429 message.
    who: str


ACCOUNT = Policy(10, timedelta(minutes=15), timedelta(minutes=15), "for this account")
CLIENT = Policy(100, timedelta(minutes=15), timedelta(minutes=15), "from your network address")


@dataclass(frozen=True)
class Keys:
    """The throttle keys of one log-in attempt."""

    account: str
    client: str


def keys_for(email: str, client: str | None) -> Keys:
    """The keys of an attempt on ``email`` (already normalised) from address ``client``."""
    return Keys(account=f"account:{email}"[:400], client=f"client:{client or 'unknown'}"[:400])


def _policies(keys: Keys) -> tuple[tuple[str, Policy], ...]:
    # Looked up at call time so that tests can change the module's policies.
    return ((keys.account, ACCOUNT), (keys.client, CLIENT))


def check(session: Session, keys: Keys, now: datetime | None = None) -> None:
    """``TooManyAttemptsError`` if the account or the client is locked out now."""
    now = now or utcnow()
    policies = dict(_policies(keys))
    rows = session.execute(
        select(AuthThrottle.key, AuthThrottle.locked_until).where(
            AuthThrottle.key.in_(list(policies)), AuthThrottle.locked_until > now
        )
    ).all()
    if not rows:
        return
    key, until = max(rows, key=lambda row: row.locked_until)
    wait = max(1, math.ceil((until - now).total_seconds()))
    minutes = math.ceil(wait / 60)
    raise TooManyAttemptsError(
        f"too many failed log-ins {policies[key].who}; try again in {minutes} minute"
        + ("s" if minutes != 1 else ""),
        retry_after=wait,
    )


def record_failure(session: Session, keys: Keys, now: datetime | None = None) -> None:
    """Count one failed attempt against the account and the client (the caller commits)."""
    now = now or utcnow()
    for key, policy in _policies(keys):
        _count(session, key, policy, now)


def _count(session: Session, key: str, policy: Policy, now: datetime) -> None:
    """One atomic upsert, so concurrent failures never lose a count or collide on insert."""
    table = AuthThrottle.__table__
    at_now = literal(now, UTCDateTime())
    lock_end = literal(now + policy.lock, UTCDateTime())
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(table).values(
        key=key,
        failures=1,
        window_started_at=now,
        locked_until=now + policy.lock if policy.limit <= 1 else None,
    )
    # A window that has run out, or a lock that has ended, starts the count again.
    fresh = or_(
        table.c.window_started_at <= now - policy.window,
        table.c.locked_until <= now,
    )
    failures = case((fresh, 1), else_=table.c.failures + 1)
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.key],
        set_={
            "failures": failures,
            "window_started_at": case((fresh, at_now), else_=table.c.window_started_at),
            "locked_until": case(
                (failures >= policy.limit, lock_end),
                (fresh, null()),
                else_=table.c.locked_until,
            ),
        },
    )
    session.execute(stmt)


def reset(session: Session, keys: Keys) -> None:
    """Forget the account's failures after a successful log-in (the client's stay)."""
    session.execute(delete(AuthThrottle).where(AuthThrottle.key == keys.account))
