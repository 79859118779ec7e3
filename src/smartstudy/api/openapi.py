"""The OpenAPI document's error answers, and the API docs pages, served with no CDN.

``document_errors`` gives every API route the error statuses it can answer, with the body the
app's exception handlers write, so that generated clients and schema checkers agree with the
server. Most statuses follow from a route's dependencies and parameters:

- a signed-in user (``deps.current_user``): 401; an admin (``deps.admin_user``): 403;
- a path parameter (an id): 404; a body: 400 if it cannot be decoded; any parameter or
  body: 422;
- a database session (``deps.get_session``): 503 while the database is unavailable;
- a route that signs in and uses the database in one hand-over
  (``deps.hand_over_credentials``): 401 and 503.

What the code of a route or service decides on its own (409 on a duplicate name, 404 for an id
inside the body, 429 on log-in) is listed in ``EXTRA_ERRORS``.

``install_docs`` serves /docs (Swagger UI) and /redoc with the JavaScript and CSS of the
``fastapi-offline`` package, so both work on a machine without internet access, under a
Content-Security-Policy that allows nothing but this server.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

from fastapi import FastAPI, Request, routing
from fastapi.dependencies.models import Dependant
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.responses import HTMLResponse, Response

from smartstudy.api import deps
from smartstudy.api.security_headers import DOCS_CSP


class ErrorOut(BaseModel):
    """The body of an error answer (every status but 422)."""

    detail: str = Field(description="What went wrong, in plain words.")


class FieldErrorOut(BaseModel):
    """One refused field."""

    loc: list[str | int] = Field(description='Where: e.g. ["body", "email"] or ["query", "limit"].')
    msg: str = Field(description="What is wrong with it.")
    type: str = Field(description="A machine-readable kind, e.g. missing, value_error.")
    input: Any = Field(None, description="The value refused, when it is a plain value.")


class ValidationErrorOut(BaseModel):
    """The body of a 422 answer: each refused field, and all of them in one sentence."""

    detail: list[FieldErrorOut]
    message: str = Field(description='e.g. "email: value is not a valid email address"')


#: What each status means, as the document says it.
DESCRIPTIONS: dict[int, str] = {
    400: "The request body could not be read (e.g. it is not UTF-8, or a broken form).",
    401: "Not signed in, wrong credentials, or an access token that is invalid, expired or "
    "revoked.",
    403: "Signed in, but not allowed: admins only, or another user's data.",
    404: "No such object, or not yours to see.",
    409: "The request clashes with the current state (e.g. a name already taken, a task "
    "already completed).",
    422: "A field is missing or invalid; `message` names it.",
    429: "Too many failed log-ins; try again after the seconds in Retry-After.",
    503: "The database, or every prediction model, is unavailable; try again later.",
}

#: Statuses a route's own code (or its service's) can answer beyond what its dependencies and
#: parameters imply, by (method, path). A test checks that every entry names a real route.
EXTRA_ERRORS: dict[tuple[str, str], frozenset[int]] = {
    ("GET", "/readyz"): frozenset({503}),
    ("POST", "/v1/auth/register"): frozenset({403, 409}),
    ("POST", "/v1/users"): frozenset({409}),
    ("POST", "/v1/auth/login"): frozenset({401, 429}),
    ("POST", "/v1/auth/token"): frozenset({401, 429}),
    ("POST", "/v1/subjects"): frozenset({409}),
    ("PATCH", "/v1/subjects/{subject_id}"): frozenset({409}),
    ("GET", "/v1/topics"): frozenset({404}),
    ("POST", "/v1/topics"): frozenset({404, 409}),
    ("PATCH", "/v1/topics/{topic_id}"): frozenset({409}),
    ("GET", "/v1/concepts"): frozenset({404}),
    ("POST", "/v1/concepts"): frozenset({404, 409}),
    ("PATCH", "/v1/concepts/{concept_id}"): frozenset({409}),
    ("GET", "/v1/questions"): frozenset({404}),
    ("POST", "/v1/questions"): frozenset({404}),
    ("POST", "/v1/sessions"): frozenset({404}),
    ("POST", "/v1/sessions/{session_id}/answers"): frozenset({409}),
    ("POST", "/v1/sessions/{session_id}/submit"): frozenset({409}),
    ("POST", "/v1/tasks/preview"): frozenset({404}),
    ("POST", "/v1/tasks"): frozenset({404}),
    ("GET", "/v1/tasks"): frozenset({403}),
    ("POST", "/v1/tasks/{task_id}/start"): frozenset({409}),
    ("POST", "/v1/tasks/{task_id}/complete"): frozenset({409}),
    ("POST", "/v1/learning/bkt/update"): frozenset({403, 404}),
    ("GET", "/v1/learning/bkt/mastery"): frozenset({403, 404}),
    ("POST", "/v1/models/versions/{version_id}/activate"): frozenset({409}),
    ("PATCH", "/v1/users/{user_id}"): frozenset({409}),
    ("POST", "/v1/users/{user_id}/password"): frozenset({409}),
}


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from _calls(sub)


def route_errors(route: APIRoute, path: str) -> set[int]:
    """The error statuses ``route`` (served at ``path``) can answer."""
    calls = set(_calls(route.dependant))
    found: set[int] = set()
    # A route that signs in and uses the database in one hand-over (``in_one_hand_over``)
    # answers what ``current_user`` and ``get_session`` do.
    hand_over = deps.hand_over_credentials in calls
    if deps.current_user in calls or hand_over:
        found.add(401)
    if deps.admin_user in calls:
        found.add(403)
    if route.dependant.path_params:
        found.add(404)
    if route.body_field:
        found.add(400)  # FastAPI's answer to a body it cannot decode (not UTF-8, bad form)
    if route.dependant.path_params or route.dependant.query_params or route.body_field:
        found.add(422)
    if deps.get_session in calls or hand_over:
        found.add(503)
    for method in route.methods:
        found |= EXTRA_ERRORS.get((method, path), frozenset())
    return found


def api_routes(app: FastAPI) -> Iterator[tuple[APIRoute, str]]:
    """Each route of the OpenAPI document with the path it is served at."""
    iterate = getattr(routing, "iter_route_contexts", None)
    if iterate is None:  # an older FastAPI copies the routes of included routers into the app
        contexts: Iterable[Any] = ((r, getattr(r, "path_format", "")) for r in app.routes)
    else:  # a newer one keeps the routers, and knows the path each route ends up at
        contexts = ((c.original_route, c.path_format) for c in iterate(app.routes))
    for route, path in contexts:
        if isinstance(route, APIRoute) and route.include_in_schema:
            yield route, path


def _schemas() -> dict[str, Any]:
    found: dict[str, Any] = {}
    for model in (ErrorOut, ValidationErrorOut):
        schema = model.model_json_schema(ref_template=_REF + "{model}")
        found.update(schema.pop("$defs", {}))
        found[model.__name__] = schema
    return found


_REF = "#/components/schemas/"
_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}}
_HEADERS = {
    401: {"WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}},
    429: _RETRY_AFTER,
    503: _RETRY_AFTER,
}
# FastAPI's own 422 body, which the app's handler replaces with ValidationErrorOut.
_FASTAPI_422 = ("HTTPValidationError", "ValidationError")


def _response(status: int) -> dict[str, Any]:
    model = ValidationErrorOut if status == 422 else ErrorOut
    response: dict[str, Any] = {
        "description": DESCRIPTIONS[status],
        "content": {"application/json": {"schema": {"$ref": _REF + model.__name__}}},
    }
    if status in _HEADERS:
        response["headers"] = _HEADERS[status]
    return response


def add_errors(app: FastAPI, document: dict[str, Any]) -> dict[str, Any]:
    """``document`` (the app's OpenAPI) with the error answers of every operation."""
    paths = document.get("paths", {})
    for route, path in api_routes(app):
        statuses = route_errors(route, path)
        for method in route.methods:
            operation = paths.get(path, {}).get(method.lower())
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            default_422 = responses.get("422", {}).get("content", {}).get("application/json")
            if default_422 == {"schema": {"$ref": _REF + _FASTAPI_422[0]}}:
                del responses["422"]
            documented_here = {int(s) for s in responses if s.isdigit() and int(s) in DESCRIPTIONS}
            for status in sorted(statuses | documented_here):
                # A route that documents a status itself keeps its own words; the body
                # schema and headers are added where it left them out.
                documented = responses.setdefault(str(status), {})
                for key, value in _response(status).items():
                    documented.setdefault(key, value)
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(_schemas())
    if _REF + _FASTAPI_422[0] not in json.dumps(document):
        for name in _FASTAPI_422:
            schemas.pop(name, None)
    return document


def document_errors(app: FastAPI) -> None:
    """Make ``app.openapi()`` (and /openapi.json) list the error answers of every route."""
    build = app.openapi
    done: list[dict[str, Any]] = []  # the document last completed (FastAPI caches it)

    def openapi() -> dict[str, Any]:
        document = build()
        if not done or done[0] is not document:
            done[:] = [add_errors(app, document)]
        return document

    app.openapi = openapi  # type: ignore[method-assign]


# --- /docs and /redoc -----------------------------------------------------------------------

#: The files of the fastapi-offline package, mounted before the app's own /static.
DOCS_ASSETS = "/static/api-docs"
#: ReDoc's sidebar shows Redocly's logo from this address; "data:," is an image that fails
#: at once, so ReDoc drops it, with no request and no policy violation.
REDOC_LOGO = (b"https://cdn.redoc.ly/redoc/logo-mini.svg", b"data:,")
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


@cache
def _swagger_page(root: str, openapi_url: str, title: str) -> tuple[str, str]:
    """Swagger UI's page and its start-up script, split so that no inline script is needed."""
    html = get_swagger_ui_html(
        openapi_url=root + openapi_url,
        title=title,
        swagger_js_url=f"{root}{DOCS_ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{root}{DOCS_ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{root}/static/favicon.svg",
        oauth2_redirect_url=None,
        # No badge fetched from the online validator.
        swagger_ui_parameters={"validatorUrl": None},
    ).body.decode()
    found = _INLINE_SCRIPT.search(html)
    if found is None:  # a FastAPI release that lays the page out anew
        raise RuntimeError("Swagger UI's page has no start-up script to move out")
    script = f'<script src="{root}/docs/swagger-init.js"></script>'
    return html[: found.start()] + script + html[found.end() :], found.group(1)


def _assets() -> Traversable:
    return resources.files("fastapi_offline").joinpath("static")


@cache
def _redoc_js() -> bytes:
    return _assets().joinpath("redoc.standalone.js").read_bytes().replace(*REDOC_LOGO)


def install_docs(app: FastAPI) -> None:
    """Serve /docs and /redoc from local files; create the app with docs_url=None and
    redoc_url=None, and call this before the app's own /static is mounted."""

    @app.get(f"{DOCS_ASSETS}/redoc.standalone.js", include_in_schema=False)
    def redoc_js() -> Response:
        return Response(_redoc_js(), media_type="text/javascript; charset=utf-8")

    # After the route above, which serves ReDoc's script without the remote logo.
    app.mount(DOCS_ASSETS, StaticFiles(directory=str(_assets())), name="api-docs")
    openapi_url = app.openapi_url or "/openapi.json"
    headers = {"Content-Security-Policy": DOCS_CSP}

    def swagger(request: Request) -> tuple[str, str]:
        return _swagger_page(request.scope.get("root_path", ""), openapi_url, app.title)

    @app.get("/docs", include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        return HTMLResponse(swagger(request)[0], headers=headers)

    @app.get("/docs/swagger-init.js", include_in_schema=False)
    def swagger_init(request: Request) -> Response:
        return Response(swagger(request)[1], media_type="text/javascript; charset=utf-8")

    @app.get("/redoc", include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = get_redoc_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{DOCS_ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{root}/static/favicon.svg",
            with_google_fonts=False,
        )
        return HTMLResponse(page.body, headers=headers)
