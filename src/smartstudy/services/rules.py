"""Limits on what people send, stated once.

The API schemas, the web forms, the services and the CSV import all refer to these, so one
kind of text has one limit everywhere. Name lengths match the columns in ``store/orm.py``.
Text may not hold C0 control characters (NUL cannot be stored in PostgreSQL at all) nor
lone UTF-16 surrogates (they cannot be encoded as UTF-8); multi-line text may hold tabs and
line breaks.
"""

from __future__ import annotations

import re

from smartstudy.services.errors import InvalidInputError
from smartstudy.store import orm

#: The difficulties a task or question may have (the columns' CHECK constraints list them).
DIFFICULTIES: tuple[str, ...] = orm.DIFFICULTIES
#: The roles an account may have.
ROLES: tuple[str, ...] = orm.ROLES

#: subjects.name, topics.name, concepts.name are String(120).
MAX_NAME = 120
#: users.display_name is String(120).
MAX_DISPLAY_NAME = 120
#: users.email is String(320), the longest address RFC 5321 allows.
MAX_EMAIL = 320
#: A new password's length; a password is hashed, so any character is allowed.
MIN_PASSWORD = 8
MAX_PASSWORD = 256
#: practice_tasks.description is Text; this is the product's limit, not the column's.
MAX_DESCRIPTION = 2000
#: questions.prompt is Text; one answer option is an item of a JSON list.
MAX_PROMPT = 4000
MAX_OPTION = 500
#: A free-text filter in a query string (e.g. a model name).
MAX_FILTER = 64

#: Items per page of any list, in the API (limit) and on web pages (per_page).
MAX_PAGE_SIZE = 200
#: Rows skipped by an API list; far inside the 64-bit integers both databases use.
MAX_OFFSET = 1_000_000_000
#: Page number of a web list (a page past the end shows the last page).
MAX_PAGE = MAX_OFFSET // MAX_PAGE_SIZE

#: The time spent on one practice task, in seconds: more than 0, at most 24 h.
MAX_TASK_HOURS = 24
MAX_TASK_SECONDS = MAX_TASK_HOURS * 3600

_SINGLE_LINE_BAD = re.compile("[\x00-\x1f\ud800-\udfff]")
_MULTI_LINE_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")


def _describe(char: str) -> str:
    code = f"U+{ord(char):04X}"
    if char == "\x00":
        return f"a NUL character ({code})"
    if "\ud800" <= char <= "\udfff":
        return f"an unpaired surrogate ({code})"
    if char in "\t\n\r":
        return f"a tab or line break ({code})"
    return f"a control character ({code})"


def text_problem(
    value: str, max_length: int | None = None, *, multiline: bool = False
) -> str | None:
    """What is wrong with ``value`` as stored text, in words (no field name), or None;
    without ``max_length`` only its characters are checked."""
    if max_length is not None and len(value) > max_length:
        return f"must be at most {max_length:,} characters (it has {len(value):,})"
    bad = (_MULTI_LINE_BAD if multiline else _SINGLE_LINE_BAD).search(value)
    if bad is not None:
        return (
            f"contains {_describe(bad.group())} at character {bad.start() + 1}, "
            "which is not allowed here"
        )
    return None


def check_text(
    value: str, field: str, max_length: int | None = None, *, multiline: bool = False
) -> str:
    """``value`` unchanged, or ``InvalidInputError`` naming ``field``."""
    problem = text_problem(value, max_length, multiline=multiline)
    if problem is not None:
        raise InvalidInputError(field, problem)
    return value


def name_key(name: str) -> str:
    """What two catalogue names share when they are the same name: "Maths" and "maths"."""
    return name.casefold()


#: An exam (``services.planning``): its name is exams.name, String(120); the date is after
#: today and at most a year ahead; the daily study budget in minutes; the readiness target
#: (predicted success at the exam's difficulty); how many topics, and each topic's weight.
MAX_EXAM_NAME = 120
MAX_EXAM_DAYS_AHEAD = 365
MIN_DAILY_MINUTES = 5
MAX_DAILY_MINUTES = 600
MIN_EXAM_TARGET = 0.5
MAX_EXAM_TARGET = 0.95
MAX_EXAM_TOPICS = 50
MAX_TOPIC_WEIGHT = 100.0
#: Dates off listed for one exam (at most one per day of the longest exam horizon).
MAX_DAYS_OFF = MAX_EXAM_DAYS_AHEAD
#: Next-task recommendations one request may ask for.
MAX_RECOMMENDATIONS = 20
