"""A user's time zone and locale: which values are allowed, the user's local day, and dates
and times written the way the user reads them.

Times are stored in UTC everywhere; they become local only here, on the way to a person.
A time zone is an IANA name ("Asia/Tokyo"), checked against the zone database (the
``tzdata`` package supplies it where the system has none); a locale is one of
``SUPPORTED_LOCALES`` and decides how a date is written (Babel, from the CLDR data):
en-GB "29 Nov 2026, 08:00", en-US "Nov 29, 2026, 8:00 AM", de-DE "29.11.2026, 08:00".

"Today" for a user is the date on their wall clock: a task completed at 23:00 UTC counts as
the next day for a student in Tokyo (UTC+9), and their day starts at 15:00 UTC.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from babel import Locale
from babel import dates as babel_dates

from smartstudy.services.errors import InvalidInputError

DEFAULT_TIME_ZONE = "UTC"
DEFAULT_LOCALE = "en-GB"
#: Locales a user may choose, as BCP 47 tags; where a browser asks only for a language
#: ("en", "de"), the first one of that language is taken.
SUPPORTED_LOCALES: tuple[str, ...] = (
    "en-GB",
    "en-US",
    "de-DE",
    "fr-FR",
    "es-ES",
    "it-IT",
    "nl-NL",
    "pt-BR",
    "ja-JP",
)
#: users.time_zone is String(64); the longest IANA name is about 32 characters.
MAX_TIME_ZONE = 64
#: Names in the zone database that are not places: the machine's own zone and a placeholder.
_NOT_ZONES = frozenset({"localtime", "Factory", "posixrules"})


# -- rules -----------------------------------------------------------------------------------
@cache
def time_zone_names() -> tuple[str, ...]:
    """Every IANA time zone name a user may choose, sorted."""
    return tuple(sorted(available_timezones() - _NOT_ZONES))


def check_time_zone(name: object, field: str = "time_zone") -> str:
    """``name`` if it is a known IANA time zone, else ``InvalidInputError`` on ``field``."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidInputError(field, "must be an IANA time zone name such as Europe/Berlin")
    name = name.strip()
    if len(name) > MAX_TIME_ZONE or name not in _zone_set():
        shown = name if len(name) <= MAX_TIME_ZONE else name[:MAX_TIME_ZONE] + "…"
        raise InvalidInputError(
            field, f"is not a known time zone: {shown!r} (use an IANA name such as Asia/Tokyo)"
        )
    return name


def check_locale(tag: object, field: str = "locale") -> str:
    """The supported locale ``tag`` names (any letter case, "_" or "-"), else
    ``InvalidInputError`` on ``field`` listing the supported ones."""
    found = _SUPPORTED_BY_KEY.get(_key(tag)) if isinstance(tag, str) else None
    if found is None:
        raise InvalidInputError(field, f"must be one of {', '.join(SUPPORTED_LOCALES)}")
    return found


def time_zone_or_default(name: object) -> str:
    """``name`` if it is a valid time zone, else UTC: for what a browser reports."""
    try:
        return check_time_zone(name)
    except InvalidInputError:
        return DEFAULT_TIME_ZONE


def locale_or_default(tag: object) -> str:
    """The supported locale closest to what a browser reports (``navigator.language``):
    the same tag, else the first supported one of its language ("de-AT" -> "de-DE",
    "en" -> "en-GB"), else en-GB."""
    if not isinstance(tag, str):
        return DEFAULT_LOCALE
    exact = _SUPPORTED_BY_KEY.get(_key(tag))
    if exact is not None:
        return exact
    language = _key(tag).split("-")[0]
    return next((t for t in SUPPORTED_LOCALES if _key(t).split("-")[0] == language), DEFAULT_LOCALE)


def locale_label(tag: str) -> str:
    """A locale's name in its own language, e.g. "Deutsch (Deutschland)"."""
    return _babel_locale(tag).get_display_name() or tag


def _key(tag: str) -> str:
    return tag.strip().replace("_", "-").lower()


_SUPPORTED_BY_KEY = {_key(t): t for t in SUPPORTED_LOCALES}


@cache
def _zone_set() -> frozenset[str]:
    return frozenset(time_zone_names())


# -- the user's clock ------------------------------------------------------------------------
@cache
def zone(name: str) -> ZoneInfo:
    """The ``ZoneInfo`` of a stored name; UTC for one the database no longer knows (a row
    written before a zone was renamed must still show a page)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_TIME_ZONE)


def to_local(moment: datetime, time_zone: str) -> datetime:
    """``moment`` on the user's wall clock (naive means UTC): the same instant."""
    return _aware(moment).astimezone(zone(time_zone))


def local_date(moment: datetime, time_zone: str) -> date:
    """The date on the user's wall clock at ``moment`` (naive means UTC)."""
    return to_local(moment, time_zone).date()


def start_of_local_day(day: date, time_zone: str) -> datetime:
    """The UTC instant at which ``day`` begins in ``time_zone`` (local midnight; where a
    DST change skips midnight, the first moment that exists)."""
    local = datetime.combine(day, time.min, tzinfo=zone(time_zone))
    return local.astimezone(UTC)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


# -- writing dates and times -----------------------------------------------------------------
@cache
def _babel_locale(tag: str) -> Locale:
    try:
        return Locale.parse(check_locale(tag), sep="-")
    except InvalidInputError:
        return Locale.parse(DEFAULT_LOCALE, sep="-")


def clock_of(user: object) -> tuple[str, str]:
    """A user's (time zone, locale); the defaults for what they lack, or for no user."""
    return (
        getattr(user, "time_zone", None) or DEFAULT_TIME_ZONE,
        getattr(user, "locale", None) or DEFAULT_LOCALE,
    )


def format_datetime(moment: datetime, time_zone: str, locale: str) -> str:
    """Date and time of day in the user's zone: "29 Nov 2026, 08:00" (en-GB),
    "Nov 29, 2026, 8:00 AM" (en-US), "29.11.2026, 08:00" (de-DE)."""
    loc = _babel_locale(locale)
    local = to_local(moment, time_zone)
    day = babel_dates.format_date(local.date(), "medium", locale=loc)
    clock = babel_dates.format_time(local, "short", tzinfo=local.tzinfo, locale=loc)
    pattern = str(loc.datetime_formats["medium"])
    return pattern.replace("{1}", day).replace("{0}", clock)


def format_date(value: date | datetime, time_zone: str, locale: str) -> str:
    """A date: "29 Nov 2026" (en-GB), "Nov 29, 2026" (en-US), "29.11.2026" (de-DE); a
    datetime is first moved to the user's zone."""
    return babel_dates.format_date(
        _as_date(value, time_zone), "medium", locale=_babel_locale(locale)
    )


def format_time(moment: datetime, time_zone: str, locale: str) -> str:
    """The time of day in the user's zone: "08:00" (en-GB, de-DE), "8:00 AM" (en-US)."""
    local = to_local(moment, time_zone)
    return babel_dates.format_time(
        local, "short", tzinfo=local.tzinfo, locale=_babel_locale(locale)
    )


def format_day(value: date | datetime, time_zone: str, locale: str) -> str:
    """A short day with its weekday: "Sun 29 Nov" (en-GB), "Sun, Nov 29" (en-US)."""
    return babel_dates.format_skeleton(
        "MMMEd", _as_date(value, time_zone), locale=_babel_locale(locale)
    )


def format_short_date(value: date | datetime, time_zone: str, locale: str) -> str:
    """Day and month only, for chart labels: "29 Nov" (en-GB), "Nov 29" (en-US)."""
    return babel_dates.format_skeleton(
        "MMMd", _as_date(value, time_zone), locale=_babel_locale(locale)
    )


def format_weekday(value: date | datetime, time_zone: str, locale: str) -> str:
    """The weekday's full name: "Sunday" (en-GB), "Sonntag" (de-DE)."""
    return babel_dates.format_date(_as_date(value, time_zone), "EEEE", locale=_babel_locale(locale))


def _as_date(value: date | datetime, time_zone: str) -> date:
    return local_date(value, time_zone) if isinstance(value, datetime) else value
