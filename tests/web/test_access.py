"""A student reaches no other student's data and no admin page, through any URL."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from smartstudy.store.db import session_scope
from smartstudy.store.orm import AlgoRun, PracticeTask, StudySession
from tests.web.conftest import PASSWORD, Web, complete_task, create_task, make_admin, take_quiz


@pytest.fixture
def two_students(web: Web, maths) -> dict:
    """Alice with a completed task, an open task and a submitted quiz; then Bob, signed in."""
    web.signup("alice@example.com", name="Alice")
    done = create_task(web, maths.topic_id, "hard", description="Alice's secret exercise")
    complete_task(web, done, minutes="7", seconds="7")
    open_task = create_task(web, maths.topic_id, "easy")
    quiz_id = take_quiz(web, maths.topic_id)
    web.get("/subjects")
    r = web.post("/quiz", {"topic": str(maths.topic_id), "n_questions": "2"})
    open_quiz = r.headers["location"].rsplit("/", 1)[1]
    web.signup("bob@example.com", name="Bob")
    return {"done": done, "open": open_task, "quiz": quiz_id, "open_quiz": open_quiz}


def test_another_students_ids_answer_404_like_missing_ones(web: Web, two_students):
    missing = str(uuid.uuid4())
    for path in (
        f"/study/tasks/{two_students['done']}",
        f"/study/tasks/{two_students['open']}",
        f"/quiz/{two_students['quiz']}",
        f"/quiz/{two_students['open_quiz']}",
        f"/study/tasks/{missing}",
        f"/quiz/{missing}",
        "/study/tasks/not-a-uuid",
        "/quiz/1%20OR%201=1",
        f"/concepts/{missing}",
    ):
        r = web.get(path)
        assert r.status_code == 404, path
        assert "Not found" in r.text and "not yours to see" in r.text
        assert "Alice" not in r.text and "secret exercise" not in r.text


def test_another_students_tasks_and_quizzes_cannot_be_changed(web: Web, context, two_students):
    web.get("/dashboard")
    for path, data in (
        (f"/study/tasks/{two_students['open']}/complete", {"minutes": "1", "result": "correct"}),
        (f"/study/tasks/{two_students['open']}/start", {}),
        (f"/quiz/{two_students['open_quiz']}", {}),
    ):
        r = web.post(path, data)
        assert r.status_code == 404, path
    with session_scope(context.sessions) as session:
        task = session.get(PracticeTask, uuid.UUID(two_students["open"]))
        assert task.completed_at is None and task.started_at is None
        assert session.get(StudySession, uuid.UUID(two_students["open_quiz"])).status == "open"


def test_lists_exports_and_mastery_show_only_ones_own(web: Web, maths, two_students):
    own = create_task(web, maths.topic_id, "medium")
    complete_task(web, own)
    tasks = web.get("/tasks").text
    assert "1 task." in tasks and two_students["done"] not in tasks
    # Query parameters that name another user are not a thing; unknown ones are ignored.
    assert "1 task." in web.get("/tasks?user_id=anything&user=alice@example.com").text
    csv_text = web.get("/settings/export.csv").text
    assert own in csv_text and two_students["done"] not in csv_text
    assert "secret exercise" not in csv_text
    dashboard = web.get("/dashboard").text
    assert "Alice" not in dashboard and "secret" not in dashboard
    # Alice answered questions on the concepts; Bob has no mastery yet.
    concept = web.get(f"/concepts/{maths.concept_ids[0]}").text
    assert 'id="chart-mastery"' not in concept and "No answers yet" in concept
    subjects = web.get("/subjects").text
    assert "Your quizzes" not in subjects and 'role="meter"' not in subjects
    analytics = web.get("/analytics").text
    assert '<span class="value">1</span>' in analytics  # one completed task: Bob's


def test_students_are_refused_the_admin_pages(web: Web, context, two_students):
    make_admin(context)
    for path in ("/admin/models", "/admin"):
        r = web.get(path)
        assert r.status_code == 403, path
        assert "admins only" in r.text
        assert "Prediction distribution" not in r.text
    assert 'href="/admin/models"' not in web.get("/dashboard").text
    web.get("/dashboard")
    with session_scope(context.sessions) as session:
        version = session.execute(select(func.min(PracticeTask.model_version))).scalar()
    for path in (
        "/admin/models/train",
        "/admin/models/bkt-recompute",
        f"/admin/models/versions/{uuid.uuid4()}/activate",
    ):
        assert web.post(path).status_code == 403, path
    with session_scope(context.sessions) as session:
        assert session.scalar(select(func.count()).select_from(AlgoRun)) == 0
    assert version is not None
    # Signed out, admin pages go to the log-in page like any other.
    web.logout_locally()
    r = web.get("/admin/models", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/admin/models"
    web.login("admin@example.com", PASSWORD)
    assert web.get("/admin/models").status_code == 200
    assert 'href="/admin/models"' in web.get("/dashboard").text
