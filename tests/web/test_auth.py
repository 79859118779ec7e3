"""Sign-up, log-in, log-out, the session cookie and CSRF protection of the web pages."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from smartstudy.services.security import create_access_token
from smartstudy.store.db import session_scope
from smartstudy.store.orm import PracticeTask, User
from smartstudy.web import sessions
from tests.web.conftest import PASSWORD, Web, create_task, make_admin


def _cookie_header(response) -> str:
    return next(v for k, v in response.headers.multi_items() if k == "set-cookie")


def test_signup_signs_in_with_a_safe_cookie(web: Web, context):
    r = web.signup("robin@example.com", name="Robin")
    assert r.headers["location"] == "/study?done=signed-up"
    cookie = _cookie_header(r)
    assert cookie.startswith(f"{sessions.COOKIE_NAME}=")
    lowered = cookie.lower()
    assert "httponly" in lowered and "samesite=lax" in lowered and "path=/" in lowered
    assert "secure" not in lowered  # plain http: a Secure cookie would never come back
    page = web.get("/study?done=signed-up")
    assert page.status_code == 200
    assert "Welcome!" in page.text and "Robin" in page.text
    with session_scope(context.sessions) as session:
        user = session.scalar(select(User).where(User.email == "robin@example.com"))
        assert user is not None and user.role == "student"


def test_cookie_is_secure_over_https(client: TestClient):
    with TestClient(client.app, base_url="https://testserver") as https:
        r = https.get("/login")
        assert r.status_code == 200
        assert "secure" in _cookie_header(r).lower()


def test_pages_set_security_headers(web: Web):
    r = web.get("/login")
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["cache-control"] == "no-store"


def test_login_logout_and_redirect_to_the_page_asked_for(web: Web):
    web.signup("robin@example.com")
    web.logout_locally()
    r = web.get("/analytics", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/analytics"
    page = web.get("/login?next=/analytics")
    assert 'name="next" value="/analytics"' in page.text
    r = web.post(
        "/login", {"email": "Robin@Example.com", "password": PASSWORD, "next": "/analytics"}
    )
    assert r.status_code == 303 and r.headers["location"] == "/analytics"
    assert web.get("/analytics").status_code == 200
    # Logged in, /login and /signup go on to the dashboard.
    assert web.get("/login", follow_redirects=False).headers["location"] == "/dashboard"
    assert web.get("/", follow_redirects=False).headers["location"] == "/dashboard"

    r = web.post("/logout")
    assert r.status_code == 303 and r.headers["location"] == "/login?done=logged-out"
    assert "max-age=0" in _cookie_header(r).lower() or "expires=" in _cookie_header(r).lower()
    assert "You are logged out." in web.get("/login?done=logged-out").text
    assert web.get("/dashboard", follow_redirects=False).status_code == 303


def test_next_never_leaves_the_site(web: Web):
    web.signup("robin@example.com")
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example", "javascript:x"):
        web.logout_locally()
        web.get("/login")
        r = web.post("/login", {"email": "robin@example.com", "password": PASSWORD, "next": target})
        assert r.headers["location"] == "/dashboard", target


def test_login_errors_keep_the_email(web: Web):
    web.signup("robin@example.com")
    web.logout_locally()
    web.get("/login")
    r = web.post("/login", {"email": "robin@example.com", "password": "not the password"})
    assert r.status_code == 401
    assert "Wrong e-mail or password" in r.text
    assert 'value="robin@example.com"' in r.text
    r = web.post("/login", {"email": "", "password": ""})
    assert r.status_code == 422
    assert "Enter your e-mail address." in r.text and "Enter your password." in r.text


def test_signup_errors_are_clear_and_keep_what_was_typed(web: Web):
    web.get("/signup")
    cases = [
        ({"email": "", "password": "long enough 1"}, "Enter your e-mail address."),
        ({"email": "not-an-email", "password": "long enough 1"}, "not a valid e-mail address"),
        ({"email": "kim@example.com", "password": "short"}, "Use at least 8 characters"),
        ({"email": "kim@example.com", "password": ""}, "Choose a password."),
    ]
    for data, message in cases:
        confirm = {"password_confirm": data["password"]}
        r = web.post("/signup", {**data, **confirm, "display_name": "Kim"})
        assert r.status_code == 422, data
        assert message in r.text, data
        assert 'value="Kim"' in r.text
        assert f'value="{data["email"]}"' in r.text
    r = web.post(
        "/signup",
        {"email": "kim@example.com", "password": "long enough 1", "password_confirm": "other 123"},
    )
    assert "The two passwords are not the same." in r.text
    web.signup("kim@example.com")
    web.logout_locally()
    web.get("/signup")
    r = web.post(
        "/signup",
        {"email": "KIM@example.com", "password": PASSWORD, "password_confirm": PASSWORD},
    )
    assert r.status_code == 422 and "already an account with this e-mail" in r.text


def test_posts_without_the_csrf_token_are_refused_and_write_nothing(web: Web, context, maths):
    # Anonymous forms too: no token, a wrong token, or a token without its cookie.
    web.get("/signup")
    data = {"email": "eve@example.com", "password": PASSWORD, "password_confirm": PASSWORD}
    for token in ("", "forged-token"):
        r = web.post("/signup", data, token=token)
        assert r.status_code == 403 and "This form has expired" in r.text
    token = web.token
    web.client.cookies.clear()
    r = web.post("/signup", data, token=token)
    assert r.status_code == 403
    with session_scope(context.sessions) as session:
        assert session.scalar(select(User).where(User.email == "eve@example.com")) is None

    web.signup("robin@example.com")
    for token in ("", "forged-token"):
        r = web.post("/study", {"topic": str(maths.topic_id), "difficulty": "easy"}, token=token)
        assert r.status_code == 403
        r = web.post(
            "/settings/delete",
            {"confirm_email": "robin@example.com", "password": PASSWORD},
            token=token,
        )
        assert r.status_code == 403
        assert web.post("/logout", token=token).status_code == 403
    with session_scope(context.sessions) as session:
        assert session.scalar(select(func.count()).select_from(PracticeTask)) == 0
        assert session.scalar(select(User).where(User.email == "robin@example.com")) is not None


def test_fetch_calls_send_the_token_in_a_header(web: Web, maths):
    web.signup("robin@example.com")
    task_id = create_task(web, maths.topic_id)
    token = web.form_token(f"/study/tasks/{task_id}")
    url = f"/study/tasks/{task_id}/start"
    assert web.client.post(url).status_code == 403
    assert web.client.post(url, headers={"X-CSRF-Token": "nope"}).status_code == 403
    assert web.client.post(url, headers={"X-CSRF-Token": token}).status_code == 204
    assert web.client.post(url, headers={"X-CSRF-Token": token}).status_code == 204  # twice


def test_the_session_token_is_tied_to_its_cookie(web: Web):
    """A token lifted from one session does not work with another session's cookie."""
    web.signup("robin@example.com")
    stolen = web.form_token("/settings")
    web.signup("mallory@example.com")
    r = web.post("/settings/profile", {"display_name": "x", "email": "x@example.com"}, token=stolen)
    assert r.status_code == 403


def test_tampered_expired_or_foreign_cookies_are_ignored(web: Web, context):
    web.signup("robin@example.com")
    value = web.client.cookies.get(sessions.COOKIE_NAME)
    assert value
    web.client.cookies.set(
        sessions.COOKIE_NAME, value[:-3] + ("AAA" if value[-3:] != "AAA" else "BBB")
    )
    assert web.get("/dashboard", follow_redirects=False).status_code == 303
    # An API access token is not a session.
    with session_scope(context.sessions) as session:
        user = session.scalar(select(User).where(User.email == "robin@example.com"))
        token = create_access_token(user.id, context.settings.resolved_secret_key, 60)
    web.client.cookies.set(sessions.COOKIE_NAME, token)
    assert web.get("/dashboard", follow_redirects=False).status_code == 303
    # And a session cookie is not an API token.
    web.login("robin@example.com")
    cookie = web.client.cookies.get(sessions.COOKIE_NAME)
    r = web.client.get("/v1/auth/me", headers={"Authorization": f"Bearer {cookie}"})
    assert r.status_code == 401


def test_a_deactivated_users_cookie_stops_working(web: Web, context):
    web.signup("robin@example.com")
    assert web.get("/dashboard").status_code == 200
    with session_scope(context.sessions) as session:
        session.execute(
            update(User).where(User.email == "robin@example.com").values(is_active=False)
        )
    r = web.get("/dashboard", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")


def test_a_password_change_ends_the_other_sessions(web: Web, client: TestClient):
    web.signup("robin@example.com")
    old_cookie = web.client.cookies.get(sessions.COOKIE_NAME)
    web.get("/settings")
    r = web.post(
        "/settings/password",
        {
            "current_password": PASSWORD,
            "new_password": "a brand new one",
            "new_password_confirm": "a brand new one",
        },
    )
    assert r.status_code == 303 and r.headers["location"] == "/settings?done=password"
    assert web.get("/settings").status_code == 200  # this browser stays signed in
    other = TestClient(client.app)  # another device with the old cookie
    other.cookies.set(sessions.COOKIE_NAME, old_cookie)
    assert other.get("/dashboard", follow_redirects=False).status_code == 303
    web.login("robin@example.com", "a brand new one")


def test_home_page_for_visitors(web: Web):
    r = web.get("/")
    assert r.status_code == 200
    assert "Create an account" in r.text
    assert 'href="/login"' in r.text
    assert sessions.COOKIE_NAME in r.headers.get("set-cookie", "")  # a session for the forms


def test_an_admin_lands_on_the_models_page(web: Web, context):
    make_admin(context)
    r = web.login("admin@example.com")
    assert r.headers["location"] == "/admin/models"
    assert web.get("/", follow_redirects=False).headers["location"] == "/admin/models"
    assert web.get("/login", follow_redirects=False).headers["location"] == "/admin/models"
    assert web.get("/admin/models").status_code == 200
    assert web.get("/dashboard").status_code == 200  # still there, from the menu
    # An explicit destination still wins.
    web.logout_locally()
    web.get("/login")
    r = web.post("/login", {"email": "admin@example.com", "password": PASSWORD, "next": "/tasks"})
    assert r.headers["location"] == "/tasks"
