"""Security headers on every kind of answer: API, tokens, errors, docs, static files, pages."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from httpx import Response

from smartstudy.api.security_headers import DOCS_CSP, PAGE_CSP, STRICT_CSP
from tests.conftest import register

COMMON = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
}


def assert_common(r: Response, csp: str = STRICT_CSP) -> None:
    for name, value in COMMON.items():
        assert r.headers.get(name) == value, (r.url, name, r.headers)
    assert r.headers.get("content-security-policy") == csp, r.url
    assert "strict-transport-security" not in r.headers, "HSTS over plain http"


def assert_no_store(r: Response) -> None:
    assert r.headers.get("cache-control") == "no-store", r.url
    assert r.headers.get("pragma") == "no-cache", r.url


def test_api_answers_and_json_errors_carry_the_headers(client: TestClient, student: dict):
    answers = [
        client.get("/v1/auth/me", headers=student),  # 200, personal data
        client.get("/v1/subjects"),  # 401
        client.get("/v1/tasks/not-an-id", headers=student),  # 422
        client.get("/v1/no-such-route"),  # FastAPI's own 404
        client.get("/healthz"),
        client.get("/openapi.json"),
    ]
    for r in answers:
        assert r.headers["content-type"].startswith("application/json"), r.url
        assert_common(r)
        assert_no_store(r)
    assert [r.status_code for r in answers] == [200, 401, 422, 404, 200, 200]


def test_token_answers_are_never_cached(client: TestClient):
    register(client, "robin@example.com")
    credentials = {"email": "robin@example.com", "password": "correct horse 1"}
    login = client.post("/v1/auth/login", json=credentials)
    form = client.post(
        "/v1/auth/token",
        data={"username": credentials["email"], "password": credentials["password"]},
    )
    for r in (login, form):
        assert r.status_code == 200 and "access_token" in r.json(), r.text
        assert_common(r)
        assert_no_store(r)


def test_hsts_only_over_https(client: TestClient):
    assert "strict-transport-security" not in client.get("/healthz").headers
    with TestClient(client.app, base_url="https://testserver") as https:
        for path in ("/healthz", "/login", "/static/app.css", "/docs"):
            r = https.get(path)
            assert r.headers.get("strict-transport-security") == "max-age=31536000", path


def test_static_files_keep_their_caching(client: TestClient):
    r = client.get("/static/app.css")
    assert r.status_code == 200
    assert_common(r)
    assert "etag" in r.headers and "no-store" not in r.headers.get("cache-control", "")
    docs_js = client.get("/static/api-docs/swagger-ui-bundle.js")
    assert docs_js.status_code == 200 and "no-store" not in docs_js.headers.get("cache-control", "")


def test_pages_keep_their_policy(client: TestClient):
    for path in ("/login", "/signup"):
        r = client.get(path)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert_common(r, PAGE_CSP)
        assert_no_store(r)
    redirect = client.get("/dashboard", follow_redirects=False)
    assert redirect.status_code == 303
    assert_no_store(redirect)


def test_docs_are_served_from_this_server_with_no_inline_script(client: TestClient):
    for path in ("/docs", "/redoc"):
        r = client.get(path)
        assert r.status_code == 200, path
        assert_common(r, DOCS_CSP)
        html = r.text
        assert not re.search(r"<script>\s*\S", html), f"{path} has an inline script"
        urls = re.findall(r'(?:src|href|spec-url)="([^"]+)"', html)
        urls += re.findall(r"url: '([^']+)'", html)
        assert urls, path
        for url in urls:
            assert url.startswith("/") and not url.startswith("//"), (path, url)
            assert client.get(url).status_code == 200, (path, url)
    init = client.get("/docs/swagger-init.js")
    assert "SwaggerUIBundle" in init.text and "url: '/openapi.json'" in init.text
    redoc = client.get("/static/api-docs/redoc.standalone.js")
    assert b"Redoc" in redoc.content and b"cdn.redoc.ly" not in redoc.content
    # Nothing in the docs' policy names another host or lets an inline script run.
    script_src = re.search(r"script-src ([^;]*)", DOCS_CSP)
    assert script_src and script_src.group(1).strip() == "'self'"
    assert "http" not in DOCS_CSP


def test_unhandled_errors_carry_the_headers_too(failing_client: TestClient):
    r = failing_client.get("/boom")
    assert r.status_code == 500
    assert r.headers["content-type"].startswith("text/html")  # the site's error page
    assert_common(r, PAGE_CSP)
    assert_no_store(r)


def test_a_header_set_by_a_route_is_kept(client: TestClient):
    from smartstudy.web.assets import plotly_version

    r = client.get(f"/static/vendor/plotly-{plotly_version()}.min.js")
    assert "immutable" in r.headers["cache-control"]
    assert r.headers["x-content-type-options"] == "nosniff"
    assert client.get("/docs").headers["content-security-policy"] == DOCS_CSP
