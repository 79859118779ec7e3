"""HEAD answered like GET, without the body (RFC 9110, 9.3.2).

FastAPI routes take only the methods they name, so a ``HEAD /healthz`` from an uptime monitor,
or a link checker's ``HEAD /login``, answered 405. ``HeadAsGetMiddleware`` serves a HEAD
request as the GET of the same address and sends its status and headers (Content-Length
included: the size the GET's body would have) with an empty body. A GET that would not be
allowed (the address only takes POST) answers 405 to the HEAD too.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.types import Message, Receive, Scope, Send

from smartstudy.api.security_headers import HTTPMiddleware, wrap_outermost


class HeadAsGetMiddleware(HTTPMiddleware):
    """Serve ``HEAD`` as ``GET`` and drop the body of the answer."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def send_without_body(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, send_without_body)


def install(app: FastAPI) -> None:
    """Wrap everything of ``app`` installed so far (routes, error pages) in the middleware;
    the layers installed later (request logs, metrics, security headers) see the HEAD."""
    wrap_outermost(app, HeadAsGetMiddleware)
