"""/docs and /redoc in a real browser with no network: every request that is not for this
machine is blocked, so the pages render only if their scripts and styles come from the app.

A Content-Security-Policy violation shows up as a console error, which ``Watch`` fails on.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import uvicorn

from smartstudy.api.app import create_app
from smartstudy.config import Settings
from tests.browser.conftest import LOCAL_HOSTS, Watch
from tests.demo_server import free_port

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def docs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app on an empty SQLite database, served by uvicorn in a thread."""
    data = tmp_path_factory.mktemp("docs-server")
    settings = Settings(
        data_dir=data,
        database_url=f"sqlite:///{data / 'smartstudy.db'}",
        secret_key="docs-test-secret-" + "x" * 32,
        auto_migrate=True,
    )
    port = free_port()
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("uvicorn did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def offline_page(browser, docs_server: str):
    """A page whose requests to any host but this machine are aborted (and recorded)."""
    context = browser.new_context(base_url=docs_server, viewport={"width": 1280, "height": 900})
    blocked: list[str] = []

    def only_local(route) -> None:
        url = route.request.url
        if urlsplit(url).scheme in ("http", "https", "ws", "wss") and (
            urlsplit(url).hostname not in LOCAL_HOSTS
        ):
            blocked.append(url)
            route.abort()
        else:
            route.continue_()

    context.route("**/*", only_local)
    page = context.new_page()
    page.set_default_timeout(20_000)
    watch = Watch()
    watch.attach(page)
    yield page
    context.close()
    assert not blocked, f"the page asked for other hosts: {blocked}"
    watch.check()


def test_swagger_ui_lists_the_operations_offline(offline_page, screenshots: Path):
    page = offline_page
    page.goto("/docs")
    page.wait_for_selector(".opblock-summary-path")
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert len(paths) > 30
    assert any("/v1/auth/login" in p for p in paths)
    # An operation opens and shows its documented error answers.
    page.locator("#operations-auth-login_v1_auth_login_post .opblock-summary").click()
    page.wait_for_selector("#operations-auth-login_v1_auth_login_post .responses-table")
    answers = page.locator("#operations-auth-login_v1_auth_login_post .response-col_status")
    assert {"200", "401", "422", "429"} <= {t.strip() for t in answers.all_inner_texts()}
    page.screenshot(path=str(screenshots / "docs-swagger.png"), full_page=False)


def test_redoc_renders_offline(offline_page, screenshots: Path):
    page = offline_page
    page.goto("/redoc")
    page.wait_for_selector("text=Exchange e-mail and password for an access token")
    assert page.locator("h1").first.inner_text().startswith("SmartStudy")
    page.screenshot(path=str(screenshots / "docs-redoc.png"), full_page=False)
