"""Sign-up in a real browser takes its time zone and language (``static/locale.js``), so a
student in Tokyo sees Tokyo's clock from the first page (issue 16)."""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import Server, Watch

pytestmark = pytest.mark.slow


def _sign_up(browser, server: Server, email: str, **context_options) -> tuple[object, Watch]:
    context = browser.new_context(base_url=server.base_url, **context_options)
    page = context.new_page()
    page.set_default_timeout(15_000)
    watch = Watch()
    watch.attach(page)
    page.goto("/signup")
    page.fill("#f-email", email)
    page.fill("#f-password", "a long password")
    page.fill("#f-password_confirm", "a long password")
    page.click("main button[type=submit]")
    page.wait_for_url(re.compile(r"/study"))
    return page, watch


def test_the_browser_s_zone_and_language_are_stored(browser, server: Server):
    page, watch = _sign_up(
        browser, server, "tokyo-browser@example.com", timezone_id="Asia/Tokyo", locale="de-DE"
    )
    page.goto("/settings")
    assert page.locator("#f-time_zone").input_value() == "Asia/Tokyo"
    assert page.locator("#f-locale").input_value() == "de-DE"
    assert "times in Asia/Tokyo" in page.locator("footer").inner_text()
    watch.check()
    page.context.close()


def test_without_javascript_sign_up_uses_utc(browser, server: Server):
    page, watch = _sign_up(
        browser,
        server,
        "nojs-browser@example.com",
        java_script_enabled=False,
        timezone_id="Asia/Tokyo",
        locale="en-US",
    )
    page.goto("/settings")
    assert page.locator("#f-time_zone").input_value() == "UTC"
    assert page.locator("#f-locale").input_value() == "en-GB"
    watch.check()
    page.context.close()
