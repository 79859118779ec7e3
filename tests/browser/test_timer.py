"""The study timer's clock and the time it types agree to the second (issue 16: the clock
once showed 00:06 while the typed seconds said 7)."""

from __future__ import annotations

import re

import pytest

from tests.browser.test_browser import login

pytestmark = pytest.mark.slow


def test_typed_time_is_the_time_the_clock_shows(new_page, server):
    page, _ = new_page()
    email = server.students[0]
    login(page, email, server.accounts[email])
    page.goto("/study")
    page.select_option("#f-subject", label="Mathematics")
    page.select_option("#f-topic", label="Calculus")
    page.click("label[for=f-difficulty-easy]")
    # The page's clock is driven by the test: 6.6 s pass between start and pause.
    page.clock.install()
    page.click("#predict")
    page.wait_for_url(re.compile(r"/study/tasks/[0-9a-f-]+$"))
    page.clock.pause_at(1_800_000_000_000)
    page.click("#timer-start")
    page.clock.run_for(6_600)
    page.click("#timer-pause")
    assert page.inner_text("#timer").strip() == "00:06"
    assert page.input_value("#f-minutes") == "0"
    assert page.input_value("#f-seconds") == "6"
