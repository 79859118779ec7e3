"""The web app: server-rendered pages (Jinja2), small static JavaScript, Plotly charts.

Pages call the services directly with one database session per request; they never go
through the JSON API. ``install(app)`` adds the pages, the static files and Plotly's
JavaScript (served from the ``plotly`` package, never from a CDN) to the FastAPI app.
"""

from __future__ import annotations

from importlib import resources

from fastapi import FastAPI, Request
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response


def install(app: FastAPI) -> None:
    """Mount the web pages and their static files on ``app``."""
    from smartstudy.web.assets import plotly_response, plotly_version
    from smartstudy.web.routes import router

    @app.get(f"/static/vendor/plotly-{plotly_version()}.min.js", include_in_schema=False)
    def plotly_js(request: Request) -> Response:
        return plotly_response(request)

    app.include_router(router)
    static = resources.files("smartstudy.web").joinpath("static")
    app.mount("/static", StaticFiles(directory=str(static)), name="static")
