"""Accounts over HTTP: register, log in, tokens, roles."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt

from smartstudy.services.security import create_access_token
from tests.conftest import register


def test_register_login_me(client):
    headers = register(client, "Ada@Example.com")
    r = client.get("/v1/auth/me", headers=headers)
    assert r.status_code == 200
    body = r.json()
    assert body["email"] == "ada@example.com"
    assert body["role"] == "student"
    assert "password" not in r.text and "hash" not in r.text


def test_register_duplicate_email_is_409(client):
    register(client, "ada@example.com")
    r = client.post(
        "/v1/auth/register", json={"email": "ADA@example.com", "password": "another pass 1"}
    )
    assert r.status_code == 409
    assert "already exists" in r.json()["detail"]


def test_register_bad_input_names_field(client):
    r = client.post("/v1/auth/register", json={"email": "not-an-email", "password": "long enough"})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "email"]
    r = client.post("/v1/auth/register", json={"email": "a@example.com", "password": "short"})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "password"]
    assert "password" in r.json()["message"]


def test_login_wrong_password_is_401(client):
    register(client, "ada@example.com")
    r = client.post("/v1/auth/login", json={"email": "ada@example.com", "password": "wrong one"})
    assert r.status_code == 401
    r = client.post("/v1/auth/login", json={"email": "nobody@example.com", "password": "x" * 9})
    assert r.status_code == 401


def test_oauth2_token_form(client):
    register(client, "ada@example.com")
    r = client.post(
        "/v1/auth/token", data={"username": "ada@example.com", "password": "correct horse 1"}
    )
    assert r.status_code == 200
    assert r.json()["token_type"] == "bearer"


def test_no_token_is_401(client):
    r = client.get("/v1/auth/me")
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    assert client.get("/v1/tasks").status_code == 401
    assert client.get("/v1/subjects").status_code == 401


def test_tampered_token_is_401(client):
    headers = register(client, "ada@example.com")
    token = headers["Authorization"].split()[1]
    header, payload, signature = token.split(".")
    flipped = signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB")
    r = client.get("/v1/auth/me", headers={"Authorization": f"Bearer {header}.{payload}.{flipped}"})
    assert r.status_code == 401
    # A token signed with another key, for the same user.
    me = client.get("/v1/auth/me", headers=headers).json()
    forged = jwt.encode(
        {"sub": me["id"], "exp": datetime.now(UTC) + timedelta(hours=1), "typ": "access"},
        "some other key that is long enough",
        algorithm="HS256",
    )
    assert (
        client.get("/v1/auth/me", headers={"Authorization": f"Bearer {forged}"}).status_code == 401
    )
    assert client.get("/v1/auth/me", headers={"Authorization": "Bearer garbage"}).status_code == 401


def test_expired_token_is_401(client, context):
    headers = register(client, "ada@example.com")
    user_id = client.get("/v1/auth/me", headers=headers).json()["id"]
    old = create_access_token(
        user_id,
        context.settings.resolved_secret_key,
        minutes=5,
        now=datetime.now(UTC) - timedelta(hours=1),
    )
    r = client.get("/v1/auth/me", headers={"Authorization": f"Bearer {old}"})
    assert r.status_code == 401
    assert "expired" in r.json()["detail"]


def test_token_of_deleted_user_is_401(client, context):
    from smartstudy.services.accounts import get_user_by_email
    from smartstudy.store.db import session_scope

    headers = register(client, "ada@example.com")
    with session_scope(context.sessions) as session:
        session.delete(get_user_by_email(session, "ada@example.com"))
    assert client.get("/v1/auth/me", headers=headers).status_code == 401


def test_health_and_ready(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ok"}
    assert client.get("/docs").status_code == 200
    assert "/v1/tasks" in client.get("/openapi.json").json()["paths"]
