"""Domain errors raised by services; the API maps each to one HTTP status."""

from __future__ import annotations


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


class CannotPredictError(ServiceError):
    """A model has nothing to say about this request (e.g. a topic it was not fitted on);
    the prediction chain moves on to the next model without treating it as a failure."""


class TooManyAttemptsError(ServiceError):
    """Too many failed log-ins for an account or from a client (HTTP 429); try again after
    ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
