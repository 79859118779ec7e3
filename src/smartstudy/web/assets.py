"""Plotly's JavaScript, served from the copy inside the ``plotly`` Python package.

No CDN: the file is read once from the installed package, compressed once in memory, and
served under a versioned URL with a one-year immutable cache lifetime.
"""

from __future__ import annotations

import gzip
import re
from functools import cache
from importlib import resources

from starlette.requests import Request
from starlette.responses import Response

CACHE_FOREVER = "public, max-age=31536000, immutable"


@cache
def plotly_js() -> bytes:
    """The minified plotly.js bundled with the plotly package."""
    return resources.files("plotly").joinpath("package_data", "plotly.min.js").read_bytes()


@cache
def plotly_js_gzip() -> bytes:
    return gzip.compress(plotly_js(), compresslevel=6, mtime=0)


@cache
def plotly_version() -> str:
    """The plotly.js version from the bundle's banner, e.g. ``3.1.0``."""
    head = plotly_js()[:400].decode("utf-8", "replace")
    found = re.search(r"plotly\.js v(\d+\.\d+\.\d+)", head)
    return found.group(1) if found else "bundled"


def plotly_response(request: Request) -> Response:
    # nosniff and the other security headers come from api.security_headers.
    headers = {"Cache-Control": CACHE_FOREVER, "Vary": "Accept-Encoding"}
    if "gzip" in request.headers.get("accept-encoding", ""):
        headers["Content-Encoding"] = "gzip"
        body = plotly_js_gzip()
    else:
        body = plotly_js()
    return Response(body, media_type="text/javascript; charset=utf-8", headers=headers)
