"""Reading form and query values: typed values out, clear messages for what is wrong.

Each parser returns the value or raises ``FieldError`` with a sentence for the user; pages
collect those per field and re-render the form with what the user typed.
"""

from __future__ import annotations

import math
import uuid
from datetime import date

from email_validator import EmailNotValidError, validate_email
from starlette.datastructures import FormData

from smartstudy.services.tasks import MAX_TASK_SECONDS


class FieldError(ValueError):
    """A message about one field, fit to show next to it."""


def text(form: FormData, name: str, max_length: int = 1000) -> str:
    value = form.get(name)
    return value[:max_length] if isinstance(value, str) else ""


def required(value: str, label: str) -> str:
    if not value.strip():
        raise FieldError(f"Enter your {label}." if label else "This field is required.")
    return value


def email(value: str) -> str:
    value = value.strip()
    if not value:
        raise FieldError("Enter your e-mail address.")
    try:
        return validate_email(value, check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise FieldError(f"That is not a valid e-mail address: {exc}") from exc


def optional_uuid(value: str | None) -> uuid.UUID | None:
    """A UUID or None; a malformed value counts as "not chosen"."""
    if not value:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def optional_date(value: str | None) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def positive_int(value: str | None, default: int, maximum: int | None = None) -> int:
    try:
        n = int(value or default)
    except ValueError:
        return default
    n = max(1, n)
    return min(n, maximum) if maximum else n


def _number(value: str, label: str) -> float:
    cleaned = value.strip().replace(",", ".")
    if not cleaned:
        return 0.0
    try:
        number = float(cleaned)
    except ValueError as exc:
        raise FieldError(f"{label} must be a number, not “{value.strip()}”.") from exc
    if not math.isfinite(number):
        raise FieldError(f"{label} must be a number, not “{value.strip()}”.")
    if number < 0:
        raise FieldError(f"{label} cannot be negative.")
    return number


def elapsed_seconds(minutes: str, seconds: str) -> float:
    """Time on a task from a minutes and a seconds box: more than 0, at most 24 hours."""
    if not minutes.strip() and not seconds.strip():
        raise FieldError("Enter the time you spent (minutes and seconds), or use the timer.")
    total = _number(minutes, "Minutes") * 60 + _number(seconds, "Seconds")
    if total <= 0:
        raise FieldError("The time must be more than 0 seconds.")
    if total > MAX_TASK_SECONDS:
        raise FieldError(
            f"The time must be at most 24 hours ({MAX_TASK_SECONDS // 60} minutes); "
            f"you entered {total / 3600:.1f} hours."
        )
    return total
