"""The web app in a real browser (headless Chromium), against `smartstudy serve --demo`.

Every page is checked for console errors, uncaught exceptions and requests that leave the
machine (see ``Watch`` in conftest), and saved as a full-page screenshot.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def shot(page, folder: Path, name: str) -> None:
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def login(page, email: str, password: str) -> None:
    page.goto("/login")
    page.fill("#f-email", email)
    page.fill("#f-password", password)
    page.click("main button[type=submit]")
    # Students land on their dashboard, admins on the models page.
    page.wait_for_url(re.compile(r"/(dashboard|admin/models)$"))


def go(page, label: str, path: str) -> None:
    """Follow a link of the main navigation and wait for the page."""
    page.click(f"nav >> text={label}")
    page.wait_for_url(re.compile(re.escape(path) + r"$"))


def wait_for_charts(page, n: int) -> None:
    """``n`` Plotly charts drawn, each with at least one trace."""
    page.wait_for_function(
        "n => document.querySelectorAll('.chart[data-rendered=\"true\"]').length >= n", arg=n
    )
    for chart in page.locator(".chart").all():
        assert "js-plotly-plot" in (chart.get_attribute("class") or "")
        assert chart.locator("g.trace").count() >= 1


def predicted(page) -> tuple[float, float]:
    return (
        float(page.get_attribute("#pred-p", "data-value") or "nan"),
        float(page.get_attribute("#pred-median", "data-value") or "nan"),
    )


def test_new_student_studies_twice_then_history_analytics_and_quiz(new_page, screenshots):
    page, watch = new_page()
    # Sign up.
    page.goto("/")
    page.click("text=Create an account")
    page.fill("#f-display_name", "Robin")
    page.fill("#f-email", "robin@example.com")
    page.fill("#f-password", "robin's password")
    page.fill("#f-password_confirm", "robin's password")
    shot(page, screenshots, "01-signup")
    page.click("main button[type=submit]")
    page.wait_for_url(re.compile(r"/study"))
    assert "Welcome" in page.inner_text(".notice")

    # First run, with the mouse: subject -> topic -> difficulty -> Predict.
    page.select_option("#f-subject", label="Mathematics")
    assert page.locator("#f-topic optgroup[label='Physics']").get_attribute("hidden") is not None
    page.select_option("#f-topic", label="Calculus")
    page.click("label[for=f-difficulty-medium]")
    shot(page, screenshots, "02-study-choose")
    page.click("#predict")
    page.wait_for_url(re.compile(r"/study/tasks/[0-9a-f-]+$"))
    first = predicted(page)
    assert 0 < first[0] < 1 and first[1] > 0
    assert page.text_content("#pred-model") in ("neural", "lnirt", "baseline")
    assert "–" in page.inner_text("#pred-range")
    page.click("#timer-start")
    page.wait_for_timeout(1300)
    page.click("#timer-pause")
    assert page.is_visible("#timer-resume")
    paused = page.inner_text("#timer")
    page.wait_for_timeout(600)
    assert page.inner_text("#timer") == paused  # a paused clock stands still
    page.click("#timer-resume")
    page.wait_for_timeout(900)
    assert page.input_value("#f-seconds") not in ("", "0")
    shot(page, screenshots, "03-study-timer")
    page.click("#mark-correct")
    page.wait_for_selector("#result")
    assert "correct" in page.inner_text("#actual-result")
    next_p = float(page.get_attribute("#next-p", "data-value") or "nan")
    next_model = (page.text_content("#next-model"), page.text_content("#next-version"))
    assert page.is_visible("#next-p-change")
    shot(page, screenshots, "04-study-result")

    # Second run on the same topic and difficulty, keyboard only.
    page.focus("#again")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/study/tasks/[0-9a-f-]+$"))
    second = predicted(page)
    assert second != first, "the prediction did not change after a completed task"
    if (page.text_content("#pred-model"), page.text_content("#pred-version")) == next_model:
        # Unless a training in between made a new version, the task got what was announced.
        assert second[0] == pytest.approx(next_p, abs=1e-9)
    page.focus("#timer-start")
    page.keyboard.press("Enter")
    page.wait_for_timeout(1100)
    page.keyboard.press("Enter")  # focus moved to Pause
    assert page.is_visible("#timer-resume")
    # A time out of range: a clear message, and what was typed is kept.
    page.fill("#f-minutes", "2000")
    page.fill("#f-seconds", "")
    watch.expected.append("status of 422")
    page.focus("#mark-wrong")
    page.keyboard.press("Enter")
    page.wait_for_selector(".error-summary")
    assert "at most 24 hours" in page.inner_text("#time-error")
    assert page.input_value("#f-minutes") == "2000"
    shot(page, screenshots, "05-study-time-error")
    page.fill("#f-minutes", "1")
    page.fill("#f-seconds", "5")
    page.focus("#mark-wrong")
    page.keyboard.press("Enter")
    page.wait_for_selector("#result")
    assert "wrong" in page.inner_text("#actual-result")
    assert "1 min 05 s" in page.inner_text("#actual-time")

    # Both tasks are in the history, filtered to the topic, with predicted and actual.
    go(page, "Tasks", "/tasks")
    page.select_option("#f-topic", label="Calculus")
    page.click("text=Apply filters")
    page.wait_for_url(re.compile(r"topic="))
    rows = page.locator("#tasks-table tbody tr")
    assert rows.count() == 2
    assert all("Calculus" in rows.nth(i).inner_text() for i in range(2))
    page.click("#tasks-table thead >> text=Predicted chance")
    page.wait_for_url(re.compile(r"sort=predicted"))
    assert page.locator("#tasks-table th[aria-sort]").count() == 1
    shot(page, screenshots, "06-tasks")

    # Analytics: four charts drawn with data; two tasks are too few for a calibration chart.
    go(page, "Analytics", "/analytics")
    wait_for_charts(page, 4)
    assert page.locator("#calibration-not-enough").is_visible()
    shot(page, screenshots, "07-analytics-new-student")

    # A quiz on Calculus moves mastery.
    go(page, "Subjects", "/subjects")
    page.click("button[data-quiz-topic='Calculus']")
    page.wait_for_url(re.compile(r"/quiz/[0-9a-f-]+(\?asked=\d+)?$"))
    questions = page.locator("#quiz-form .question")
    assert questions.count() >= 3
    for i in range(questions.count()):
        questions.nth(i).locator("input[type=radio]").first.check()
    shot(page, screenshots, "08-quiz")
    page.click("#quiz-submit")
    page.wait_for_selector("#result")
    assert re.match(r"\d+ / \d+", page.inner_text("#quiz-score"))
    changes = page.locator("#mastery-changes tbody tr")
    assert changes.count() >= 1
    shot(page, screenshots, "09-quiz-result")
    changes.first.locator("a").click()
    page.wait_for_url(re.compile(r"/concepts/"))
    wait_for_charts(page, 1)
    shot(page, screenshots, "10-concept")
    go(page, "Subjects", "/subjects")
    assert page.locator(".meter").count() >= 1
    shot(page, screenshots, "11-subjects")

    go(page, "Dashboard", "/dashboard")
    wait_for_charts(page, 1)
    assert "2" in page.inner_text("[data-testid=week-time]") or page.inner_text(
        "[data-testid=week-time]"
    )
    shot(page, screenshots, "12-dashboard-new-student")


def test_demo_student_sees_populated_pages(new_page, server, screenshots):
    page, _ = new_page()
    email = server.students[0]
    login(page, email, server.accounts[email])
    wait_for_charts(page, 1)
    assert page.locator(".mastery-list li").count() >= 1
    shot(page, screenshots, "20-dashboard")

    go(page, "Tasks", "/tasks")
    assert int(page.inner_text("#task-count").split()[0]) >= 20
    assert page.locator("#tasks-table tbody tr").count() == 25
    page.click("text=Next →")
    page.wait_for_url(re.compile(r"page=2"))
    shot(page, screenshots, "21-tasks")
    topic_id = page.locator("#tasks-table tbody td[data-topic]").first.get_attribute("data-topic")

    go(page, "Analytics", "/analytics")
    wait_for_charts(page, 5)
    assert page.locator("#chart-scatter .scatterlayer .point").count() >= 20
    # No Plotly mode bar over the legends (it once covered them on every chart), not even
    # when the pointer is on the chart.
    page.hover("#chart-scatter")
    assert page.locator("#chart-scatter .modebar-btn").count() == 0
    assert (
        page.evaluate("document.querySelector('#chart-scatter')._context.displayModeBar") is False
    )
    shot(page, screenshots, "analytics")

    # The study timer on a topic this student has history in.
    go(page, "Study timer", "/study")
    page.select_option("#f-topic", value=topic_id)
    page.click("label[for=f-difficulty-medium]")
    page.click("#predict")
    page.wait_for_url(re.compile(r"/study/tasks/"))
    page.click("#timer-start")
    page.wait_for_timeout(2200)
    shot(page, screenshots, "study-timer")
    page.click("#mark-correct")
    page.wait_for_selector("#result")
    shot(page, screenshots, "study-result")

    go(page, "Subjects", "/subjects")
    shot(page, screenshots, "22-subjects")
    go(page, "Settings", "/settings")
    assert page.get_attribute("#export-link", "href") == "/settings/export.csv"
    shot(page, screenshots, "23-settings")

    # The same pages are readable on a phone.
    phone, _ = new_page(390, 844)
    login(phone, email, server.accounts[email])
    phone.goto("/study")
    shot(phone, screenshots, "24-phone-study")
    phone.screenshot(path=str(screenshots / "phone-study.png"))  # what fits on the screen
    phone.goto("/analytics")
    wait_for_charts(phone, 5)
    shot(phone, screenshots, "25-phone-analytics")
    # The task history as cards: every column's value beside its name, nothing off-screen.
    phone.goto("/tasks")
    first = phone.locator("#tasks-table tbody tr").first
    assert first.locator("td[data-label='Result']").is_visible()
    box = first.bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= 390
    phone.locator("#tasks-table tbody").scroll_into_view_if_needed()
    phone.screenshot(path=str(screenshots / "phone-tasks.png"))


def test_admin_sees_models_and_a_student_is_refused(new_page, server, screenshots):
    page, _ = new_page()
    login(page, server.admin_email, server.accounts[server.admin_email])
    assert page.url.endswith("/admin/models")  # an admin lands on the models page
    go(page, "Models", "/admin/models")
    wait_for_charts(page, 1)
    for name in ("lnirt", "baseline"):
        assert page.locator(f"table.versions[data-model={name}] tbody tr").count() >= 1
    assert page.locator("#distribution-table tbody tr").count() >= 1
    assert "/" in page.inner_text("#counter")
    page.click("#bkt-recompute")
    page.wait_for_url(re.compile(r"done=recomputed"))
    assert page.locator("#bkt-runs tbody tr").count() >= 1
    shot(page, screenshots, "30-admin-models")

    student, watch = new_page()
    email = server.students[1]
    login(student, email, server.accounts[email])
    watch.expected.append("status of 403")
    response = student.goto("/admin/models")
    assert response is not None and response.status == 403
    assert "admins only" in student.inner_text("main")
    assert student.locator("nav >> text=Models").count() == 0
    shot(student, screenshots, "31-admin-refused")

    # Another student's task answers 404, like a task that does not exist.
    other = server.students[2]
    peer, _ = new_page()
    login(peer, other, server.accounts[other])
    peer.goto("/tasks")
    href = peer.locator("#tasks-table tbody tr a").first.get_attribute("href")
    watch.expected.append("status of 404")
    response = student.goto(href or "/study/tasks/x")
    assert response is not None and response.status == 404
    shot(student, screenshots, "32-not-yours")
