"""HEAD is answered like GET, without a body (uptime monitors and link checkers use it)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from smartstudy.api.security_headers import PAGE_CSP, STRICT_CSP


def test_head_answers_what_get_would_without_the_body(client: TestClient, student: dict):
    for path, headers in (("/healthz", {}), ("/login", {}), ("/v1/subjects", student)):
        got = client.get(path, headers=headers)
        head = client.head(path, headers=headers)
        assert head.status_code == got.status_code == 200, path
        assert head.content == b"", path
        assert head.headers["content-type"] == got.headers["content-type"], path
        assert head.headers["content-length"] == str(len(got.content)), path
    assert client.head("/login").headers["content-security-policy"] == PAGE_CSP
    assert client.head("/healthz").headers["content-security-policy"] == STRICT_CSP


def test_head_keeps_the_answers_that_get_would_refuse(client: TestClient):
    unauthorised = client.head("/v1/subjects")
    assert unauthorised.status_code == 401 and unauthorised.content == b""
    missing = client.head("/no-such-page")
    assert missing.status_code == 404 and missing.content == b""
    assert missing.headers["content-type"].startswith("text/html")
    # An address that takes only POST takes no HEAD either.
    post_only = client.head("/v1/auth/login")
    assert post_only.status_code == 405 and post_only.content == b""
