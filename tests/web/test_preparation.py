"""The Preparation pages (exams, the day-by-day plan, its calendar file) and "Suggested next"
on the study page, through the web forms as a browser would send them."""

from __future__ import annotations

import html
import re
from datetime import UTC, date, datetime, timedelta

import pytest

from smartstudy.planning import (
    CellForecast,
    ExamSpec,
    Plan,
    PlannedTask,
    TopicState,
    WorkloadPoint,
    build_plan,
)
from smartstudy.web import charts
from smartstudy.web.routes import preparation
from tests.web.conftest import Web, complete_task

_START = re.compile(
    r'<input type="hidden" name="topic" value="([0-9a-f-]+)">\s*'
    r'<input type="hidden" name="difficulty" value="(easy|medium|hard)">'
)
_TASK = re.compile(r"/study/tasks/([0-9a-f-]+)$")


def _today() -> date:
    return datetime.now(UTC).date()


def _section(page: str, element_id: str) -> str:
    """The HTML from the element with ``element_id`` to the end of its section."""
    start = page.index(f'id="{element_id}"')
    return page[start : page.index("</section>", start)]


def _exam_form(subject_id, **overrides) -> dict:
    data = {
        "name": "Calculus midterm",
        "subject": str(subject_id),
        "exam_date": (_today() + timedelta(days=10)).isoformat(),
        "daily_minutes": "40",
        "days_off": "",
    }
    data.update(overrides)
    return data


def _add_exam(web: Web, data: dict) -> str:
    """Post the form; the new exam's page path."""
    web.get("/preparation")
    r = web.post("/preparation/exams", data)
    assert r.status_code == 303, r.text
    location = r.headers["location"]
    assert re.fullmatch(r"/preparation/exams/[0-9a-f-]+\?done=exam-added", location)
    assert "Exam added." in web.get(location).text
    return location.split("?")[0]


def _today_budget(page: str) -> float:
    found = re.search(r'id="today" data-budget="([0-9.]+)"', page)
    assert found, "today's budget is not on the page"
    return float(found.group(1))


def test_the_page_renders_with_the_form_and_a_nav_link(web: Web, maths):
    web.signup("robin@example.com")
    page = web.get("/preparation")
    assert page.status_code == 200
    assert 'href="/preparation" aria-current="page">Preparation</a>' in page.text
    assert 'id="no-exams"' in page.text
    form = _section(page.text, "add-h")
    for field in ("name", "subject", "exam_date", "daily_minutes", "days_off"):
        assert f'name="{field}"' in form
    assert form.count('name="weekdays_off"') == 7
    assert f'name="weight-{maths.topic_id}"' in form
    assert f'name="weight-{maths.other_topic_id}"' in form
    # Every other page links to it too.
    assert 'href="/preparation"' in web.get("/dashboard").text


def test_the_page_asks_to_log_in(web: Web):
    r = web.get("/preparation", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=/preparation"


def test_an_exam_gets_a_plan_with_readiness_charts_and_a_calendar(web: Web, maths):
    web.signup("robin@example.com")
    path = _add_exam(web, _exam_form(maths.subject_id, weekdays_off="6"))
    listing = web.get("/preparation").text
    assert f'href="{path}">Calculus midterm</a>' in listing
    assert "in 10 days" in listing and "40 min/day" in listing and "2 topics" in listing

    page = web.get(path)
    assert page.status_code == 200
    text = html.unescape(page.text)
    assert "Calculus midterm" in text and "off on Sunday" in text
    summary = re.search(r'id="plan-summary"[^>]*>([^<]+)<', text)
    assert summary and "40 min/day" in summary.group(1)
    needed = re.search(r'id="minutes-needed"[^>]*>([^<]+)<', text)
    assert needed and "every topic to 80%" in needed.group(1)
    # Today's tasks, each with a Start button that creates that task through the study timer.
    today = _section(page.text, "today")
    starts = _START.findall(today)
    assert starts, "no task planned today"
    assert {topic for topic, _ in starts} <= {str(maths.topic_id), str(maths.other_topic_id)}
    assert today.count('action="/study"') == len(starts)
    # The days after today: Sundays off, every other day with work.
    days = _section(page.text, "days-h")
    later = (_today() + timedelta(days=i) for i in range(1, 10))
    assert days.count('<span class="muted">day off</span>') == sum(d.weekday() == 6 for d in later)
    # Readiness per topic on the exam date, in a table and in a chart; the workload curve.
    readiness = _section(page.text, "ready-h")
    assert readiness.count("<tr data-topic=") == 2
    assert "Calculus" in readiness and "Algebra" in readiness
    for value in re.findall(r'data-value="([0-9.]+)"', readiness):
        assert 0 <= float(value) <= 1
    assert 'id="chart-readiness"' in page.text and 'id="chart-workload"' in page.text
    assert 'id="workload-table"' in page.text
    assert "plotly" in page.text  # the chart scripts are loaded

    ics = web.get(f"{path}/plan.ics")
    assert ics.status_code == 200
    assert ics.headers["content-type"].startswith("text/calendar")
    assert ics.headers["content-disposition"] == 'attachment; filename="calculus-midterm-plan.ics"'
    body = ics.text
    assert body.startswith("BEGIN:VCALENDAR") and body.rstrip().endswith("END:VCALENDAR")
    assert body.count("BEGIN:VEVENT") >= 1
    assert f'href="{path}/plan.ics"' in page.text


def test_topics_can_be_weighted_instead_of_a_whole_subject(web: Web, maths):
    web.signup("robin@example.com")
    data = _exam_form("", name="Algebra quiz", **{f"weight-{maths.other_topic_id}": "2"})
    page = web.get(_add_exam(web, data)).text
    readiness = _section(page, "ready-h")
    assert readiness.count("<tr data-topic=") == 1
    assert f'data-topic="{maths.other_topic_id}"' in readiness
    assert set(t for t, _ in _START.findall(_section(page, "today"))) == {str(maths.other_topic_id)}


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"name": "  "}, "name", "Enter the exam's name."),
        ({"exam_date": ""}, "exam_date", "Enter the exam date."),
        ({"exam_date": "next week"}, "exam_date", "That is not a date."),
        ({"exam_date": "today"}, "exam_date", "The exam date must be after today."),
        ({"daily_minutes": "abc"}, "daily_minutes", "a whole number, not “abc”"),
        ({"daily_minutes": ""}, "daily_minutes", "Enter how many minutes a day"),
        ({"daily_minutes": "²"}, "daily_minutes", "a whole number, not “²”"),
        ({"daily_minutes": "-5"}, "daily_minutes", "a whole number, not “-5”"),
        ({"subject": ""}, "subject", "Choose a subject, or give at least one topic a weight."),
        ({"days_off": "2026-02-30"}, "days_off", "“2026-02-30” is not a date"),
        ({"weight": "lots"}, "topics", "A weight must be a number, not “lots”."),
        ({"weight": "1000"}, "topics", "A weight must be from 0 to 100"),
    ],
)
def test_bad_input_is_shown_next_to_its_field_and_nothing_is_stored(
    web: Web, maths, overrides, field, message
):
    web.signup("robin@example.com")
    if overrides.get("exam_date") == "today":
        overrides = {"exam_date": _today().isoformat()}
    if "weight" in overrides:
        overrides = {f"weight-{maths.topic_id}": overrides["weight"]}
    web.get("/preparation")
    r = web.post("/preparation/exams", _exam_form(maths.subject_id, **overrides))
    assert r.status_code == 422
    error = re.search(rf'<p class="field-error" id="f-{field}-error">([^<]+)</p>', r.text)
    assert error, r.text
    assert message in html.unescape(error.group(1))
    assert 'class="error-summary"' in r.text
    # What was typed is kept.
    if field != "name":
        assert 'value="Calculus midterm"' in r.text
    assert 'id="no-exams"' in web.get("/preparation").text


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"daily_minutes": "100000"}, "daily_minutes", "Minutes a day must be a whole number"),
        ({"daily_minutes": "0"}, "daily_minutes", "Minutes a day must be a whole number"),
        ({"exam_date": "+400"}, "exam_date", "The exam date must be at most 365 days ahead"),
        ({"days_off": "+30"}, "days_off", "Each day off must be between today and the day"),
        ({"weekdays_off": "all"}, "weekdays_off", "Leave at least one day to study"),
    ],
)
def test_a_rule_of_the_service_is_shown_next_to_its_field(
    web: Web, maths, overrides, field, message
):
    """Values that parse but break a rule of ``services.planning`` (InvalidInputError) are
    shown next to their field like the form's own checks, and nothing is stored."""
    web.signup("robin@example.com")
    data = _exam_form(maths.subject_id)
    for key, value in overrides.items():
        if value.startswith("+"):
            data[key] = (_today() + timedelta(days=int(value[1:]))).isoformat()
        elif key == "weekdays_off":
            data[key] = [str(d) for d in range(7)]
        else:
            data[key] = value
    web.get("/preparation")
    r = web.post("/preparation/exams", data)
    assert r.status_code == 422
    error = re.search(rf'<p class="field-error" id="f-{field}-error">([^<]+)</p>', r.text)
    assert error, r.text
    assert message in html.unescape(error.group(1))
    assert 'id="no-exams"' in web.get("/preparation").text


def test_a_form_without_its_csrf_token_is_refused(web: Web, maths):
    web.signup("robin@example.com")
    web.get("/preparation")
    r = web.post("/preparation/exams", _exam_form(maths.subject_id), token="forged")
    assert r.status_code == 403
    assert 'id="no-exams"' in web.get("/preparation").text


def test_another_students_exam_is_not_found(web: Web, maths):
    web.signup("robin@example.com")
    path = _add_exam(web, _exam_form(maths.subject_id))
    web.signup("sam@example.com")
    assert web.get(path).status_code == 404
    assert web.get(f"{path}/plan.ics").status_code == 404
    web.get("/preparation")
    assert web.post(f"{path}/delete").status_code == 404
    assert 'id="no-exams"' in web.get("/preparation").text
    assert web.get("/preparation/exams/not-an-id").status_code == 404
    # The owner still has it.
    web.login("robin@example.com")
    assert web.get(path).status_code == 200


def test_the_owner_deletes_an_exam(web: Web, maths):
    web.signup("robin@example.com")
    path = _add_exam(web, _exam_form(maths.subject_id))
    web.get(path)
    r = web.post(f"{path}/delete")
    assert r.status_code == 303 and r.headers["location"] == "/preparation?done=exam-deleted"
    assert web.get(path).status_code == 404
    listing = web.get(r.headers["location"]).text
    assert 'id="no-exams"' in listing and "Exam deleted." in listing


def test_starting_a_planned_task_and_completing_it_updates_the_plan(web: Web, maths):
    web.signup("robin@example.com")
    path = _add_exam(web, _exam_form(maths.subject_id, daily_minutes="60"))
    page = web.get(path).text
    before = _today_budget(page)
    assert before == pytest.approx(60)
    topic, difficulty = _START.findall(_section(page, "today"))[0]
    r = web.post(
        "/study",
        {"topic": topic, "difficulty": difficulty, "description": "Preparation: Calculus midterm"},
    )
    assert r.status_code == 303
    found = _TASK.search(r.headers["location"])
    assert found
    task = web.get(f"/study/tasks/{found.group(1)}").text
    assert difficulty in task
    r = complete_task(web, found.group(1), correct=True, minutes="12", seconds="0")
    assert r.status_code == 303
    after = _today_budget(web.get(path).text)
    assert after == pytest.approx(before - 12)


def test_the_study_page_suggests_up_to_three_tasks_to_start_in_one_click(web: Web, maths):
    web.signup("robin@example.com")
    page = web.get("/study")
    assert page.status_code == 200
    suggested = _section(page.text, "suggested-next")
    starts = _START.findall(suggested)
    assert 1 <= len(starts) <= 3
    assert {t for t, _ in starts} <= {str(maths.topic_id), str(maths.other_topic_id)}
    assert suggested.count("% chance") == len(starts)
    assert suggested.count('class="reason"') == len(starts)
    # The picker is still there, unchanged.
    assert 'id="pick-form"' in page.text and 'id="predict"' in page.text

    topic, difficulty = starts[0]
    r = web.post("/study", {"topic": topic, "difficulty": difficulty})
    assert r.status_code == 303
    found = _TASK.search(r.headers["location"])
    assert found
    task = web.get(r.headers["location"])
    assert task.status_code == 200
    assert difficulty in task.text
    name = "Calculus" if topic == str(maths.topic_id) else "Algebra"
    assert name in task.text


def _plan(daily: int, needed: int | None) -> Plan:
    day = date(2026, 12, 1)
    return Plan(
        today=day,
        exam_date=day + timedelta(days=5),
        daily_minutes=daily,
        target=0.8,
        exam_difficulty="medium",
        days=(),
        readiness=(),
        trajectory={},
        workload=(WorkloadPoint(10, 0.5, 0), WorkloadPoint(240, 0.7, 1)),
        minutes_needed=needed,
        summary="",
    )


@pytest.mark.parametrize(
    ("daily", "needed", "sentence"),
    [
        (30, 55, "To bring every topic to 80%, plan 55 minutes a day (you chose 30)."),
        (60, 45, "Your 60 minutes a day are enough: 45 minutes a day would already bring"),
        (60, 60, "Your 60 minutes a day are enough: 60 minutes a day would already bring"),
        (60, None, "No daily budget that was tried brings every topic to 80% by the exam"),
    ],
)
def test_the_minutes_needed_sentence(daily, needed, sentence):
    assert preparation._minutes_sentence(_plan(daily, needed)).startswith(sentence)


def _task(topic: str, difficulty: str, p: float, seconds: float) -> PlannedTask:
    return PlannedTask(topic, topic.title(), difficulty, p, seconds, seconds / 2, seconds * 2, "")


def test_a_days_tasks_are_grouped_by_topic_and_difficulty_in_order():
    tasks = [
        _task("waves", "easy", 0.70, 60),
        _task("mechanics", "easy", 0.20, 120),
        _task("waves", "easy", 0.75, 90),
        _task("waves", "medium", 0.50, 300),
        _task("waves", "easy", 0.80, 30),
    ]
    groups = preparation.grouped(tasks)
    assert [(g.topic_id, g.difficulty, g.count) for g in groups] == [
        ("waves", "easy", 3),
        ("mechanics", "easy", 1),
        ("waves", "medium", 1),
    ]
    assert groups[0].first is tasks[0]
    assert groups[0].minutes == pytest.approx(3.0)
    assert groups[0].p_last == pytest.approx(0.80)
    assert preparation.grouped([]) == []


def test_today_off_and_done_for_today(web: Web, maths):
    web.signup("robin@example.com")
    weekday = str(_today().weekday())
    page = web.get(_add_exam(web, _exam_form(maths.subject_id, weekdays_off=weekday))).text
    assert 'id="today-off"' in page
    assert not _START.findall(_section(page, "today"))

    path = _add_exam(web, _exam_form(maths.subject_id, name="Short one", daily_minutes="5"))
    topic, difficulty = _START.findall(_section(web.get(path).text, "today"))[0]
    r = web.post("/study", {"topic": topic, "difficulty": difficulty})
    task_id = _TASK.search(r.headers["location"]).group(1)
    complete_task(web, task_id, minutes="6", seconds="0")
    page = web.get(path).text
    assert _today_budget(page) == 0
    assert 'id="today-done"' in page
    assert not _START.findall(_section(page, "today"))


def _built_plan(daily_minutes: int = 30) -> Plan:
    """A real plan from the planner for two topics, a week ahead."""
    topics = [TopicState("a", "Algebra", weight=2.0), TopicState("b", "Biology")]
    cells = [
        CellForecast(t, d, p, 300.0 * k, 150.0 * k, 600.0 * k)
        for t, base in (("a", 0.0), ("b", -0.5))
        for k, (d, p) in enumerate(
            (("easy", 0.8 + base / 5), ("medium", 0.55 + base / 5), ("hard", 0.3 + base / 5)),
            start=1,
        )
    ]
    today = date(2026, 12, 1)
    exam = ExamSpec(exam_date=today + timedelta(days=7), daily_minutes=daily_minutes)
    return build_plan(topics, cells, exam, today)


def test_the_readiness_chart_runs_from_now_to_the_exam_date():
    plan = _built_plan()
    fig = charts.readiness_over_days(plan)
    lines, target = fig["data"][:-1], fig["data"][-1]
    assert [t["name"] for t in lines] == [r.topic_name for r in plan.readiness]
    for trace, r in zip(lines, plan.readiness, strict=True):
        assert trace["x"][0] == plan.today.isoformat()
        assert trace["x"][-1] == plan.exam_date.isoformat()
        assert trace["y"][0] == pytest.approx(r.now, abs=1e-4)
        assert trace["y"][1:] == pytest.approx(list(plan.trajectory[r.topic_id]), abs=1e-4)
        assert len(trace["y"]) == len(plan.days) + 1
    assert target["line"]["dash"] == "dash"
    assert target["y"] == [plan.target, plan.target]
    # The legend sits below the plot, away from the mode bar.
    assert fig["layout"]["legend"]["yanchor"] == "bottom"
    assert fig["layout"]["legend"]["y"] == 0


def test_the_workload_chart_marks_the_chosen_budget():
    plan = _built_plan(daily_minutes=20)
    fig = charts.workload_curve(plan)
    curve = fig["data"][0]
    assert curve["x"] == sorted(w.daily_minutes for w in plan.workload)
    assert all(0 <= y <= 1 for y in curve["y"])
    chosen = next(t for t in fig["data"] if t["name"].startswith("your budget"))
    assert chosen["x"] == [20]
    point = next(w for w in plan.workload if w.daily_minutes == 20)
    assert chosen["y"] == [pytest.approx(point.readiness, abs=1e-4)]
