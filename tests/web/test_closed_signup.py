"""Closed sign-up (``SMARTSTUDY_OPEN_SIGNUP=false``): only admins make accounts, on the Users
page or with ``POST /v1/users``; the sign-up page and ``POST /v1/auth/register`` say so."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from smartstudy.store.orm import AuditEntry, User
from tests.web.conftest import PASSWORD, Web, make_admin


def _users(context) -> int:
    with context.sessions() as session:
        return session.scalar(select(func.count()).select_from(User))


@pytest.fixture
def closed(context, monkeypatch):
    monkeypatch.setattr(context.settings, "open_signup", False)
    return context


def test_closed_sign_up_turns_visitors_to_an_admin(web: Web, closed):
    page = web.get("/signup")
    assert page.status_code == 200 and 'id="signup-closed"' in page.text
    assert 'action="/signup"' not in page.text
    refused = web.post(
        "/signup", {"email": "new@example.com", "password": PASSWORD, "password_confirm": PASSWORD}
    )
    assert refused.status_code == 403 and "Sign-up is closed" in refused.text
    api = web.client.post(
        "/v1/auth/register", json={"email": "new@example.com", "password": PASSWORD}
    )
    assert api.status_code == 403
    assert (
        api.json()["detail"]
        == "sign-up is closed on this SmartStudy; ask an administrator for an account"
    )
    assert _users(closed) == 0
    for path in ("/", "/login"):
        text = web.get(path).text
        assert 'href="/signup"' not in text, path
    assert "Ask an administrator of this SmartStudy for an account" in web.get("/login").text


def test_open_sign_up_is_the_default(web: Web, context):
    assert context.settings.open_signup is True
    assert 'href="/signup"' in web.get("/login").text
    assert 'action="/signup"' in web.get("/signup").text


def test_an_admin_makes_an_account_with_a_password_shown_once(client: TestClient, closed):
    make_admin(closed, "boss@example.com")
    web = Web(client)
    web.login("boss@example.com", PASSWORD)
    page = web.get("/admin/users")
    assert "Sign-up is closed on this SmartStudy" in page.text
    made = web.post(
        "/admin/users", {"email": "Pupil@Example.com", "display_name": "Pupil", "role": "student"}
    )
    assert made.status_code == 200 and "The account is ready" in made.text
    password = re.search(r'id="new-password">([^<]+)<', made.text).group(1)
    login = client.post("/v1/auth/login", json={"email": "pupil@example.com", "password": password})
    assert login.status_code == 200
    again = web.post("/admin/users", {"email": "pupil@example.com", "role": "student"})
    assert (
        again.status_code == 422 and "There is already an account with this e-mail." in again.text
    )
    bad = web.post("/admin/users", {"email": "not an address", "role": "student"})
    assert bad.status_code == 422 and 'value="not an address"' in bad.text
    role = web.post("/admin/users", {"email": "x@example.com", "role": "owner"})
    assert role.status_code == 422 and "The role must be one of" in role.text
    with closed.sessions() as session:
        entries = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "user.create")
        ).all()
    assert [(e.actor_email, e.details) for e in entries] == [
        ("boss@example.com", {"email": "pupil@example.com", "role": "student"})
    ]
    assert _users(closed) == 2


def test_the_api_makes_accounts_for_admins_only(client: TestClient, admin: dict, student: dict):
    body = {"email": "made@example.com", "password": "a fine password 1", "role": "admin"}
    r = client.post("/v1/users", json=body, headers=admin)
    assert r.status_code == 201, r.text
    assert (r.json()["email"], r.json()["role"]) == ("made@example.com", "admin")
    assert client.post("/v1/users", json=body, headers=admin).status_code == 409
    assert (
        client.post(
            "/v1/users", json={**body, "email": "y@example.com"}, headers=student
        ).status_code
        == 403
    )
    short = client.post(
        "/v1/users", json={**body, "email": "z@example.com", "password": "short"}, headers=admin
    )
    assert short.status_code == 422
    login = client.post(
        "/v1/auth/login", json={"email": "made@example.com", "password": "a fine password 1"}
    )
    assert login.status_code == 200
