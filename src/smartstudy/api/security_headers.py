"""Security headers on every response: pages, API, docs, static files and error answers.

One pure ASGI middleware (no ``BaseHTTPMiddleware``: it neither buffers nor copies bodies; it
only appends to the header list of ``http.response.start``). A header that a route set itself
is kept, so a route can choose a stricter or looser value (the API docs set their own
Content-Security-Policy). ``install`` wraps the app's whole middleware stack, so that even the
500 answer of Starlette's ``ServerErrorMiddleware`` and a 413 from the body-size limit carry
the headers.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from itertools import product

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: Server-rendered pages: scripts, styles, images and connections only from this server, no
#: inline script. 'unsafe-inline' for styles only: Plotly positions its SVG with style attributes.
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
#: /docs (Swagger UI) and /redoc, served from local files. Both set inline style attributes and
#: ReDoc injects <style> elements (styled-components), hence 'unsafe-inline' for styles; no inline
#: script runs (Swagger UI's start-up script is a file of its own). ReDoc's search runs in a
#: worker made from a blob: URL.
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; worker-src blob:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
#: Everything that is not an HTML document (JSON, JavaScript, CSS, SVG, CSV): nothing may load,
#: and the answer may not be framed, should a browser ever render it as a document.
STRICT_CSP = "default-src 'none'; frame-ancestors 'none'"

#: Long enough for browsers to keep it (a year); without includeSubDomains, since a self-hosted
#: instance often shares its parent domain with hosts that are not ours.
HSTS = "max-age=31536000"

Headers = tuple[tuple[bytes, bytes], ...]

_COMMON: Headers = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
)
# Personal data (API answers, pages, tokens) must never sit in a shared or back-button cache;
# Pragma for old HTTP/1.0 caches, as RFC 6749 asks of token responses.
_NO_STORE: Headers = (
    (b"cache-control", b"no-store"),
    (b"pragma", b"no-cache"),
)


def _headers(html: bool, no_store: bool, https: bool) -> Headers:
    csp = PAGE_CSP if html else STRICT_CSP
    headers = (*_COMMON, (b"content-security-policy", csp.encode()))
    if no_store:
        headers += _NO_STORE
    if https:
        headers += ((b"strict-transport-security", HSTS.encode()),)
    return headers


#: The headers for each kind of answer: (HTML?, no-store?, over https?).
_BY_KIND: dict[tuple[bool, bool, bool], Headers] = {
    kind: _headers(*kind) for kind in product((False, True), repeat=3)
}


class HTTPMiddleware(ABC):
    """A pure ASGI middleware for HTTP requests: ``handle`` sees each HTTP request; any other
    scope (lifespan, websocket) goes straight to the wrapped app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.handle(scope, receive, send)

    @abstractmethod
    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one HTTP request through ``self.app``."""


class SecurityHeadersMiddleware(HTTPMiddleware):
    """Add the security headers to every HTTP response that lacks them."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        root: str = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]
        # Static files are the same for everyone and carry their own validators or lifetimes.
        no_store = not path.startswith("/static/")
        # The scheme the client used; behind a proxy uvicorn takes it from X-Forwarded-Proto.
        https = scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                raw = list(message.get("headers", ()))
                present = {name.lower() for name, _ in raw}
                content_type = next((v for k, v in raw if k.lower() == b"content-type"), b"")
                html = content_type.lower().startswith(b"text/html")
                raw.extend(h for h in _BY_KIND[html, no_store, https] if h[0] not in present)
                message["headers"] = raw
            await send(message)

        await self.app(scope, receive, send_with_headers)


def wrap_outermost(app: FastAPI, wrap: Callable[[ASGIApp], ASGIApp]) -> None:
    """Put ``wrap`` around everything else of ``app``, error handling included (the last
    call wraps outermost).

    ``app.add_middleware`` would place a middleware inside ``ServerErrorMiddleware``, whose
    500 answers would then bypass it.
    """
    build = app.build_middleware_stack

    def build_wrapped() -> ASGIApp:
        return wrap(build())

    app.build_middleware_stack = build_wrapped  # type: ignore[method-assign]


def install(app: FastAPI) -> None:
    """Put the middleware outside everything else of ``app``: even a 500 answer of
    ``ServerErrorMiddleware`` carries the headers."""
    wrap_outermost(app, SecurityHeadersMiddleware)
