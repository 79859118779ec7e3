"""Issue 10 in a real browser: the study page explains a prediction in plain words with the
model behind a details toggle, and a new student's analytics say "not enough data yet"
instead of plotting a calibration curve from a handful of tasks."""

from __future__ import annotations

import re

import pytest

from tests.browser.test_browser import go, shot, wait_for_charts

pytestmark = pytest.mark.slow


def test_study_page_explains_and_analytics_waits_for_data(new_page, screenshots):
    page, _ = new_page()
    page.goto("/signup")
    page.fill("#f-display_name", "Sam")
    page.fill("#f-email", "sam@example.com")
    page.fill("#f-password", "sam's password 1")
    page.fill("#f-password_confirm", "sam's password 1")
    page.click("main button[type=submit]")
    page.wait_for_url(re.compile(r"/study"))

    # Analytics before any task: the not-enough-data state, no charts.
    go(page, "Analytics", "/analytics")
    assert "Not enough data yet" in page.inner_text("#not-enough-data")
    assert page.locator(".chart").count() == 0

    go(page, "Study timer", "/study")
    page.select_option("#f-subject", label="Mathematics")
    page.select_option("#f-topic", label="Calculus")
    page.click("label[for=f-difficulty-medium]")
    page.click("#predict")
    page.wait_for_url(re.compile(r"/study/tasks/[0-9a-f-]+$"))
    why = page.locator("#pred-why")
    assert why.is_visible()
    assert "This is your first medium Calculus task" in why.inner_text()
    assert "8 of 10 of your times should fall" in why.inner_text()
    # The model is named only behind the toggle.
    assert not page.is_visible("#pred-model")
    page.click("#pred-details summary")
    assert page.is_visible("#pred-model")
    assert page.inner_text("#pred-model") in ("neural", "lnirt", "baseline")
    shot(page, screenshots, "30-study-why")

    page.fill("#f-minutes", "3")
    page.fill("#f-seconds", "0")
    page.click("#mark-correct")
    page.wait_for_selector("#result")
    assert "1 medium Calculus task so far" in page.inner_text("#next-why")

    # One task: the other charts are drawn, calibration waits, saying how many more it needs.
    go(page, "Analytics", "/analytics")
    wait_for_charts(page, 4)
    assert page.locator("#chart-calibration").count() == 0
    note = page.inner_text("#calibration-not-enough")
    assert "Not enough data yet" in note and "29 more" in note
    assert "Not enough data yet" in page.inner_text("#ece-not-enough")
    shot(page, screenshots, "31-analytics-not-enough-data")
