"""The web pages, one module per area; ``router`` holds them all."""

from __future__ import annotations

from fastapi import APIRouter

from smartstudy.web.routes import admin, auth, learning, preparation, progress, settings, study

router = APIRouter(include_in_schema=False)
for _module in (auth, progress, study, preparation, learning, settings, admin):
    router.include_router(_module.router)
