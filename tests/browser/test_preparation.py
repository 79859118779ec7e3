"""Exam preparation in a real browser (headless Chromium) against `smartstudy serve --demo`:
a student adds an exam, sees today's plan and the readiness chart, starts a planned task,
completes it, and sees the plan follow; "Suggested next" on the study page; the page on a
phone does not scroll sideways."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest

from tests.browser.test_browser import go, login, shot, wait_for_charts

pytestmark = pytest.mark.slow

#: Minutes typed as the time of the planned task.
TASK_MINUTES = 12
#: The exam's topics and the weights typed for them.
WEIGHTS = {"Calculus": "2", "Sequences and series": "1", "Trigonometric identities": "1"}


def today_budget(page) -> float:
    return float(page.get_attribute("#today", "data-budget") or "nan")


def no_sideways_scroll(page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    viewport = page.evaluate("window.innerWidth")
    assert width <= viewport, f"the page is {width}px wide in a {viewport}px window"


def test_student_plans_an_exam_starts_a_planned_task_and_the_plan_follows(
    new_page, server, screenshots
):
    page, watch = new_page()
    email = server.students[3]
    login(page, email, server.accounts[email])

    # Suggested next on the study page: up to three, each started in one click.
    go(page, "Study timer", "/study")
    suggestions = page.locator("#suggested-next .suggestion")
    assert 1 <= suggestions.count() <= 3
    for i in range(suggestions.count()):
        item = suggestions.nth(i).inner_text()
        assert "% chance" in item and "about" in item

    go(page, "Preparation", "/preparation")
    assert page.locator("#no-exams").is_visible()
    # A mistake first: it is shown next to its field, and what was typed is kept.
    page.fill("#f-name", "Mathematics final")
    # Topics with weights instead of a whole subject: Calculus counts double.
    page.click(".topic-weights summary")
    for topic, weight in WEIGHTS.items():
        page.fill(f".weight-row:has(label:text-is('{topic}')) input", weight)
    page.fill("#f-daily_minutes", "45")
    page.check("#f-weekday-6")
    watch.expected.append("status of 422")
    page.click("#add-exam")
    page.wait_for_selector(".error-summary")
    assert page.inner_text("#f-exam_date-error") == "Enter the exam date."
    assert page.input_value("#f-name") == "Mathematics final"
    assert page.input_value(".weight-row:has(label:text-is('Calculus')) input") == "2"
    assert page.is_checked("#f-weekday-6")
    exam_date = datetime.now(UTC).date() + timedelta(days=12)
    page.fill("#f-exam_date", exam_date.isoformat())
    page.click("#add-exam")
    page.wait_for_url(re.compile(r"/preparation/exams/[0-9a-f-]+(\?done=exam-added)?$"))
    exam_url = page.url.split("?")[0]

    # The plan: the summary, today's tasks with a Start button each, the days after, and
    # readiness per topic (chart and table) with the workload curve.
    wait_for_charts(page, 2)
    assert "45 min/day" in page.inner_text("#plan-summary")
    assert "every topic to 80%" in page.inner_text("#minutes-needed")
    tasks = page.locator("#today-tasks .plan-task")
    assert tasks.count() >= 1
    before = today_budget(page)
    assert 0 < before <= 45
    topics = page.locator("#readiness-table tbody tr")
    assert topics.count() == len(WEIGHTS)
    weights = {
        r.locator("td").nth(0).inner_text(): r.locator("td").nth(1).inner_text()
        for r in topics.all()
    }
    assert weights == {
        "Calculus": "50%",
        "Sequences and series": "25%",
        "Trigonometric identities": "25%",
    }
    # One line per topic and the dashed target.
    assert page.locator("#chart-readiness g.trace").count() == topics.count() + 1
    assert page.locator("#plan-days li").count() >= 5
    assert page.get_attribute("#ics-link", "href") == urlsplit(exam_url).path + "/plan.ics"
    shot(page, screenshots, "preparation")

    # Start the first planned task: the study timer opens on that topic and difficulty.
    first = tasks.first.locator("button[type=submit]")
    topic, difficulty = first.get_attribute("data-topic"), first.get_attribute("data-difficulty")
    first.click()
    page.wait_for_url(re.compile(r"/study/tasks/[0-9a-f-]+$"))
    heading = page.inner_text("h1")
    assert topic in heading and difficulty in heading.lower()
    page.fill("#f-minutes", str(TASK_MINUTES))
    page.fill("#f-seconds", "0")
    page.click("#mark-correct")
    page.wait_for_selector("#result")
    assert "correct" in page.inner_text("#actual-result")

    # Back on the plan: today's minutes left went down by the time spent, and it is re-planned.
    go(page, "Preparation", "/preparation")
    page.click("#exam-list >> text=Mathematics final")
    page.wait_for_url(exam_url)
    wait_for_charts(page, 2)
    after = today_budget(page)
    assert after == pytest.approx(max(before - TASK_MINUTES, 0), abs=0.1)
    if after > 0:
        assert f"{round(after)} of your 45 minutes left today" in page.inner_text("#today")
    else:
        assert page.locator("#today-done").is_visible()
    shot(page, screenshots, "preparation-after-task")

    # The same plan on a phone: readable, charts drawn, no sideways scrolling.
    phone, _ = new_page(390, 844)
    login(phone, email, server.accounts[email])
    phone.goto(exam_url)
    wait_for_charts(phone, 2)
    no_sideways_scroll(phone)
    shot(phone, screenshots, "preparation-phone")
    phone.goto("/preparation")
    phone.click(".topic-weights summary")
    no_sideways_scroll(phone)
    shot(phone, screenshots, "preparation-phone-form")
    phone.goto("/study")
    no_sideways_scroll(phone)
