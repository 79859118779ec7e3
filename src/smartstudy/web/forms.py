"""Reading form and query values: typed values out, clear messages for what is wrong.

Each parser returns the value or raises ``FieldError`` with a sentence for the user; pages
collect those per field and re-render the form with what the user typed. Free text is read
whole with ``typed`` and checked with ``checked_text`` against the limits in
``services.rules``, so a value that is too long gets a message instead of being cut.
"""

from __future__ import annotations

import math
import uuid
from datetime import date

from email_validator import EmailNotValidError, validate_email
from starlette.datastructures import FormData

from smartstudy.services import rules


class FieldError(ValueError):
    """A message about one field, fit to show next to it."""


def choices(values: tuple[str, ...]) -> str:
    """The allowed values in words: "easy, medium or hard"."""
    return values[0] if len(values) == 1 else f"{', '.join(values[:-1])} or {values[-1]}"


def text(form: FormData, name: str, max_length: int = 1000) -> str:
    """A value cut to ``max_length``: for ids and choices, which a cut makes invalid anyway.
    Text a person types goes through ``typed`` and ``checked_text`` instead."""
    value = form.get(name)
    return value[:max_length] if isinstance(value, str) else ""


def typed(form: FormData, name: str) -> str:
    """The value exactly as typed (uncut), to check and to show again in the form."""
    value = form.get(name)
    return value if isinstance(value, str) else ""


def checked_text(value: str, label: str, max_length: int, *, multiline: bool = False) -> str:
    """``value`` if it keeps the rules for stored text (length, no control characters),
    else ``FieldError`` naming ``label``, e.g. "The description must be at most ..."."""
    problem = rules.text_problem(value, max_length, multiline=multiline)
    if problem is not None:
        raise FieldError(f"The {label} {problem}.")
    return value


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


def positive_int(value: str | None, default: int, maximum: int) -> int:
    """A whole number from 1 to ``maximum``: beyond it counts as ``maximum``, anything
    unreadable (including more digits than Python parses) as ``default``."""
    try:
        n = int(value or default)
    except ValueError:
        return default
    return min(max(1, n), maximum)


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
    """Time on a task from a minutes and a seconds box: more than 0, at most
    ``rules.MAX_TASK_HOURS`` hours."""
    if not minutes.strip() and not seconds.strip():
        raise FieldError("Enter the time you spent (minutes and seconds), or use the timer.")
    total = _number(minutes, "Minutes") * 60 + _number(seconds, "Seconds")
    if total <= 0:
        raise FieldError("The time must be more than 0 seconds.")
    if total > rules.MAX_TASK_SECONDS:
        raise FieldError(
            f"The time must be at most {rules.MAX_TASK_HOURS} hours "
            f"({rules.MAX_TASK_SECONDS // 60} minutes); "
            f"you entered {total / 3600:.1f} hours."
        )
    return total
