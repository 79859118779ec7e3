"""Every page renders for a student with data; the study timer flow; history, analytics,
subjects and quizzes; static files and Plotly served locally; the admin models page."""

from __future__ import annotations

import re
import uuid

import pytest
from sqlalchemy import func, inspect, select

from smartstudy.services.reports import admin as admin_report
from smartstudy.services.reports import history as history_report
from smartstudy.store.db import session_scope
from smartstudy.store.orm import (
    AlgoRun,
    MasterySnapshot,
    ModelVersion,
    PracticeTask,
    TrainingCounter,
    User,
)
from smartstudy.web.assets import plotly_version
from tests.web.conftest import (
    Web,
    complete_task,
    create_task,
    make_admin,
    take_quiz,
)

EXTERNAL = re.compile(r"""(?:src|href)=["'](?:https?:)?//""")


@pytest.fixture
def busy_student(web: Web, maths) -> dict:
    """A student with completed and open tasks on two topics and a submitted quiz."""
    web.signup("robin@example.com", name="Robin")
    done = []
    for i, difficulty in enumerate(("easy", "medium", "hard", "medium", "easy", "hard")):
        task_id = create_task(
            web, maths.topic_id if i % 2 == 0 else maths.other_topic_id, difficulty
        )
        complete_task(web, task_id, correct=i % 3 != 0, minutes=str(i + 1), seconds="15")
        done.append(task_id)
    open_id = create_task(web, maths.topic_id, "hard", description="Exercise 4.2")
    quiz_id = take_quiz(web, maths.topic_id)
    return {"done": done, "open": open_id, "quiz": quiz_id}


def test_every_page_renders_for_a_student_with_data(web: Web, busy_student, maths):
    pages = [
        "/dashboard",
        "/study",
        f"/study?topic={maths.topic_id}&difficulty=hard",
        f"/study/tasks/{busy_student['done'][0]}",
        f"/study/tasks/{busy_student['open']}",
        "/tasks",
        "/tasks?difficulty=easy&status=completed&result=correct&sort=time&dir=asc",
        f"/tasks?subject={maths.subject_id}&topic={maths.topic_id}&from=2000-01-01&to=2100-01-01",
        "/tasks?sort=topic&page=99&per_page=2",
        "/tasks?sort=nonsense&page=x&difficulty=impossible&from=garbage",
        "/analytics",
        "/subjects",
        f"/concepts/{maths.concept_ids[0]}",
        f"/quiz/{busy_student['quiz']}",
        "/settings",
    ]
    for path in pages:
        r = web.get(path)
        assert r.status_code == 200, (path, r.text[:500])
        assert r.headers["content-type"].startswith("text/html")
        assert "Content-Security-Policy" in r.headers
        assert not EXTERNAL.search(r.text), f"{path} references another host"
        assert "Robin" in r.text  # signed in
    dashboard = web.get("/dashboard").text
    assert 'id="chart-trend"' in dashboard
    assert "Limits" in dashboard or "Derivatives" in dashboard  # mastery highlights
    page = web.get("/analytics").text
    # A few tasks are too few for a calibration chart: the page says so instead.
    assert 'id="calibration-not-enough"' in page
    for chart in ("accuracy", "time", "scatter", "progress"):
        assert f'id="chart-{chart}"' in page
        assert f'<script type="application/json" id="chart-{chart}-data">' in page
    assert f"/static/vendor/plotly-{plotly_version()}.min.js" in page


def test_pages_without_data_explain_what_to_do(web: Web, maths):
    web.signup("new@example.com")
    assert "No completed tasks yet" in web.get("/dashboard").text
    page = web.get("/analytics").text
    assert "No completed tasks yet" in page and "plotly" not in page
    assert "No tasks" in web.get("/tasks").text
    concept = web.get(f"/concepts/{maths.concept_ids[0]}").text
    assert "No answers yet" in concept and "defaults" in concept


def test_study_flow_predict_time_mark_and_see_the_change(web: Web, context, maths):
    web.signup("robin@example.com")
    r = web.get("/study")
    assert "Calculus" in r.text and "Algebra" in r.text and "<optgroup" in r.text
    task_id = create_task(web, maths.topic_id, "medium", description="Chain rule drill")
    page = web.get(f"/study/tasks/{task_id}").text
    assert 'id="pred-p"' in page and 'id="timer"' in page and "Mark correct" in page
    assert "Chain rule drill" in page
    with session_scope(context.sessions) as session:
        task = session.get(PracticeTask, uuid.UUID(task_id))
        assert task.model_name and task.model_version and task.predicted_correct is not None
        assert f"{round(100 * task.predicted_correct)}%" in page
        assert f'Predicted by <strong id="pred-model">{task.model_name}</strong>' in page
        before = session.get(TrainingCounter, "training").total

    r = complete_task(web, task_id, correct=True, minutes="3", seconds="20")
    assert r.status_code == 303 and r.headers["location"] == f"/study/tasks/{task_id}#result"
    page = web.get(f"/study/tasks/{task_id}").text
    assert 'id="result"' in page and "3 min 20 s" in page and "✓ correct" in page
    assert 'id="next-p"' in page and "Next prediction for Calculus" in page
    assert "points (was" in page
    with session_scope(context.sessions) as session:
        task = session.get(PracticeTask, uuid.UUID(task_id))
        assert task.is_correct is True and task.actual_time_seconds == 200
        assert task.started_at is not None
        # The completion went through the completion use case: it counts toward training.
        assert session.get(TrainingCounter, "training").total == before + 1
    # The next task on the same topic and difficulty carries the new prediction.
    next_p = float(re.search(r'id="next-p" data-value="([^"]+)"', page).group(1))
    second = create_task(web, maths.topic_id, "medium")
    with session_scope(context.sessions) as session:
        new = session.get(PracticeTask, uuid.UUID(second))
        old = session.get(PracticeTask, uuid.UUID(task_id))
        assert new.predicted_correct == pytest.approx(next_p)
        assert (new.predicted_correct, new.predicted_time_median_s) != (
            old.predicted_correct,
            old.predicted_time_median_s,
        )
    # A second completion of the same task changes nothing.
    complete_task(web, task_id, correct=False, minutes="9")
    with session_scope(context.sessions) as session:
        assert session.get(PracticeTask, uuid.UUID(task_id)).is_correct is True


def test_study_form_errors_keep_the_choice(web: Web, maths):
    web.signup("robin@example.com")
    web.get("/study")
    r = web.post("/study", {"topic": "", "difficulty": "medium", "description": "Ex 1"})
    assert r.status_code == 422 and "Choose a topic." in r.text
    assert 'value="Ex 1"' in r.text
    r = web.post("/study", {"topic": str(maths.topic_id), "difficulty": "extreme"})
    assert r.status_code == 422 and "Choose a difficulty" in r.text
    assert f'value="{maths.topic_id}" data-subject="{maths.subject_id}" selected' in r.text
    r = web.post("/study", {"topic": str(uuid.uuid4()), "difficulty": "easy"})
    assert r.status_code == 422 and "does not exist" in r.text
    r = web.post(
        "/study",
        {"subject": str(uuid.uuid4()), "topic": str(maths.topic_id), "difficulty": "easy"},
    )
    assert r.status_code == 422 and "not part of the chosen subject" in r.text


@pytest.mark.parametrize(
    ("minutes", "seconds", "message"),
    [
        ("", "", "Enter the time you spent"),
        ("0", "0", "more than 0 seconds"),
        ("-3", "", "cannot be negative"),
        ("1441", "", "at most 24 hours"),
        ("abc", "10", "Minutes must be a number"),
        ("1", "x", "Seconds must be a number"),
    ],
)
def test_time_out_of_range_is_explained_and_kept(
    web: Web, context, maths, minutes, seconds, message
):
    web.signup("robin@example.com")
    task_id = create_task(web, maths.topic_id)
    r = complete_task(web, task_id, minutes=minutes, seconds=seconds)
    assert r.status_code == 422
    assert message in r.text
    assert re.search(rf'name="minutes"[^>]*value="{re.escape(minutes)}"', r.text)
    assert re.search(rf'name="seconds"[^>]*value="{re.escape(seconds)}"', r.text)
    r = web.post(f"/study/tasks/{task_id}/complete", {"minutes": "1", "seconds": "0"})
    assert r.status_code == 422 and "Mark the task as correct or wrong." in r.text
    with session_scope(context.sessions) as session:
        assert session.get(PracticeTask, uuid.UUID(task_id)).completed_at is None
    r = complete_task(web, task_id, minutes="1,5", seconds="")  # a decimal comma is fine
    assert r.status_code == 303
    with session_scope(context.sessions) as session:
        assert session.get(PracticeTask, uuid.UUID(task_id)).actual_time_seconds == 90


def test_history_filters_sorts_and_pages(web: Web, context, busy_student, maths):
    page = web.get("/tasks").text
    assert "7 tasks." in page and "Exercise" not in page  # descriptions are on the task page
    assert page.count("/study/tasks/") == 7
    easy = web.get("/tasks?difficulty=easy").text
    assert "2 tasks match the filters" in easy
    algebra = web.get(f"/tasks?topic={maths.other_topic_id}").text
    assert "3 tasks match" in algebra and "Calculus" not in algebra.split("<tbody>")[1]
    assert "1 task match" in web.get("/tasks?status=open").text
    paged = web.get("/tasks?per_page=3&page=3").text
    assert "Page 3 of 3" in paged and "Showing 7–7" in paged
    assert 'rel="prev"' in paged and 'rel="next"' not in paged
    # Sorting, checked on the service: by time taken, open tasks last either way.
    with session_scope(context.sessions) as session:
        user = session.scalar(select(User).where(User.email == "robin@example.com"))
        for descending in (True, False):
            items = history_report.task_history(
                session, user.id, sort="time", descending=descending
            ).items
            times = [t.actual_time_seconds for t in items if t.actual_time_seconds is not None]
            assert times == sorted(times, reverse=descending)
            assert items[-1].actual_time_seconds is None
        by_difficulty = history_report.task_history(
            session, user.id, sort="difficulty", descending=False
        )
        ranks = ["easy", "medium", "hard"]
        assert [ranks.index(t.difficulty) for t in by_difficulty.items] == sorted(
            ranks.index(t.difficulty) for t in by_difficulty.items
        )
    sorted_page = web.get("/tasks?sort=predicted&dir=asc").text
    assert 'aria-sort="ascending"' in sorted_page
    assert "sort=predicted&amp;dir=desc" in sorted_page  # clicking again flips it


def test_quiz_take_submit_and_see_mastery_move(web: Web, context, maths):
    web.signup("robin@example.com")
    web.get("/subjects")
    r = web.post("/quiz", {"topic": str(maths.topic_id), "n_questions": "4"})
    quiz_id = r.headers["location"].rsplit("/", 1)[1]
    page = web.get(f"/quiz/{quiz_id}").text
    names = sorted(set(re.findall(r'name="(q-[0-9a-f-]+)"', page)))
    assert len(names) == 4
    # Unanswered questions: a message, and the answers given so far stay chosen.
    r = web.post(f"/quiz/{quiz_id}", {names[0]: "1"})
    assert r.status_code == 422 and "still open" in r.text
    assert re.search(rf'name="{names[0]}" value="1" checked', r.text)
    r = web.post(f"/quiz/{quiz_id}", {n: "1" for n in names})
    assert r.status_code == 303
    page = web.get(f"/quiz/{quiz_id}").text
    assert 'id="quiz-score">4 / 4<' in page
    assert 'id="mastery-changes"' in page and "▲" in page and "points" in page
    with session_scope(context.sessions) as session:
        assert session.scalar(select(func.count()).select_from(MasterySnapshot)) == 4
    concept = web.get(f"/concepts/{maths.concept_ids[0]}").text
    assert 'id="chart-mastery"' in concept
    subjects = web.get("/subjects").text
    assert "See result" in subjects and 'role="meter"' in subjects
    # Submitting again changes nothing.
    assert web.post(f"/quiz/{quiz_id}", {n: "0" for n in names}).status_code == 303
    assert 'id="quiz-score">4 / 4<' in web.get(f"/quiz/{quiz_id}").text


def test_quiz_without_questions_is_explained(web: Web, maths):
    web.signup("robin@example.com")
    web.get("/subjects")
    r = web.post("/quiz", {"topic": str(maths.other_topic_id)})
    assert r.status_code == 422 and "no questions for this choice yet" in r.text
    r = web.post("/quiz", {})
    assert r.status_code == 422 and "choose a topic" in r.text


def test_static_files_and_plotly_are_served_locally(web: Web):
    r = web.client.get(f"/static/vendor/plotly-{plotly_version()}.min.js")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/javascript")
    assert "immutable" in r.headers["cache-control"]
    assert r.headers.get("content-encoding") == "gzip"  # the client asked for it
    assert b"plotly" in r.content[:200].lower()
    plain = web.client.get(
        f"/static/vendor/plotly-{plotly_version()}.min.js", headers={"Accept-Encoding": "identity"}
    )
    assert "content-encoding" not in plain.headers and len(plain.content) > 1_000_000
    for name in ("app.js", "charts.js", "app.css", "favicon.svg"):
        assert web.client.get(f"/static/{name}").status_code == 200
    assert web.client.get("/static/../config.py").status_code == 404


def test_admin_models_page_and_actions(web: Web, context, busy_student, monkeypatch):
    make_admin(context)
    web.login("admin@example.com")
    page = web.get("/admin/models")
    assert page.status_code == 200
    assert "Prediction distribution" in page.text and 'id="chart-distribution"' in page.text
    assert "Training runs" in page.text and 'id="counter"' in page.text
    with session_scope(context.sessions) as session:
        versions = session.scalars(select(ModelVersion).order_by(ModelVersion.created_at)).all()
        assert versions
        first = versions[0]
        assert f"/admin/models/versions/{first.id}/activate" not in page.text or not first.is_active
    with session_scope(context.sessions) as session:
        shown, counts = admin_report.recent_versions(session, ["neural", "lnirt", "baseline"], 2)
        assert set(shown) >= {"neural", "lnirt", "baseline"} and sum(counts.values()) >= 2
        for rows in shown.values():
            assert len(rows) <= 2
            assert all("artifact" in inspect(v).unloaded for v in rows)  # never read for a page
    # Train now schedules the background job. The student's completions may already have
    # started a background training that learnt every one of them, and then Train now rightly
    # answers "nothing new" (tests/test_train_now.py); here it must find something to do.
    calls = []
    monkeypatch.setattr("smartstudy.web.routes.admin.schedule_training", calls.append)
    monkeypatch.setattr("smartstudy.web.routes.admin.nothing_new_since", lambda _db: None)
    r = web.post("/admin/models/train")
    assert r.status_code == 303 and r.headers["location"] == "/admin/models?done=training"
    assert calls == [context]
    # BKT recompute logs a run.
    web.get("/admin/models")
    r = web.post("/admin/models/bkt-recompute", {"activate": "on"})
    assert r.status_code == 303
    with session_scope(context.sessions) as session:
        assert session.scalar(select(func.count()).select_from(AlgoRun)) == 1
    assert 'id="bkt-runs"' in web.get("/admin/models?done=recomputed").text
    # Activating an unknown version explains itself.
    web.get("/admin/models")
    r = web.post(f"/admin/models/versions/{uuid.uuid4()}/activate")
    assert r.status_code == 409 and "Not activated" in r.text


def test_admin_page_warns_about_saturated_predictions(web: Web, context, maths):
    make_admin(context)
    web.signup("robin@example.com")
    with session_scope(context.sessions) as session:
        user = session.scalar(select(User).where(User.email == "robin@example.com"))
        for i in range(20):
            session.add(
                PracticeTask(
                    user_id=user.id,
                    topic_id=maths.topic_id,
                    difficulty="easy",
                    predicted_correct=0.995 if i % 2 else 0.6,
                    predicted_time_median_s=60,
                    predicted_time_p10_s=30,
                    predicted_time_p90_s=120,
                    model_name="neural",
                    model_version="1",
                )
            )
    web.login("admin@example.com")
    page = web.get("/admin/models").text
    assert "neural: saturation warning." in page
    assert "50% of predictions are below 0.02 or above 0.98" in page
    assert '<span class="badge bad">saturated</span>' in page


def test_admin_can_activate_an_older_version(web: Web, context, maths):
    make_admin(context)
    web.signup("robin@example.com")
    for _ in range(2):
        complete_task(web, create_task(web, maths.topic_id))
    with session_scope(context.sessions) as session:
        context.predictor.train(session, "baseline")
        rows = session.scalars(
            select(ModelVersion)
            .where(ModelVersion.model_name == "baseline")
            .order_by(ModelVersion.version)
        ).all()
        assert len(rows) >= 2 and rows[-1].is_active
        old_id = rows[0].id
    web.login("admin@example.com")
    web.get("/admin/models")
    r = web.post(f"/admin/models/versions/{old_id}/activate")
    assert r.status_code == 303 and r.headers["location"] == "/admin/models?done=activated"
    with session_scope(context.sessions) as session:
        assert session.get(ModelVersion, old_id).is_active


def test_ratios_and_no_change_signs_render_in_any_font():
    """Issue 16: "0.04× predicted" once showed as "0.0×"; a full-width "＝" as an empty box."""
    from pathlib import Path

    import smartstudy.web
    from smartstudy.web.render import times

    assert times(0.04) == "0.04×"
    assert times(1.234) == "1.2×"
    assert times(12.3) == "12×"
    assert times(123.4) == "123×"
    assert times(None) == "—"
    templates = Path(smartstudy.web.__file__).parent / "templates"
    for page in templates.glob("*.html"):
        assert "＝" not in page.read_text(encoding="utf-8"), page.name


def test_templates_are_compiled_once():
    """The template environment is built once per process: rebuilding it on every page (a
    regression once) recompiled every template and cost about 30 ms a page."""
    from smartstudy.web.render import environment

    assert environment() is environment()
