"""Domain errors raised by services; the API maps each to one HTTP status.

``CannotPredictError`` is the models' own class (``smartstudy.models.base``), re-exported so
that the models and the services raise and catch one class. It is not a ``ServiceError``: it
never reaches the API, because the prediction chain catches it and moves on.
"""

from __future__ import annotations

from smartstudy.models.base import CannotPredictError

__all__ = [
    "AuthenticationError",
    "CannotPredictError",
    "ConflictError",
    "InvalidInputError",
    "NotFoundError",
    "PermissionDeniedError",
    "ServiceError",
    "TooManyAttemptsError",
]


class ServiceError(Exception):
    """Base class; ``str(err)`` is a message fit to show the user."""


class NotFoundError(ServiceError):
    """The thing does not exist, or the caller may not know that it does (HTTP 404)."""


class ConflictError(ServiceError):
    """The request clashes with the current state, e.g. completing twice (HTTP 409)."""


class PermissionDeniedError(ServiceError):
    """The caller is known but not allowed to do this (HTTP 403)."""


class AuthenticationError(ServiceError):
    """Missing, wrong, expired or tampered credentials (HTTP 401)."""


class InvalidInputError(ServiceError):
    """Input that passed the schema but breaks a rule (HTTP 422); names the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class TooManyAttemptsError(ServiceError):
    """Too many failed log-ins for an account or from a client (HTTP 429); try again after
    ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
