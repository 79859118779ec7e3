"""Jinja2 templates, display filters and the one function that turns a template into a page.

Every page goes out with a strict Content-Security-Policy (scripts, styles, images and
connections only from this server; ``api.security_headers`` adds it to every HTML answer), so
nothing a page loads can leave the machine, and no inline script can run; chart data travel
in ``<script type="application/json">`` blocks.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from datetime import date, datetime
from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, PackageLoader, StrictUndefined, pass_context, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse

from smartstudy import __version__
from smartstudy.services import localtime
from smartstudy.web import sessions

#: Messages shown after a redirect, chosen by a key in the URL (never text from the URL).
NOTICES = {
    "signed-up": "Welcome! Your account is ready. Pick a topic to study.",
    "logged-out": "You are logged out.",
    "deleted": "Your account and all its data have been deleted.",
    "profile": "Profile saved.",
    "password": "Password changed. Other devices were logged out.",
    "activated": "Model version activated.",
    "account-changed": "Account changed.",
    "subject-added": "Subject added. Add its topics below.",
    "topic-added": (
        "Topic added. Students can practise it now; add its concepts and quiz questions here."
    ),
    "concept-added": "Concept added.",
    "question-added": "Question added. The form below is ready for the next one.",
    "question-saved": "Question saved. Quizzes already taken keep it as it was asked.",
    "question-deleted": "Question deleted. Quizzes already taken keep their copy of it.",
    "renamed": "Name changed.",
    "training": "Training queued: the run below updates by itself until it ends.",
    "nothing-new": (
        "No task has been completed since the last training, so a new one would learn "
        "nothing: no training was started and no version was stored."
    ),
    "recomputed": "BKT recompute finished; see the run below.",
    "exam-added": "Exam added. Here is your plan; it changes as you complete tasks.",
    "exam-deleted": "Exam deleted.",
    "discarded": "Task discarded. Nothing of it was kept.",
}


def pct(value: float | None, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    return f"{100 * value:.{digits}f}%"


def duration(seconds: float | None) -> str:
    """45 s, 3 min 05 s, 1 h 02 min."""
    if seconds is None or not math.isfinite(seconds):
        return "—"
    s = round(seconds)
    if s < 60:
        return f"{max(s, 0)} s" if seconds >= 0.5 or seconds == 0 else f"{seconds:.1f} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {(s % 3600) // 60:02d} min"


def user_clock(context: Mapping[str, Any]) -> tuple[str, str]:
    """The time zone and locale of the page's signed-in ``user`` (UTC, en-GB for none)."""
    return localtime.clock_of(context.get("user"))


@pass_context
def when(context: Mapping[str, Any], value: datetime | date | None) -> str:
    """A datetime on the user's clock, written their way ("29 Nov 2026, 08:00" in en-GB);
    a date alone ("29 Nov 2026")."""
    if value is None:
        return "—"
    zone, locale = user_clock(context)
    if isinstance(value, datetime):
        return localtime.format_datetime(value, zone, locale)
    return localtime.format_date(value, zone, locale)


@pass_context
def clock(context: Mapping[str, Any], value: datetime | None) -> str:
    """The time of day on the user's clock: "08:00" (en-GB), "8:00 AM" (en-US)."""
    if value is None:
        return "—"
    return localtime.format_time(value, *user_clock(context))


@pass_context
def day(context: Mapping[str, Any], value: datetime | date | None) -> str:
    """A short day with its weekday: "Sun 29 Nov" (en-GB), "Sun, Nov 29" (en-US)."""
    if value is None:
        return "—"
    return localtime.format_day(value, *user_clock(context))


@pass_context
def weekday(context: Mapping[str, Any], value: datetime | date | None) -> str:
    """The weekday's name in the user's language: "Sunday", "Sonntag"."""
    if value is None:
        return "—"
    return localtime.format_weekday(value, *user_clock(context))


def signed(value: float | None, digits: int = 1, unit: str = "") -> str:
    if value is None:
        return "—"
    rounded = round(value, digits)
    sign = "+" if rounded > 0 else ("−" if rounded < 0 else "±")
    return f"{sign}{abs(rounded):.{digits}f}{unit}"


def combine_query(base: dict[str, Any], overrides: dict[str, Any]) -> str:
    """``base`` with ``overrides`` applied (None removes a key), as a query string."""
    merged = dict(base)
    for key, value in overrides.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return urlencode(merged)


@cache
def _static_version(path: str) -> str:
    data = resources.files("smartstudy.web").joinpath("static", path).read_bytes()
    return hashlib.sha256(data).hexdigest()[:10]


def static_url(path: str) -> str:
    """URL of a file under ``web/static`` with a content hash, so it can be cached long."""
    return f"/static/{path}?v={_static_version(path)}"


def times(ratio: float | None) -> str:
    """A ratio with two significant digits: 0.04 -> "0.04×", 1.234 -> "1.2×", 123 -> "123×"."""
    if ratio is None or ratio != ratio:
        return "—"
    if ratio >= 100:
        return f"{ratio:.0f}×"
    return f"{ratio:.2g}×"


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``3|counted("quiz", "quizzes")`` -> "3 quizzes"; ``1|counted("task")`` -> "1 task"."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


@cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("smartstudy.web", "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.filters.update(
        pct=pct,
        duration=duration,
        when=when,
        clock=clock,
        day=day,
        weekday=weekday,
        signed=signed,
        combine_query=combine_query,
        counted=counted,
        times=times,
    )
    env.globals.update(
        static_url=static_url,
        version=__version__,
        plotly_url=plotly_url(),
        # The pages' ``active`` values of the admin area: its menu item and its tabs.
        ADMIN_AREAS=("admin", "users", "catalogue"),
    )
    return env


def plotly_url() -> str:
    from smartstudy.web.assets import plotly_version

    return f"/static/vendor/plotly-{plotly_version()}.min.js"


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
) -> HTMLResponse:
    """Render ``template`` for this request (user, CSRF token, notice)."""
    secret = request.app.state.context.settings.resolved_secret_key
    ws = sessions.of_request(request, secret)
    values: dict[str, Any] = {
        "request": request,
        "user": getattr(request.state, "user", None),
        "csrf_token": ws.csrf,
        "notice": NOTICES.get(request.query_params.get("done", "")),
        "open_signup": request.app.state.context.settings.open_signup,
        "errors": {},
        "values": {},
        "charts": False,
        "active": "",
    }
    values.update(context or {})
    html = environment().get_template(template).render(values)
    response = HTMLResponse(html, status_code=status_code)
    if ws.fresh:
        sessions.set_cookie(response, request, ws, secret)
    return response


def redirect(url: str, *, notice: str | None = None) -> RedirectResponse:
    """A 303 See Other (the browser follows with GET), optionally with a notice key."""
    if notice:
        url += ("&" if "?" in url else "?") + f"done={notice}"
    return RedirectResponse(url, status_code=303)
