"""Authentication hardening: server-side web sessions, token revocation on a password change,
and log-in throttling (per account and per client) that does not reveal which e-mails exist."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import timedelta

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from smartstudy.services import throttle
from smartstudy.store.db import session_scope
from smartstudy.store.orm import AuthSession, AuthThrottle, User, utcnow
from smartstudy.web import sessions
from tests.conftest import register
from tests.web.conftest import PASSWORD, Web

NEW_PASSWORD = "a brand new one"


def _user(context, email: str) -> User:
    with session_scope(context.sessions) as session:
        user = session.scalar(select(User).where(User.email == email))
        assert user is not None
        return user


def _sessions_of(context, email: str) -> list[AuthSession]:
    user = _user(context, email)
    with session_scope(context.sessions) as session:
        query = select(AuthSession).where(AuthSession.user_id == user.id)
        return list(session.scalars(query.order_by(AuthSession.created_at)))


def _login(client: TestClient, email: str, password: str):
    return client.post("/v1/auth/login", json={"email": email, "password": password})


def _browser(client: TestClient, cookie: str | None = None) -> Web:
    """Another browser on the same app, optionally holding a copied cookie."""
    other = Web(TestClient(client.app))
    if cookie:
        other.client.cookies.set(sessions.COOKIE_NAME, cookie)
    return other


@pytest.fixture
def web(client: TestClient) -> Web:
    return Web(client)


@pytest.fixture
def count_verifications(monkeypatch) -> list[str]:
    """The hashes Argon2 verifies passwords against, in order."""
    seen: list[str] = []
    real = PasswordHasher.verify

    def verify(self: PasswordHasher, password_hash: str, password: str) -> bool:
        seen.append(password_hash)
        return real(self, password_hash, password)

    monkeypatch.setattr(PasswordHasher, "verify", verify)
    return seen


# --- Web sessions live on the server -------------------------------------------------------


def test_logout_ends_the_session_for_every_copy_of_the_cookie(web: Web, client, context):
    web.signup("robin@example.com", name="Robin")
    token = web.form_token("/settings")
    cookie = web.client.cookies.get(sessions.COOKIE_NAME)
    assert web.post("/logout").status_code == 303
    [row] = _sessions_of(context, "robin@example.com")
    assert row.revoked_at is not None

    stolen = _browser(client, cookie)
    r = stolen.get("/dashboard", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/dashboard"
    # The copied cookie with its own CSRF token changes nothing either.
    stolen = _browser(client, cookie)
    stolen.token = token
    r = stolen.post("/settings/profile", {"display_name": "Mallory", "email": "m@example.com"})
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    user = _user(context, "robin@example.com")
    assert user.display_name == "Robin"


def test_an_expired_session_row_ends_the_session(web: Web, context):
    web.signup("robin@example.com")
    assert web.get("/dashboard").status_code == 200
    with session_scope(context.sessions) as session:
        session.execute(update(AuthSession).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert web.get("/dashboard", follow_redirects=False).status_code == 303


def test_last_seen_moves_at_most_once_a_minute(web: Web, context):
    web.signup("robin@example.com")
    [row] = _sessions_of(context, "robin@example.com")
    web.get("/dashboard")
    web.get("/settings")
    [again] = _sessions_of(context, "robin@example.com")
    assert again.last_seen_at == row.last_seen_at  # no write for every page
    earlier = utcnow() - timedelta(minutes=2)
    with session_scope(context.sessions) as session:
        session.execute(update(AuthSession).values(last_seen_at=earlier))
    web.get("/dashboard")
    [seen] = _sessions_of(context, "robin@example.com")
    assert seen.last_seen_at > earlier + timedelta(minutes=1)


# --- A password change ends every older session and token ---------------------------------


def test_a_web_password_change_keeps_this_browser_and_ends_the_rest(web: Web, client, context):
    web.signup("robin@example.com")
    old_cookie = web.client.cookies.get(sessions.COOKIE_NAME)
    laptop = _browser(client)
    laptop.login("robin@example.com")
    old_token = _login(client, "robin@example.com", PASSWORD).json()["access_token"]
    old_api = {"Authorization": f"Bearer {old_token}"}
    assert client.get("/v1/auth/me", headers=old_api).status_code == 200

    web.get("/settings")
    form = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    r = web.post("/settings/password", {**form, "new_password_confirm": NEW_PASSWORD})
    assert r.status_code == 303 and r.headers["location"] == "/settings?done=password"
    assert web.get("/settings").status_code == 200  # this browser goes on
    assert laptop.get("/dashboard", follow_redirects=False).status_code == 303
    assert _browser(client, old_cookie).get("/dashboard", follow_redirects=False).status_code == 303
    r = client.get("/v1/auth/me", headers=old_api)
    assert r.status_code == 401 and r.json()["detail"] == "token revoked; log in again"
    assert _login(client, "robin@example.com", NEW_PASSWORD).status_code == 200
    live = [s for s in _sessions_of(context, "robin@example.com") if s.revoked_at is None]
    assert len(live) == 1


def test_the_api_password_change_revokes_tokens_and_web_sessions(web: Web, client, context):
    old = register(client, "ada@example.com", PASSWORD)
    web.login("ada@example.com")
    url = "/v1/auth/password"
    wrong = {"current_password": "wrong one", "new_password": NEW_PASSWORD}
    assert client.post(url, json=wrong).status_code == 401  # no token: nothing to change
    r = client.post(url, json=wrong, headers=old)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "current_password"]
    r = client.post(url, json={"current_password": PASSWORD, "new_password": "short"}, headers=old)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "new_password"]
    assert client.get("/v1/auth/me", headers=old).status_code == 200

    r = client.post(
        url, json={"current_password": PASSWORD, "new_password": NEW_PASSWORD}, headers=old
    )
    assert r.status_code == 200, r.text
    fresh = {"Authorization": f"Bearer {r.json()['access_token']}"}
    assert client.get("/v1/auth/me", headers=fresh).status_code == 200
    r = client.get("/v1/auth/me", headers=old)
    assert r.status_code == 401 and "revoked" in r.json()["detail"]
    assert web.get("/dashboard", follow_redirects=False).status_code == 303
    assert _login(client, "ada@example.com", PASSWORD).status_code == 401
    assert _login(client, "ada@example.com", NEW_PASSWORD).status_code == 200


# --- Throttling ----------------------------------------------------------------------------


def test_the_eleventh_wrong_password_is_locked_out(client, context, web: Web, count_verifications):
    register(client, "ada@example.com", PASSWORD)
    for _ in range(throttle.ACCOUNT.limit):
        assert _login(client, "ada@example.com", "wrong password").status_code == 401
    count_verifications.clear()
    r = _login(client, "ada@example.com", "wrong password")
    assert r.status_code == 429
    assert 0 < int(r.headers["retry-after"]) <= 15 * 60
    assert "too many failed log-ins for this account" in r.json()["detail"]
    # Locked: even the right password is refused, and no password is checked at all.
    assert _login(client, "ada@example.com", PASSWORD).status_code == 429
    form = {"username": "ADA@example.com", "password": PASSWORD}
    assert client.post("/v1/auth/token", data=form).status_code == 429
    web.get("/login")
    r = web.post("/login", {"email": "ada@example.com", "password": PASSWORD})
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    assert "Too many failed log-ins for this account" in r.text
    assert count_verifications == []

    # When the lock ends, the right password works and clears the count.
    with session_scope(context.sessions) as session:
        session.execute(update(AuthThrottle).values(locked_until=utcnow() - timedelta(seconds=1)))
    assert _login(client, "ada@example.com", PASSWORD).status_code == 200
    with session_scope(context.sessions) as session:
        assert session.get(AuthThrottle, "account:ada@example.com") is None


def test_a_success_resets_the_account_count(client, monkeypatch):
    monkeypatch.setattr(throttle, "ACCOUNT", replace(throttle.ACCOUNT, limit=3))
    register(client, "ada@example.com", PASSWORD)
    # Four failures in all, never three in a row: without the reset the fourth is locked out.
    for _ in range(2):
        for _ in range(2):
            assert _login(client, "ada@example.com", "wrong password").status_code == 401
        assert _login(client, "ada@example.com", PASSWORD).status_code == 200


def test_the_client_limit_spans_accounts(client, monkeypatch):
    monkeypatch.setattr(throttle, "CLIENT", replace(throttle.CLIENT, limit=4))
    register(client, "ada@example.com", PASSWORD)
    for i in range(4):
        assert _login(client, f"nobody{i}@example.com", "wrong password").status_code == 401
    r = _login(client, "ada@example.com", PASSWORD)
    assert r.status_code == 429 and "from your network address" in r.json()["detail"]
    assert int(r.headers["retry-after"]) > 0
    with TestClient(client.app, client=("192.0.2.7", 50000)) as elsewhere:
        assert _login(elsewhere, "ada@example.com", PASSWORD).status_code == 200


def test_a_wrong_current_password_counts_and_locks_the_settings_form(web: Web, monkeypatch):
    monkeypatch.setattr(throttle, "ACCOUNT", replace(throttle.ACCOUNT, limit=2))
    web.signup("robin@example.com")
    web.get("/settings")
    form = {"new_password": NEW_PASSWORD, "new_password_confirm": NEW_PASSWORD}
    for _ in range(2):
        r = web.post("/settings/password", {**form, "current_password": "wrong one"})
        assert r.status_code == 422 and "Your current password is wrong." in r.text
    r = web.post("/settings/password", {**form, "current_password": PASSWORD})
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    assert "Too many failed log-ins for this account" in r.text
    web.logout_locally()
    web.get("/login")
    r = web.post("/login", {"email": "robin@example.com", "password": PASSWORD})
    assert r.status_code == 429


def test_unknown_and_inactive_accounts_cost_a_real_verification(
    client, context, count_verifications
):
    register(client, "ada@example.com", PASSWORD)
    register(client, "gone@example.com", PASSWORD)
    with session_scope(context.sessions) as session:
        session.execute(
            update(User).where(User.email == "gone@example.com").values(is_active=False)
        )
    count_verifications.clear()
    for email in ("nobody@example.com", "gone@example.com", "ada@example.com"):
        assert _login(client, email, "wrong password").status_code == 401
    assert len(count_verifications) == 3
    assert all(h.startswith("$argon2id$") for h in count_verifications)
    real_hash = _user(context, "ada@example.com").password_hash
    assert count_verifications[2] == real_hash
    assert real_hash not in count_verifications[:2]


def test_a_window_runs_out_and_counts_start_again(context):
    keys = throttle.keys_for("ada@example.com", "192.0.2.1")
    start = utcnow() - timedelta(hours=1)
    with session_scope(context.sessions) as session:
        for i in range(throttle.ACCOUNT.limit - 1):
            throttle.record_failure(session, keys, start + timedelta(seconds=i))
        later = start + throttle.ACCOUNT.window + timedelta(minutes=1)
        throttle.record_failure(session, keys, later)
        throttle.check(session, keys, later)  # not locked: the old failures ran out
        row = session.get(AuthThrottle, keys.account)
        assert row is not None and row.failures == 1 and row.locked_until is None


def test_concurrent_failures_are_all_counted(context):
    """Every failure counts even when many arrive at once (an upsert, never read-then-write)."""
    keys = throttle.keys_for("ada@example.com", "192.0.2.1")
    n = 12

    def fail(_: int) -> None:
        with session_scope(context.sessions) as session:
            throttle.record_failure(session, keys)

    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(fail, range(n)))
    with session_scope(context.sessions) as session:
        account = session.get(AuthThrottle, keys.account)
        client = session.get(AuthThrottle, keys.client)
        assert account is not None and client is not None
        assert account.failures == n and client.failures == n
        assert account.locked_until is not None  # 12 >= 10
        assert client.locked_until is None
