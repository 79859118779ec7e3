"""Structured logs: one handler on the root logger, as text or as JSON lines.

``SMARTSTUDY_LOG_FORMAT=json`` makes every line one JSON object, for a log collector to read
without parsing free text: ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message``, the
``request_id`` of the request being answered (if any), whatever the call passed as
``extra=`` (the access log's ``method``, ``route``, ``path``, ``status``, ``duration_ms``)
and ``exception`` with the traceback. ``text`` (the default) is one readable line each.

The request id lives in a context variable set by the API middleware, so every line logged
while a request is answered carries it, from the access log to a model's warning.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import IO, Any

#: The id of the request being answered in this context (set by the API middleware).
REQUEST_ID: ContextVar[str | None] = ContextVar("smartstudy_request_id", default=None)
#: An ``X-Request-ID`` from the client is kept only if it is short and plain: it goes into
#: every log line and back in the answer, so no spaces, quotes or control characters.
SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._~:/+=@-]{0,127}")
FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"

# The attributes every LogRecord has: anything else on a record came from ``extra=``.
_RECORD_FIELDS = frozenset(logging.makeLogRecord({}).__dict__) | {
    "message",
    "asctime",
    "request_id",
    "color_message",  # uvicorn's copy of the message with terminal colours
}
#: Marks the handler ``configure_logging`` installed, so a second call replaces it.
_OURS = "_smartstudy_handler"


def safe_request_id(value: str | None) -> str | None:
    """``value`` if it may serve as a request id, else None."""
    if value and SAFE_REQUEST_ID.fullmatch(value):
        return value
    return None


class RequestIdFilter(logging.Filter):
    """Put the current request id (or "-") on every record as ``request_id``."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = REQUEST_ID.get() or "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record (see the module docstring for the fields)."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or REQUEST_ID.get()
        if request_id and request_id != "-":
            out["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in _RECORD_FIELDS and key not in out and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        # default=str: an extra that JSON cannot hold (a UUID, a path) is written as text.
        return json.dumps(out, default=str, ensure_ascii=False)


def make_handler(log_format: str = "text", stream: IO[str] | None = None) -> logging.Handler:
    """A stream handler (stderr by default) writing ``log_format`` lines with request ids."""
    if log_format not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, got {log_format!r}")
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.addFilter(RequestIdFilter())
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    setattr(handler, _OURS, True)
    return handler


def configure_logging(
    log_format: str = "text", level: str = "INFO", stream: IO[str] | None = None
) -> logging.Handler:
    """Send every log record at ``level`` or above through one handler of ``log_format``.

    The root logger's other handlers (the command line's plain one) are removed, so no line
    comes out twice; calling it again replaces its own handler. Uvicorn's loggers propagate
    here when the server runs with ``log_config=None``.
    """
    handler = make_handler(log_format, stream)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
        if getattr(old, _OURS, False):
            old.close()
    root.addHandler(handler)
    root.setLevel(level.upper())
    return handler
