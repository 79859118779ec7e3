"""Settings: profile, password change, CSV export, account deletion."""

from __future__ import annotations

import csv
import io
import re
import uuid
from datetime import date, timedelta

from sqlalchemy import func, select

from smartstudy.services import planning, profile
from smartstudy.services.errors import ConflictError
from smartstudy.services.reports import account as account_report
from smartstudy.services.reports import history as history_report
from smartstudy.store.db import session_scope
from smartstudy.store.orm import (
    BKTUserSkillState,
    MasterySnapshot,
    PracticeTask,
    SessionAnswer,
    SessionQuestion,
    StudySession,
    User,
)
from tests.web.conftest import PASSWORD, Web, complete_task, create_task, make_admin, take_quiz


def _user(context, email: str) -> User | None:
    with session_scope(context.sessions) as session:
        return session.scalar(select(User).where(User.email == email))


def test_profile_changes_and_errors_keep_input(web: Web, context):
    web.signup("alice@example.com", name="Alice")
    web.signup("robin@example.com", name="Robin")
    web.get("/settings")
    r = web.post("/settings/profile", {"display_name": "  ", "email": "nope"})
    assert r.status_code == 422
    assert "Enter the name to show" in r.text and "not a valid e-mail address" in r.text
    assert 'value="nope"' in r.text
    r = web.post("/settings/profile", {"display_name": "Rob", "email": "ALICE@example.com"})
    assert r.status_code == 422 and "Another account already uses this e-mail." in r.text
    assert 'value="Rob"' in r.text
    r = web.post("/settings/profile", {"display_name": "Rob", "email": "rob@example.com"})
    assert r.status_code == 303 and r.headers["location"] == "/settings?done=profile"
    assert "Profile saved." in web.get("/settings?done=profile").text
    user = _user(context, "rob@example.com")
    assert user is not None and user.display_name == "Rob"


def test_password_change_errors(web: Web):
    web.signup("robin@example.com")
    web.get("/settings")
    form = {"current_password": "wrong one", "new_password": "new pass 123"}
    r = web.post("/settings/password", {**form, "new_password_confirm": "new pass 123"})
    assert r.status_code == 422 and "Your current password is wrong." in r.text
    form["current_password"] = PASSWORD
    r = web.post("/settings/password", {**form, "new_password_confirm": "different"})
    assert r.status_code == 422 and "The two new passwords are not the same." in r.text
    r = web.post(
        "/settings/password",
        {"current_password": PASSWORD, "new_password": "short", "new_password_confirm": "short"},
    )
    assert r.status_code == 422 and "at least 8 characters" in r.text
    r = web.post("/settings/password", {"current_password": "", "new_password": ""})
    assert "Enter your current password." in r.text and "Choose a new password." in r.text
    web.login("robin@example.com", PASSWORD)  # unchanged


def test_the_password_form_names_its_account_for_password_managers(web: Web):
    web.signup("robin@example.com")
    page = web.get("/settings").text
    start = page.index('action="/settings/password"')
    form = page[start : page.index("</form>", start)]
    field = re.search(r"<input type=\"email\" autocomplete=\"username\"[^>]*>", form)
    assert field is not None and 'value="robin@example.com"' in field.group(0)
    assert " hidden" in field.group(0) and "name=" not in field.group(0)  # never submitted


def test_csv_export_holds_every_own_task(web: Web, maths):
    web.signup("robin@example.com")
    done = create_task(web, maths.topic_id, "hard", description='=HYPERLINK("http://x")')
    complete_task(web, done, correct=False, minutes="4", seconds="30")
    open_task = create_task(web, maths.other_topic_id, "easy")
    r = web.get("/settings/export.csv")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"] == 'attachment; filename="smartstudy-tasks.csv"'
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert list(rows[0]) == list(history_report.EXPORT_COLUMNS)
    by_id = {row["task_id"]: row for row in rows}
    assert set(by_id) == {done, open_task}
    first = by_id[done]
    assert first["subject"] == "Mathematics" and first["topic"] == "Calculus"
    assert first["difficulty"] == "hard" and first["correct"] == "0"
    assert float(first["rt_seconds"]) == 270.0
    assert 0 < float(first["predicted_correct"]) < 1
    assert first["model_name"] and first["completed_at"].endswith("+00:00")
    assert first["description"].startswith("'=")  # no formula runs in a spreadsheet
    assert by_id[open_task]["completed_at"] == "" and by_id[open_task]["correct"] == ""


def _owned(context, user_id: uuid.UUID) -> dict[str, int]:
    with session_scope(context.sessions) as session:
        counts = account_report.count_owned(session, user_id)
        quiz_ids = select(StudySession.id).where(StudySession.user_id == user_id)
        counts["answers"] = session.scalar(
            select(func.count())
            .select_from(SessionAnswer)
            .join(SessionQuestion, SessionQuestion.id == SessionAnswer.session_question_id)
            .where(SessionQuestion.session_id.in_(quiz_ids))
        )
        return counts


def test_account_deletion_removes_everything_of_the_user_only(web: Web, context, maths):
    def busy(email: str) -> uuid.UUID:
        web.signup(email)
        complete_task(web, create_task(web, maths.topic_id))
        create_task(web, maths.other_topic_id)
        take_quiz(web, maths.topic_id)
        user = _user(context, email)
        assert user is not None
        with session_scope(context.sessions) as session:
            planning.create_exam(
                session,
                user,
                name="Finals",
                exam_date=date.today() + timedelta(days=10),
                daily_minutes=30,
                subject_id=maths.subject_id,
            )
        return user.id

    alice = busy("alice@example.com")
    robin = busy("robin@example.com")
    before_alice = _owned(context, alice)
    assert all(before_alice.values()), before_alice
    assert all(_owned(context, robin).values())

    web.get("/settings")
    cookie = web.client.cookies.get("smartstudy_session")
    # Wrong confirmation or password: nothing is deleted, the typed e-mail is kept.
    r = web.post("/settings/delete", {"confirm_email": "robin@example.org", "password": PASSWORD})
    assert r.status_code == 422 and "Type your e-mail address exactly" in r.text
    assert 'value="robin@example.org"' in r.text
    r = web.post("/settings/delete", {"confirm_email": "robin@example.com", "password": "nope"})
    assert r.status_code == 422 and "Your password is wrong; nothing was deleted." in r.text
    assert _user(context, "robin@example.com") is not None

    r = web.post("/settings/delete", {"confirm_email": "robin@example.com", "password": PASSWORD})
    assert r.status_code == 303 and r.headers["location"] == "/login?done=deleted"
    assert "Your account and all its data have been deleted." in web.get(r.headers["location"]).text
    assert _user(context, "robin@example.com") is None
    assert not any(_owned(context, robin).values()), _owned(context, robin)
    with session_scope(context.sessions) as session:
        for model in (PracticeTask, StudySession, BKTUserSkillState, MasterySnapshot):
            column = model.user_id
            assert session.scalar(select(func.count()).where(column == robin)) == 0
    assert _owned(context, alice) == before_alice  # the other student keeps everything
    # The old cookie no longer opens anything.
    web.client.cookies.set("smartstudy_session", cookie)
    assert web.get("/dashboard", follow_redirects=False).status_code == 303
    web.login("alice@example.com")
    assert web.get("/dashboard").status_code == 200


def test_the_last_admin_cannot_delete_their_account(web: Web, context):
    make_admin(context)
    with session_scope(context.sessions) as session:
        admin = session.scalar(select(User).where(User.email == "admin@example.com"))
        try:
            profile.delete_account(session, admin)
        except ConflictError as exc:
            assert "last admin" in str(exc)
        else:
            raise AssertionError("the last admin was deleted")
    web.login("admin@example.com")
    web.get("/settings")
    r = web.post("/settings/delete", {"confirm_email": "admin@example.com", "password": PASSWORD})
    assert r.status_code == 422 and "The last admin account cannot be deleted." in r.text
    assert _user(context, "admin@example.com") is not None


def test_settings_count_what_you_have_in_words_that_agree(web: Web, maths):
    web.signup("robin@example.com")
    complete_task(web, create_task(web, maths.topic_id))
    take_quiz(web, maths.topic_id)
    page = web.get("/settings").text
    owned = re.search(r'id="owned-summary">(.*?)</p>', page, re.S)
    deleting = re.search(r'id="delete-summary">(.*?)</p>', page, re.S)
    assert owned and deleting
    # One quiz, not "1 quizzes"; the concepts with mastery are counted the same in both.
    assert "You have 1 task, 1 quiz, mastery of 2 concepts and 0 exams." in owned.group(1)
    assert "1 task, 1 quiz, your mastery of 2 concepts with its history" in deleting.group(1)
