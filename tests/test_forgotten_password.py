"""A student who forgot their password: an admin sets a new one (API, web page, command line).

SmartStudy sends no e-mail, so an admin is the way back in. The new password works at once,
the old one and every session and token of the account end, a log-in lock-out is lifted, the
audit log records who did it (never the password), and an admin's own password is changed
only with the current one.
"""

from __future__ import annotations

import dataclasses
import json
import re
import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from smartstudy.cli import app as cli_app
from smartstudy.services import accounts, throttle
from smartstudy.store.orm import AuditEntry
from tests.conftest import register
from tests.web.conftest import PASSWORD, Web, make_admin

OLD = "correct horse 1"
NEW = "a brand new secret 7"


def _audit(context, action: str) -> list[AuditEntry]:
    with context.sessions() as session:
        return list(session.scalars(select(AuditEntry).where(AuditEntry.action == action)))


def _user_id(context, email: str) -> uuid.UUID:
    with context.sessions() as session:
        return accounts.get_user_by_email(session, email).id


def _login(client: TestClient, email: str, password: str) -> int:
    return client.post("/v1/auth/login", json={"email": email, "password": password}).status_code


def test_an_admin_sets_a_new_password_through_the_api(client, admin, student, context):
    sid = _user_id(context, "student@example.com")
    r = client.post(f"/v1/users/{sid}/password", json={"new_password": NEW}, headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["email"] == "student@example.com"
    assert _login(client, "student@example.com", OLD) == 401
    assert _login(client, "student@example.com", NEW) == 200
    assert client.get("/v1/auth/me", headers=student).status_code == 401  # its old token ended
    [entry] = _audit(context, "user.set_password")
    assert entry.target_id == str(sid) and entry.actor_email == "admin@example.com"
    assert entry.details == {"email": "student@example.com"}
    assert NEW not in json.dumps(entry.details)


def test_the_new_password_lifts_a_log_in_lock_out(client, admin, student, context, monkeypatch):
    monkeypatch.setattr(throttle, "ACCOUNT", dataclasses.replace(throttle.ACCOUNT, limit=3))
    for _ in range(3):
        assert _login(client, "student@example.com", "wrong guess 1") == 401
    assert _login(client, "student@example.com", OLD) == 429  # locked, even with the password
    sid = _user_id(context, "student@example.com")
    r = client.post(f"/v1/users/{sid}/password", json={"new_password": NEW}, headers=admin)
    assert r.status_code == 200, r.text
    assert _login(client, "student@example.com", NEW) == 200


def test_refusals_change_nothing(client, admin, student, context):
    sid = _user_id(context, "student@example.com")
    own = _user_id(context, "admin@example.com")
    cases = [
        (sid, {"new_password": "short"}, admin, 422),
        (sid, {"new_password": NEW, "extra": 1}, admin, 422),
        (sid, {}, admin, 422),
        (own, {"new_password": NEW}, admin, 409),  # one's own: with the current one
        (uuid.uuid4(), {"new_password": NEW}, admin, 404),
        (sid, {"new_password": NEW}, student, 403),
        (sid, {"new_password": NEW}, {}, 401),
    ]
    for user_id, body, headers, status in cases:
        r = client.post(f"/v1/users/{user_id}/password", json=body, headers=headers)
        assert r.status_code == status, (body, r.text)
    own_refusal = client.post(
        f"/v1/users/{own}/password", json={"new_password": NEW}, headers=admin
    )
    assert "settings page" in own_refusal.json()["detail"]
    assert _login(client, "student@example.com", OLD) == 200
    assert client.get("/v1/auth/me", headers=student).status_code == 200
    assert _audit(context, "user.set_password") == []


def test_the_users_list_can_be_searched(client, admin, context):
    for email in ("ada@example.com", "ben@example.com", "a_b%c@example.org"):
        register(client, email)

    def emails(q: str) -> list[str]:
        r = client.get("/v1/users", params={"q": q}, headers=admin)
        assert r.status_code == 200, r.text
        return [u["email"] for u in r.json()["items"]]

    assert emails("ADA") == ["ada@example.com"]
    assert emails(".org") == ["a_b%c@example.org"]
    assert emails("_") == ["a_b%c@example.org"]  # a plain character, not a wildcard
    assert emails("%") == ["a_b%c@example.org"]
    assert emails("Admin") == ["admin@example.com"]  # the display name matches too
    assert emails("nobody") == []
    assert client.get("/v1/users", params={"q": "x" * 65}, headers=admin).status_code == 422


def test_the_admin_web_page_sets_a_random_password_and_shows_it_once(client, context):
    make_admin(context, "boss@example.com")
    register(client, "forgetful@example.com", OLD)
    web = Web(client)
    web.login("boss@example.com", PASSWORD)
    users = web.get("/admin/users?q=forget")
    assert users.status_code == 200
    assert "1 account match" in users.text and "forgetful@example.com" in users.text
    assert 'href="/admin/users"' in web.get("/admin/models").text  # in the admin tabs
    sid = _user_id(context, "forgetful@example.com")
    assert f'href="/admin/users/{sid}"' in users.text
    page = web.get(f"/admin/users/{sid}")
    assert page.status_code == 200 and "Make a random password" in page.text

    done = web.post(f"/admin/users/{sid}/password", {"generate": "1"})
    assert done.status_code == 200, done.text
    shown = re.search(r'id="new-password">([^<]+)</code>', done.text)
    assert shown, done.text
    assert _login(client, "forgetful@example.com", shown.group(1)) == 200
    assert _login(client, "forgetful@example.com", OLD) == 401
    assert "location" not in done.headers  # never put in an address
    assert web.get(f"/admin/users/{sid}").text.count(shown.group(1)) == 0  # shown once

    typed = web.post(f"/admin/users/{sid}/password", {"new_password": NEW})
    assert typed.status_code == 200 and "The new password is set" in typed.text
    assert NEW not in typed.text
    assert _login(client, "forgetful@example.com", NEW) == 200
    short = web.post(f"/admin/users/{sid}/password", {"new_password": "short"})
    assert short.status_code == 422
    assert "The new password must be at least 8 characters long." in short.text
    assert _login(client, "forgetful@example.com", NEW) == 200  # unchanged
    assert len(_audit(context, "user.set_password")) == 2


def test_the_admin_web_page_locks_out_lets_in_and_changes_roles(client, context):
    make_admin(context, "boss@example.com")
    register(client, "pupil@example.com", OLD)
    web = Web(client)
    web.login("boss@example.com", PASSWORD)
    sid = _user_id(context, "pupil@example.com")
    web.get(f"/admin/users/{sid}")
    r = web.post(f"/admin/users/{sid}/access", {"active": "0"})
    assert r.status_code == 303 and r.headers["location"].startswith(f"/admin/users/{sid}")
    assert _login(client, "pupil@example.com", OLD) == 401
    page = web.get(f"/admin/users/{sid}")
    assert "locked out" in page.text and "Let the account log in again" in page.text
    web.post(f"/admin/users/{sid}/access", {"active": "1"})
    assert _login(client, "pupil@example.com", OLD) == 200
    web.get(f"/admin/users/{sid}")
    web.post(f"/admin/users/{sid}/role", {"role": "admin"})
    assert "Make a student" in web.get(f"/admin/users/{sid}").text

    me = _user_id(context, "boss@example.com")
    web.get(f"/admin/users/{me}")
    refused = web.post(f"/admin/users/{me}/access", {"active": "0"})
    assert refused.status_code == 409 and "cannot deactivate your own account" in refused.text
    refused = web.post(f"/admin/users/{me}/password", {"generate": "1"})
    assert refused.status_code == 422
    assert "You cannot set your own password here; change it on your settings page" in refused.text
    assert web.get("/dashboard", follow_redirects=False).status_code == 200  # still signed in


def test_the_log_in_page_says_where_to_turn(client):
    page = client.get("/login").text
    assert "Forgot your password? Ask an administrator" in page


def test_students_cannot_reach_the_users_pages(client, context):
    web = Web(client)
    web.signup("nosy@example.com")
    sid = _user_id(context, "nosy@example.com")
    assert web.get("/admin/users", follow_redirects=False).status_code == 403
    assert web.get(f"/admin/users/{sid}", follow_redirects=False).status_code == 403
    web.get("/dashboard")
    assert web.post(f"/admin/users/{sid}/role", {"role": "admin"}).status_code == 403
    assert 'href="/admin/users"' not in web.get("/dashboard").text
    assert 'href="/admin/models"' not in web.get("/dashboard").text  # no admin menu item


@pytest.fixture
def cli_env(context, monkeypatch):
    monkeypatch.setenv("SMARTSTUDY_DATABASE_URL", context.settings.resolved_database_url)
    monkeypatch.setenv("SMARTSTUDY_DATA_DIR", str(context.settings.data_dir))
    return CliRunner()


def test_the_command_line_sets_a_password(client, student, context, cli_env):
    runner = cli_env
    asked = runner.invoke(
        cli_app,
        ["users", "set-password", "--email", "Student@Example.com"],
        input=f"{NEW}\n{NEW}\n",
    )
    assert asked.exit_code == 0, asked.output
    assert "new password set for student@example.com" in asked.output
    assert NEW not in asked.output.replace(f"{NEW}\n", "")  # typed, not echoed
    assert _login(client, "student@example.com", NEW) == 200
    made = runner.invoke(
        cli_app, ["users", "set-password", "--email", "student@example.com", "--generate"]
    )
    assert made.exit_code == 0, made.output
    password = re.search(r"password: (\S+)", made.output).group(1)
    assert _login(client, "student@example.com", password) == 200
    entries = _audit(context, "user.set_password")
    assert [e.actor_email for e in entries] == ["command line", "command line"]

    unknown = runner.invoke(
        cli_app, ["users", "set-password", "--email", "ghost@example.com", "--generate"]
    )
    assert unknown.exit_code == 1 and "no account has the e-mail address" in unknown.output
    short = runner.invoke(
        cli_app, ["users", "set-password", "--email", "student@example.com"], input="short\nshort\n"
    )
    assert short.exit_code == 1 and "at least 8 characters" in short.output
    long = "p" * 257
    too_long = runner.invoke(
        cli_app,
        ["users", "set-password", "--email", "student@example.com"],
        input=f"{long}\n{long}\n",
    )
    assert too_long.exit_code == 1 and "at most 256 characters" in too_long.output
    assert _login(client, "student@example.com", password) == 200


def test_random_passwords_are_plain_to_read_and_differ():
    from smartstudy.services.security import random_password

    made = {random_password() for _ in range(200)}
    assert len(made) == 200
    for password in made:
        assert re.fullmatch(r"[a-z2-9]{4}(-[a-z2-9]{4}){3}", password), password
        assert not set(password) & set("01oli")
