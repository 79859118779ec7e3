"""Recommendations, exams and exam plans over HTTP (issue 13), on SQLite and PostgreSQL:
ownership, validation, the plan's guarantees for a student with history, re-planning after
a completion, and the iCalendar export."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from smartstudy.planning import Plan, PlanDay, PlannedTask
from smartstudy.planning.ics import plan_to_ics
from smartstudy.services import planning, rules, tasks
from smartstudy.store.db import unit_of_work
from smartstudy.store.orm import User

TOPICS = ("Algebra", "Calculus", "Geometry")


def _today() -> date:
    return datetime.now(UTC).date()


@pytest.fixture
def subject(client, admin) -> dict:
    """A subject 'Mathematics' with three topics; {"id", "topics": {name: id}}."""
    s = client.post("/v1/subjects", json={"name": "Mathematics"}, headers=admin)
    assert s.status_code == 201, s.text
    topics = {}
    for name in TOPICS:
        t = client.post(
            "/v1/topics", json={"subject_id": s.json()["id"], "name": name}, headers=admin
        )
        assert t.status_code == 201, t.text
        topics[name] = t.json()["id"]
    return {"id": s.json()["id"], "topics": topics}


def _exam_body(subject: dict, **extra) -> dict:
    body = {
        "name": "Maths final",
        "exam_date": (_today() + timedelta(days=14)).isoformat(),
        "daily_minutes": 30,
        "topics": [
            {"topic_id": subject["topics"]["Algebra"], "weight": 2.0},
            {"topic_id": subject["topics"]["Calculus"], "weight": 1.0},
        ],
    }
    body.update(extra)
    return {k: v for k, v in body.items() if v is not None}


def _create_exam(client, headers, body) -> dict:
    r = client.post("/v1/exams", json=body, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


def _user_id(client, headers) -> uuid.UUID:
    return uuid.UUID(client.get("/v1/auth/me", headers=headers).json()["id"])


# -- exams: create, read, list, delete, ownership -----------------------------------------


def test_exam_lifecycle_and_ownership(client, student, other_student, admin, subject):
    exam = _create_exam(client, student, _exam_body(subject, days_off=[], weekdays_off=[6]))
    assert exam["name"] == "Maths final"
    assert exam["days_left"] == 14
    assert exam["daily_minutes"] == 30 and exam["target"] == 0.8
    assert exam["exam_difficulty"] == "medium" and exam["weekdays_off"] == [6]
    assert {t["topic_name"]: t["weight"] for t in exam["topics"]} == {
        "Algebra": 2.0,
        "Calculus": 1.0,
    }

    assert client.get(f"/v1/exams/{exam['id']}", headers=student).json() == exam
    assert [e["id"] for e in client.get("/v1/exams", headers=student).json()["items"]] == [
        exam["id"]
    ]

    # Another student, and an admin, learn nothing about it: 404 everywhere, empty lists.
    for headers in (other_student, admin):
        for path in ("", "/plan", "/plan.ics"):
            r = client.get(f"/v1/exams/{exam['id']}{path}", headers=headers)
            assert r.status_code == 404, (path, r.text)
            assert r.json() == {"detail": "exam not found"}
        assert client.delete(f"/v1/exams/{exam['id']}", headers=headers).status_code == 404
        assert client.get("/v1/exams", headers=headers).json()["items"] == []
    assert client.get(f"/v1/exams/{uuid.uuid4()}", headers=student).status_code == 404

    assert client.get("/v1/exams").status_code == 401
    assert client.delete(f"/v1/exams/{exam['id']}", headers=student).status_code == 204
    assert client.get(f"/v1/exams/{exam['id']}", headers=student).status_code == 404
    assert client.get("/v1/exams", headers=student).json()["items"] == []


def test_exam_of_a_subject_covers_its_topics(client, student, subject):
    body = _exam_body(subject, topics=None, subject_id=subject["id"], exam_difficulty="hard")
    exam = _create_exam(client, student, body)
    assert exam["subject_id"] == subject["id"]
    assert [(t["topic_name"], t["weight"]) for t in exam["topics"]] == [(n, 1.0) for n in TOPICS]
    plan = client.get(f"/v1/exams/{exam['id']}/plan", headers=student).json()
    assert {r["topic_name"] for r in plan["readiness"]} == set(TOPICS)
    assert plan["exam_difficulty"] == "hard"


def test_exams_are_listed_upcoming_soonest_first_then_past(client, context, student, subject):
    later = _create_exam(client, student, _exam_body(subject, name="Later"))
    sooner = _create_exam(
        client,
        student,
        _exam_body(subject, name="Sooner", exam_date=(_today() + timedelta(days=3)).isoformat()),
    )
    user_id = _user_id(client, student)
    with unit_of_work(context.sessions) as uow:  # an exam whose date has passed
        user = uow.session.get(User, user_id)
        past = planning.create_exam(
            uow.session,
            user,
            name="Mock",
            exam_date=_today() - timedelta(days=2),
            daily_minutes=20,
            subject_id=uuid.UUID(subject["id"]),
            today=_today() - timedelta(days=10),
        )
        past_id = str(past.id)
    names = [e["name"] for e in client.get("/v1/exams", headers=student).json()["items"]]
    assert names == ["Sooner", "Later", "Mock"]
    assert {sooner["id"], later["id"]} < {
        e["id"] for e in client.get("/v1/exams", headers=student).json()["items"]
    }
    r = client.get(f"/v1/exams/{past_id}/plan", headers=student)
    assert r.status_code == 409 and "no days left" in r.json()["detail"]


def _bad_bodies(subject: dict) -> list[tuple[dict, str]]:
    today = _today()
    algebra = subject["topics"]["Algebra"]
    return [
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * (rules.MAX_EXAM_NAME + 1)}, "name"),
        ({"name": "bad\x00name"}, "name"),
        ({"exam_date": today.isoformat()}, "exam_date"),
        ({"exam_date": (today - timedelta(days=1)).isoformat()}, "exam_date"),
        ({"exam_date": (today + timedelta(days=366)).isoformat()}, "exam_date"),
        ({"daily_minutes": 4}, "daily_minutes"),
        ({"daily_minutes": 601}, "daily_minutes"),
        ({"daily_minutes": "30"}, "daily_minutes"),
        ({"target": 0.4}, "target"),
        ({"target": 0.96}, "target"),
        ({"exam_difficulty": "extreme"}, "exam_difficulty"),
        ({"topics": [{"topic_id": algebra, "weight": 0}]}, "weight"),
        ({"topics": [{"topic_id": algebra, "weight": 101}]}, "weight"),
        ({"topics": []}, "topics"),
        ({"topics": [{"topic_id": str(uuid.uuid4())} for _ in range(51)]}, "topics"),
        ({"topics": [{"topic_id": str(uuid.uuid4())}]}, "topics.0.topic_id"),
        ({"topics": [{"topic_id": algebra}, {"topic_id": algebra}]}, "topics.1.topic_id"),
        ({"subject_id": subject["id"]}, "topics"),  # both a subject and topics
        ({"topics": None}, "topics"),  # neither
        ({"topics": None, "subject_id": str(uuid.uuid4())}, "subject_id"),
        ({"weekdays_off": [7]}, "weekdays_off"),
        ({"weekdays_off": list(range(7))}, "days_off"),  # no day left to study
        ({"days_off": [(today - timedelta(days=1)).isoformat()]}, "days_off"),
        ({"days_off": [(today + timedelta(days=14)).isoformat()]}, "days_off"),
        ({"surprise": 1}, "surprise"),
    ]


def test_invalid_exams_are_refused_naming_the_field(client, student, subject):
    for change, field in _bad_bodies(subject):
        body = _exam_body(subject, **{k: v for k, v in change.items() if v is not None})
        for key, value in change.items():
            if value is None:
                body.pop(key, None)
        r = client.post("/v1/exams", json=body, headers=student)
        assert r.status_code == 422, (change, r.text)
        assert field in r.json()["message"], (change, r.json())
    assert client.get("/v1/exams", headers=student).json()["items"] == []  # nothing written


# -- recommendations -----------------------------------------------------------------------


def test_recommendations(client, student, other_student, subject):
    r = client.get("/v1/recommendations", params={"limit": 4}, headers=student)
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert len(items) == 4
    for item in items:
        assert item["topic_name"] in TOPICS and item["difficulty"] in rules.DIFFICULTIES
        assert 0 < item["p_correct"] < 1
        assert item["time_p10_s"] <= item["time_median_s"] <= item["time_p90_s"]
        assert item["reason"].endswith(".")
        assert set(item["components"]) == {"band", "need", "spacing", "weight"}
    scores = [i["score"] for i in items]
    assert scores[:3] == sorted(scores[:3], reverse=True)  # one per topic, best first
    assert len({i["topic_id"] for i in items[:3]}) == 3
    # Without an exam every topic weighs the same.
    assert {i["components"]["weight"] for i in items} == {1.0}

    # An upcoming exam on Geometry makes Geometry count most.
    geometry = subject["topics"]["Geometry"]
    body = _exam_body(subject, topics=[{"topic_id": geometry, "weight": 5.0}])
    _create_exam(client, student, body)
    items = client.get(
        "/v1/recommendations", params={"subject_id": subject["id"]}, headers=student
    ).json()["items"]
    assert len(items) == 5
    weights = {i["topic_name"]: i["components"]["weight"] for i in items}
    assert weights["Geometry"] == 1.0
    # Exam topics count between 1 and 2 times the others: the heaviest counts double.
    assert all(w == pytest.approx(0.5) for n, w in weights.items() if n != "Geometry")
    assert items[0]["topic_name"] == "Geometry"
    # Someone else's exam changes nothing for another student.
    others = client.get("/v1/recommendations", headers=other_student).json()["items"]
    assert {i["components"]["weight"] for i in others} == {1.0}


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 21}, {"subject_id": "nope"}])
def test_recommendations_refuse_bad_parameters(client, student, subject, params):
    r = client.get("/v1/recommendations", params=params, headers=student)
    assert r.status_code == 422
    assert next(iter(params)) in r.json()["message"]


def test_recommendations_for_an_unknown_subject_answer_404(client, student, subject):
    r = client.get("/v1/recommendations", params={"subject_id": str(uuid.uuid4())}, headers=student)
    assert r.status_code == 404 and r.json() == {"detail": "subject not found"}
    assert client.get("/v1/recommendations").status_code == 401


# -- the plan for a student with history (acceptance 2) -----------------------------------


def _seed_history(context, user_id: uuid.UUID, subject: dict) -> None:
    """Thirty completed tasks over the last three weeks, through the task use case."""
    times = {"easy": 240.0, "medium": 420.0, "hard": 660.0}
    now = datetime.now(UTC)
    with unit_of_work(context.sessions) as uow:
        user = uow.session.get(User, user_id)
        completions = []
        for k in range(30):
            name = TOPICS[k % 3]
            difficulty = rules.DIFFICULTIES[k % 3 if name != "Geometry" else 0]
            task = tasks.create_task(
                uow.session, context.predictor, user, uuid.UUID(subject["topics"][name]), difficulty
            )
            spent = times[difficulty] * (1.0 + 0.1 * (k % 4))
            completions.append(
                tasks.Completion(
                    actor=user,
                    task_id=task.id,
                    is_correct=(k % 5) != 0 if name != "Calculus" else (k % 2) == 0,
                    actual_time_seconds=spent,
                    completed_at=now - timedelta(days=21 - k * 0.6),
                )
            )
        tasks.complete_tasks(context, uow, completions)


def _check_budget(plan: dict) -> None:
    """Every day until the exam has a task; no day's predicted minutes exceed its budget
    by more than its smallest task."""
    assert len(plan["days"]) == (date.fromisoformat(plan["exam_date"]) - _today()).days
    for day in plan["days"]:
        assert not day["day_off"]
        assert day["tasks"], day
        smallest = min(t["time_median_s"] / 60 for t in day["tasks"])
        total = sum(t["time_median_s"] / 60 for t in day["tasks"])
        assert total == pytest.approx(day["minutes"])
        assert day["minutes"] <= day["budget_minutes"] + smallest + 1e-9, day


def test_plan_for_a_student_with_history_fits_and_replans(client, context, student, subject):
    user_id = _user_id(client, student)
    _seed_history(context, user_id, subject)
    exam = _create_exam(client, student, _exam_body(subject, topics=None, subject_id=subject["id"]))

    r = client.get(f"/v1/exams/{exam['id']}/plan", headers=student)
    assert r.status_code == 200, r.text
    before = r.json()
    assert before["today"] == _today().isoformat() and before["daily_minutes"] == 30
    assert len(before["days"]) == 14
    _check_budget(before)
    assert before["days"][0]["budget_minutes"] == 30
    assert {r["topic_name"] for r in before["readiness"]} == set(TOPICS)
    for r in before["readiness"]:
        assert 0 < r["low"] <= r["p"] <= r["high"] < 1
        assert r["weight"] == pytest.approx(1 / 3)
    assert set(before["trajectory"]) == set(subject["topics"].values())
    assert all(len(v) == 14 for v in before["trajectory"].values())
    assert 30 in [w["daily_minutes"] for w in before["workload"]]
    assert before["summary"].startswith("At 30 min/day")

    # Do today's first planned task: the plan is made again from the new state.
    first = before["days"][0]["tasks"][0]
    task = client.post(
        "/v1/tasks",
        json={"topic_id": first["topic_id"], "difficulty": first["difficulty"]},
        headers=student,
    ).json()
    done = client.post(
        f"/v1/tasks/{task['id']}/complete",
        json={"is_correct": False, "actual_time_seconds": 600.0},
        headers=student,
    )
    assert done.status_code == 200, done.text
    after = client.get(f"/v1/exams/{exam['id']}/plan", headers=student).json()
    assert after != before
    _check_budget(after)
    assert after["days"][0]["budget_minutes"] == pytest.approx(20.0)  # 10 minutes done today
    # The failed task moved the prediction it rests on, so readiness moved too.
    now_before = {r["topic_id"]: r["now"] for r in before["readiness"]}
    now_after = {r["topic_id"]: r["now"] for r in after["readiness"]}
    assert now_after[first["topic_id"]] != now_before[first["topic_id"]]
    # The rest of the plan (after today) changed as well, not just today's budget.
    assert [d["tasks"] for d in after["days"][1:]] != [d["tasks"] for d in before["days"][1:]]

    # Recommendations rest on the same history: the seeded record shows in the reasons.
    items = client.get(
        "/v1/recommendations", params={"subject_id": subject["id"]}, headers=student
    ).json()["items"]
    assert any("of your last" in i["reason"] for i in items)


def test_plan_skips_days_off(client, student, subject):
    today = _today()
    off = today + timedelta(days=2)
    weekday = (today + timedelta(days=4)).weekday()
    body = _exam_body(subject, days_off=[off.isoformat()], weekdays_off=[weekday])
    exam = _create_exam(client, student, body)
    plan = client.get(f"/v1/exams/{exam['id']}/plan", headers=student).json()
    for day in plan["days"]:
        d = date.fromisoformat(day["day"])
        is_off = d == off or d.weekday() == weekday
        assert day["day_off"] is is_off
        assert bool(day["tasks"]) is not is_off
        assert (day["budget_minutes"] == 0) is is_off


# -- iCalendar export ----------------------------------------------------------------------


def _unfold(text: str) -> list[str]:
    return text.replace("\r\n ", "").split("\r\n")


def test_plan_exports_as_icalendar(client, student, subject):
    weekday = (_today() + timedelta(days=1)).weekday()
    exam = _create_exam(client, student, _exam_body(subject, weekdays_off=[weekday]))
    plan = client.get(f"/v1/exams/{exam['id']}/plan", headers=student).json()
    r = client.get(f"/v1/exams/{exam['id']}/plan.ics", headers=student)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/calendar")
    assert r.headers["content-disposition"].endswith('.ics"')
    text = r.text
    assert text.startswith("BEGIN:VCALENDAR\r\n") and text.endswith("END:VCALENDAR\r\n")
    assert all(len(line.encode()) <= 75 for line in text.split("\r\n"))
    lines = _unfold(text)
    study_days = [d for d in plan["days"] if not d["day_off"]]
    assert len(study_days) < len(plan["days"])  # the weekday off is left out
    starts = [line.split(":", 1)[1] for line in lines if line.startswith("DTSTART;VALUE=DATE:")]
    assert starts == [d["day"].replace("-", "") for d in study_days]
    assert lines.count("BEGIN:VEVENT") == lines.count("END:VEVENT") == len(study_days)
    assert len({line for line in lines if line.startswith("UID:")}) == len(study_days)
    first = study_days[0]["tasks"][0]
    assert any(first["topic_name"] in line for line in lines if line.startswith("DESCRIPTION:"))


def test_icalendar_escapes_text_and_folds_long_lines():
    day = date(2026, 12, 1)
    task = PlannedTask(
        topic_id="t1",
        topic_name="Vectors; lines, planes \\ and more",
        difficulty="hard",
        p_correct=0.7,
        time_median_s=600,
        time_p10_s=300,
        time_p90_s=1200,
        reason="",
    )
    plan = Plan(
        today=day,
        exam_date=day + timedelta(days=2),
        daily_minutes=30,
        target=0.8,
        exam_difficulty="medium",
        days=(
            PlanDay(day=day, budget_minutes=30, day_off=False, tasks=(task,) * 3, minutes=30),
            PlanDay(
                day=day + timedelta(days=1), budget_minutes=0, day_off=True, tasks=(), minutes=0
            ),
        ),
        readiness=(),
        trajectory={},
        workload=(),
        minutes_needed=None,
        summary="",
    )
    text = plan_to_ics(plan, "Análisis – final, 2ᵉ session", uid_prefix="abc")
    assert all(len(line.encode()) <= 75 for line in text.split("\r\n"))
    lines = _unfold(text)
    assert lines.count("BEGIN:VEVENT") == 1
    assert "UID:abc-20261201@smartstudy" in lines
    assert "DTSTART;VALUE=DATE:20261201" in lines and "DTEND;VALUE=DATE:20261202" in lines
    summary = next(line for line in lines if line.startswith("SUMMARY:"))
    assert summary == "SUMMARY:Study for Análisis – final\\, 2ᵉ session: 3 tasks\\, ~30 min"
    description = next(line for line in lines if line.startswith("DESCRIPTION:"))
    assert "Vectors\\; lines\\, planes \\\\ and more (hard): about 10 min" in description
    assert description.count("\\n") == 3  # three tasks and the total, one per line
    text.encode("utf-8")  # folding never split a character


def _do_task(client, headers, topic_id: str, seconds: float) -> None:
    task = client.post(
        "/v1/tasks", json={"topic_id": topic_id, "difficulty": "easy"}, headers=headers
    ).json()
    r = client.post(
        f"/v1/tasks/{task['id']}/complete",
        json={"is_correct": True, "actual_time_seconds": seconds},
        headers=headers,
    )
    assert r.status_code == 200, r.text


def test_todays_budget_counts_only_the_exams_topics(client, student, subject):
    algebra = subject["topics"]["Algebra"]
    body = _exam_body(subject, topics=[{"topic_id": algebra, "weight": 1.0}])
    exam = _create_exam(client, student, body)

    def today_budget() -> float:
        plan = client.get(f"/v1/exams/{exam['id']}/plan", headers=student).json()
        return plan["days"][0]["budget_minutes"]

    assert today_budget() == 30
    _do_task(client, student, subject["topics"]["Geometry"], 900.0)  # not in the exam
    assert today_budget() == 30
    _do_task(client, student, algebra, 480.0)
    assert today_budget() == pytest.approx(22.0)
    _do_task(client, student, algebra, 1800.0)  # more than the day's budget: nothing left
    plan = client.get(f"/v1/exams/{exam['id']}/plan", headers=student).json()
    assert plan["days"][0]["budget_minutes"] == 0
    assert all(day["tasks"] for day in plan["days"][1:])


def test_recommendations_follow_the_nearest_upcoming_exam(client, student, subject):
    topics = subject["topics"]
    later = _exam_body(
        subject,
        name="Later",
        exam_date=(_today() + timedelta(days=30)).isoformat(),
        topics=[{"topic_id": topics["Calculus"], "weight": 1.0}],
    )
    sooner = _exam_body(
        subject,
        name="Sooner",
        exam_date=(_today() + timedelta(days=5)).isoformat(),
        topics=[
            {"topic_id": topics["Algebra"], "weight": 3.0},
            {"topic_id": topics["Geometry"], "weight": 1.0},
        ],
    )
    _create_exam(client, student, later)
    _create_exam(client, student, sooner)
    items = client.get("/v1/recommendations", params={"limit": 3}, headers=student).json()["items"]
    weights = {i["topic_name"]: i["components"]["weight"] for i in items}
    # Algebra 1 + 3/3 = 2, Geometry 1 + 1/3, Calculus (not in the nearest exam) 1; relative
    # to the heaviest.
    assert weights == pytest.approx({"Algebra": 1.0, "Geometry": 2 / 3, "Calculus": 0.5}, abs=1e-3)


def test_a_missed_day_is_planned_again_from_the_next_day(client, context, student, subject):
    """Nothing done on the first day: the next day's plan starts that day, one day shorter,
    and the work of the missed day is spread over the days left."""
    user_id = _user_id(client, student)
    _seed_history(context, user_id, subject)
    exam = _create_exam(client, student, _exam_body(subject, topics=None, subject_id=subject["id"]))
    today = _today()
    with context.sessions() as session:
        user = session.get(User, user_id)
        row = planning.get_exam(session, user, uuid.UUID(exam["id"]))
        planned = planning.exam_plan(session, context.predictor, user, row, today=today)
        missed = planning.exam_plan(
            session, context.predictor, user, row, today=today + timedelta(days=1)
        )
    assert missed.days[0].day == today + timedelta(days=1)
    assert len(missed.days) == len(planned.days) - 1
    assert missed.days[0].tasks  # the day after the missed one has its tasks again
    # One day less to study: readiness on the exam date is projected lower, not the same.
    ready = sum(r.p * r.weight for r in planned.readiness)
    ready_missed = sum(r.p * r.weight for r in missed.readiness)
    assert ready_missed < ready
