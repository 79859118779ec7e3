"""Keyboard only, no mouse: log in, choose a topic and a difficulty, predict, start the timer,
pause it, and mark the task correct, with the Tab order and the task page's shortcuts."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.slow


def tab_to(page, selector: str, limit: int = 60) -> None:
    """Press Tab until ``selector`` has the focus (fails if the focus order never gets there)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("s => document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"{selector} never got the focus in {limit} presses of Tab")


def test_study_a_task_with_the_keyboard_only(new_page, server):
    page, watch = new_page()
    email = server.students[1]
    page.goto("/login")
    tab_to(page, "#f-email")
    page.keyboard.type(email)
    tab_to(page, "#f-password")
    page.keyboard.type(server.accounts[email])
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/dashboard$"))

    tab_to(page, "nav a[href='/study']")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/study$"))
    tab_to(page, "#f-topic")
    before = page.input_value("#f-topic")
    page.keyboard.press("ArrowDown")
    if page.input_value("#f-topic") == before:  # the last choice was remembered: go up instead
        page.keyboard.press("ArrowUp")
    topic = page.input_value("#f-topic")
    assert topic and topic != before
    tab_to(page, "input[name=difficulty]")
    page.keyboard.press("ArrowRight")
    difficulty = page.evaluate("document.activeElement.value")
    assert page.is_checked(f"#f-difficulty-{difficulty}")
    tab_to(page, "#predict")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/study/tasks/[0-9a-f-]+$"))
    assert page.is_visible("#shortcuts")

    page.keyboard.press("s")
    assert page.is_visible("#timer-pause")
    page.wait_for_timeout(1200)
    page.keyboard.press("s")
    assert page.is_visible("#timer-resume")
    assert "Paused at 00:01" in page.inner_text("#timer-status")
    paused_at = page.inner_text("#timer")
    # Shortcuts stay out of the way while typing: an "s" in a field does not resume the timer
    # (Tab selects the field's text, so the "s" replaces the second the clock wrote there).
    tab_to(page, "#f-seconds")
    page.keyboard.type("s")
    assert page.input_value("#f-seconds") == "s"
    page.wait_for_timeout(600)
    assert page.is_visible("#timer-resume")
    assert page.inner_text("#timer") == paused_at
    page.keyboard.press("Backspace")
    page.keyboard.type("1")
    tab_to(page, "#mark-correct")

    page.keyboard.press("c")
    page.wait_for_selector("#result")
    assert "correct" in page.inner_text("#actual-result")
    assert page.inner_text("#actual-time").startswith("1 s")
    watch.check()
