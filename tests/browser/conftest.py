"""Browser fixtures: `smartstudy serve --demo` in a subprocess and headless Chromium.

The browser is Debian's `chromium`, driven by Playwright's Python API. Without it (or without
Playwright) the browser tests are skipped with the reason; with CI=true they fail instead, so
CI always runs them. Screenshots go to $SMARTSTUDY_SCREENSHOTS_DIR, else a pytest temp folder.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.conftest import IN_CI
from tests.demo_server import demo_server

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
LOCAL_HOSTS = {"127.0.0.1", "localhost", "[::1]", "::1"}


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: the browser tests must run)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).is_file():
        _unavailable("Debian's chromium is not installed (apt-get install chromium)")
    return path


@pytest.fixture(scope="session")
def browser(chromium_path: str):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("Playwright for Python is not installed (pip install -e '.[dev]')")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = os.environ.get("SMARTSTUDY_SCREENSHOTS_DIR")
    path = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass
class Server:
    base_url: str
    data_dir: Path
    #: e-mail -> password, from <data dir>/demo-credentials.txt
    accounts: dict[str, str]
    admin_email: str

    @property
    def students(self) -> list[str]:
        return [e for e in self.accounts if e != self.admin_email]


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`smartstudy serve --demo` on a free port, in a fresh data folder."""
    data_dir = tmp_path_factory.mktemp("browser-data")
    with demo_server(data_dir) as base:
        accounts, admin = {}, ""
        for line in (data_dir / "demo-credentials.txt").read_text().splitlines():
            parts = line.split()
            if len(parts) >= 2 and "@" in parts[0]:
                accounts[parts[0]] = parts[1]
                if "(admin)" in line:
                    admin = parts[0]
        yield Server(base_url=base, data_dir=data_dir, accounts=accounts, admin_email=admin)


@dataclass
class Watch:
    """What a page did: console errors, uncaught exceptions, every request it made."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    #: Substrings of console errors that a test provokes on purpose (e.g. "status of 403").
    expected: list[str] = field(default_factory=list)

    def attach(self, page) -> None:
        page.on(
            "console",
            lambda msg: self.console_errors.append(msg.text) if msg.type == "error" else None,
        )
        page.on("pageerror", lambda exc: self.page_errors.append(str(exc)))
        page.on("request", lambda req: self.requests.append(req.url))

    def check(self) -> None:
        unexpected = [e for e in self.console_errors if not any(x in e for x in self.expected)]
        assert not unexpected, f"console errors: {unexpected}"
        assert not self.page_errors, f"uncaught page errors: {self.page_errors}"
        remote = [
            u
            for u in self.requests
            if urlsplit(u).scheme not in ("data", "blob", "about")
            and urlsplit(u).hostname not in LOCAL_HOSTS
        ]
        assert not remote, f"requests left the machine: {remote}"
        assert self.requests, "no requests were recorded"


@pytest.fixture
def new_page(browser, server: Server):
    """A fresh browser context and page per call, each watched; checked after the test."""
    contexts = []
    watches: list[Watch] = []

    def make(width: int = 1280, height: int = 900) -> tuple[object, Watch]:
        context = browser.new_context(
            viewport={"width": width, "height": height}, base_url=server.base_url
        )
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        watch = Watch()
        watch.attach(page)
        watches.append(watch)
        return page, watch

    yield make
    for context in contexts:
        context.close()
    for watch in watches:
        watch.check()
