"""Request metrics, request ids and the access log; the ``GET /metrics`` endpoint.

``RequestObservabilityMiddleware`` is pure ASGI, like the security headers: it reads the
status from ``http.response.start`` and adds one header, never touching bodies. It runs
outside Starlette's error handling, so a request that crashed is counted and logged with its
500. Per request it

- takes the client's ``X-Request-ID`` when it is plain and short, else makes one, keeps it
  in ``logs.REQUEST_ID`` for every log line of the request, and sends it back;
- observes the latency histogram by method, route template and status class;
- writes one access-log line (logger ``smartstudy.access``).

``/metrics`` exposes no personal data, but it does show how the service is used, so it is
not public: with ``SMARTSTUDY_METRICS_TOKEN`` set it wants ``Authorization: Bearer
<token>`` from every client; without it only clients on the loopback interface get it (a
Prometheus on the same host, or one reached through an SSH tunnel).
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import time
import uuid

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from smartstudy.api.security_headers import HTTPMiddleware
from smartstudy.observability import logs, metrics
from smartstudy.services.context import AppContext

access_log = logging.getLogger("smartstudy.access")

REQUEST_ID_HEADER = b"x-request-id"


def route_template(scope: Scope, root_path: str = "") -> str:
    """The template of the route that answered (``/v1/tasks/{task_id}``), ``/static/{path}``
    for a mounted app, or ``unmatched`` when no route matched.

    ``scope`` is the request's scope after the app has answered (routing writes the route
    into it); ``root_path`` is its root path before: a mount appends its prefix to it.
    """
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    if template and not isinstance(route, Mount):
        return str(template)
    mounted = str(scope.get("root_path", ""))
    if mounted.startswith(root_path) and len(mounted) > len(root_path):
        return mounted[len(root_path) :].rstrip("/") + "/{path}"
    return metrics.UNMATCHED


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name.lower() == REQUEST_ID_HEADER:
            given = logs.safe_request_id(value.decode("latin-1"))
            if given is not None:
                return given
            break
    return uuid.uuid4().hex


class RequestObservabilityMiddleware(HTTPMiddleware):
    """Latency metrics, a request id and an access-log line for every HTTP request."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = _request_id(scope)
        root_path = str(scope.get("root_path", ""))
        token = logs.REQUEST_ID.set(request_id)
        status = 500  # what the client gets if the app fails before answering
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                raw = list(message.get("headers", ()))
                if all(name.lower() != REQUEST_ID_HEADER for name, _ in raw):
                    raw.append((REQUEST_ID_HEADER, request_id.encode("latin-1")))
                message["headers"] = raw
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            route = route_template(scope, root_path)
            method = scope.get("method", "")
            metrics.observe_request(method, route, status, seconds)
            access_log.info(
                "%s %s %d %.1f ms",
                method,
                scope.get("path", ""),
                status,
                seconds * 1000,
                extra={
                    "method": method,
                    "route": route,
                    "path": scope.get("path", ""),
                    "status": status,
                    "duration_ms": round(seconds * 1000, 3),
                },
            )
            logs.REQUEST_ID.reset(token)


def _is_loopback(host: str | None) -> bool:
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def metrics_access_problem(request: Request, token: str | None) -> JSONResponse | None:
    """The answer refusing ``request`` access to /metrics, or None if it may scrape."""
    if token:
        given = request.headers.get("authorization", "")
        scheme, _, value = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            value.strip().encode(), token.encode()
        ):
            return JSONResponse(
                status_code=401,
                content={"detail": "metrics need Authorization: Bearer <SMARTSTUDY_METRICS_TOKEN>"},
                headers={"WWW-Authenticate": "Bearer"},
            )
        return None
    if not _is_loopback(request.client.host if request.client else None):
        return JSONResponse(
            status_code=403,
            content={
                "detail": "metrics are served to loopback clients only; set "
                "SMARTSTUDY_METRICS_TOKEN to scrape from another host"
            },
        )
    return None


def install(app: FastAPI, context: AppContext) -> None:
    """Add ``GET /metrics`` and put the middleware around the app's whole middleware stack
    (outside the error handling, so crashed requests are counted too)."""
    jobs = metrics.JobsCollector(context.sessions)

    @app.get("/metrics", include_in_schema=False)
    def prometheus_metrics(request: Request) -> Response:
        refused = metrics_access_problem(request, context.settings.metrics_token)
        if refused is not None:
            return refused
        return Response(metrics.exposition([jobs]), media_type=metrics.CONTENT_TYPE)

    build = app.build_middleware_stack

    def build_with_observability() -> ASGIApp:
        return RequestObservabilityMiddleware(build())

    app.build_middleware_stack = build_with_observability  # type: ignore[method-assign]
