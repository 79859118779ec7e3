"""Password hashing (Argon2id) and signed, expiring access tokens (JWT, HS256)."""

from __future__ import annotations

import secrets
import threading
import uuid
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import NamedTuple

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from smartstudy.services.errors import AuthenticationError

_hasher = PasswordHasher()
ALGORITHM = "HS256"
#: Password hashes computed at once in a process. Each Argon2id hash takes the hasher's
#: memory cost (64 MiB by default) while it runs, and a server runs 20 request threads:
#: a burst of log-ins would otherwise take over a gigabyte (the load benchmark's 32 clients
#: signing in at once did). Further log-ins wait their turn.
MAX_CONCURRENT_HASHES = 2
_hashing = threading.BoundedSemaphore(MAX_CONCURRENT_HASHES)


class AccessClaims(NamedTuple):
    """What a valid access token says: whose it is and the user's token version at issue."""

    user_id: uuid.UUID
    version: int


def hash_password(password: str) -> str:
    with _hashing:
        return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        with _hashing:
            return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


#: Letters and digits that cannot be taken for one another when read out or copied by hand
#: (no 0/o, 1/l/i), for passwords one person hands to another.
_PLAIN_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


def random_password() -> str:
    """A new random password to hand over once: four groups of four plain characters
    ("k7mq-2xcv-..."), about 79 bits."""
    groups = ("".join(secrets.choice(_PLAIN_ALPHABET) for _ in range(4)) for _ in range(4))
    return "-".join(groups)


@cache
def _dummy_hash() -> str:
    return _hasher.hash(secrets.token_urlsafe(24))


def verify_nothing(password: str) -> bool:
    """Spend what one real verification costs, and fail: used when there is no account to
    check against, so that a wrong e-mail takes as long as a wrong password."""
    verify_password(_dummy_hash(), password)
    return False


def create_access_token(
    user_id: uuid.UUID,
    secret: str,
    minutes: int,
    now: datetime | None = None,
    *,
    version: int = 0,
) -> str:
    """A token for ``user_id``; ``version`` is the user's ``token_version`` (a password
    change bumps it, and tokens of an older version are refused)."""
    issued = now or datetime.now(UTC)
    claims = {
        "sub": str(user_id),
        "iat": int(issued.timestamp()),
        "exp": int((issued + timedelta(minutes=minutes)).timestamp()),
        "typ": "access",
        "ver": version,
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def decode_access_token(token: str, secret: str) -> AccessClaims:
    """The claims of a valid token; ``AuthenticationError`` for anything else."""
    try:
        claims = jwt.decode(
            token, secret, algorithms=[ALGORITHM], options={"require": ["exp", "sub"]}
        )
    except jwt.ExpiredSignatureError as exc:
        raise AuthenticationError("token expired; log in again") from exc
    except jwt.PyJWTError as exc:
        raise AuthenticationError("invalid token") from exc
    # Tokens from before versions existed carry none: they are version 0.
    version = claims.get("ver", 0)
    if claims.get("typ") != "access" or type(version) is not int:
        raise AuthenticationError("invalid token")
    try:
        return AccessClaims(uuid.UUID(str(claims["sub"])), version)
    except ValueError as exc:
        raise AuthenticationError("invalid token") from exc
