"""The web pages, one module per area; ``router`` holds them all."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote

from fastapi import APIRouter, Request
from starlette.responses import Response

from smartstudy.web.render import redirect
from smartstudy.web.routes import (
    admin,
    auth,
    catalogue_admin,
    learning,
    preparation,
    progress,
    settings,
    study,
    users,
)

#: The addresses that only take a form's POST, and the page each form is on. Opened as a page
#: (a reload after a refused form, a bookmark, a typed address) they lead to that page instead
#: of a "not possible here" error.
FORM_PAGES: dict[str, str] = {
    "/logout": "/",
    "/quiz": "/subjects",
    "/study/tasks/{task_id}/start": "/study/tasks/{task_id}",
    "/study/tasks/{task_id}/complete": "/study/tasks/{task_id}",
    "/study/tasks/{task_id}/discard": "/study/tasks/{task_id}",
    "/preparation/exams": "/preparation",
    "/preparation/exams/{exam_id}/delete": "/preparation/exams/{exam_id}",
    "/settings/profile": "/settings",
    "/settings/password": "/settings",
    "/settings/delete": "/settings",
    "/admin/models/train": "/admin/models",
    "/admin/models/bkt-recompute": "/admin/models",
    "/admin/models/versions/{version_id}/activate": "/admin/models",
    "/admin/users/{user_id}/password": "/admin/users/{user_id}",
    "/admin/users/{user_id}/access": "/admin/users/{user_id}",
    "/admin/users/{user_id}/role": "/admin/users/{user_id}",
    "/admin/catalogue/subjects": "/admin/catalogue",
    "/admin/catalogue/subjects/{subject_id}/rename": "/admin/catalogue",
    "/admin/catalogue/topics": "/admin/catalogue",
    "/admin/catalogue/questions/import": "/admin/catalogue",
    "/admin/catalogue/topics/{topic_id}/rename": "/admin/catalogue/topics/{topic_id}",
    "/admin/catalogue/topics/{topic_id}/concepts": "/admin/catalogue/topics/{topic_id}",
    "/admin/catalogue/topics/{topic_id}/concepts/{concept_id}/rename": (
        "/admin/catalogue/topics/{topic_id}"
    ),
    "/admin/catalogue/topics/{topic_id}/questions": "/admin/catalogue/topics/{topic_id}",
    "/admin/catalogue/topics/{topic_id}/questions/{question_id}/edit": (
        "/admin/catalogue/topics/{topic_id}"
    ),
    "/admin/catalogue/topics/{topic_id}/questions/{question_id}/delete": (
        "/admin/catalogue/topics/{topic_id}"
    ),
}


def _to_page(page: str) -> Callable[[Request], Response]:
    def to_page(request: Request) -> Response:
        params = {name: quote(str(value), safe="") for name, value in request.path_params.items()}
        return redirect(page.format(**params))

    return to_page


router = APIRouter(include_in_schema=False)
for _module in (
    auth,
    progress,
    study,
    preparation,
    learning,
    settings,
    admin,
    users,
    catalogue_admin,
):
    router.include_router(_module.router)
for _form, _page in FORM_PAGES.items():
    router.add_api_route(_form, _to_page(_page), methods=["GET"])
