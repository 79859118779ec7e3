"""Every page, as a student and as an admin, at desktop (1280 px) and phone (390 px) width:

- axe-core (from the npm registry, ``npm ci``; loaded into the page by the test, never from a
  CDN) finds no violation of impact "serious" or "critical";
- the page does not scroll sideways (wide tables scroll inside their own box, with a cue);
- no chart legend is covered by another part of the chart, or pushed out of it.

The pages are found by following the links of the app from the dashboard, one page per route
(``/study/tasks/<id>`` is visited once, not once per task), plus the pages that only a form
leads to: an open task, a quiz in progress, a styled 404.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.browser.conftest import _unavailable
from tests.browser.test_browser import login

pytestmark = pytest.mark.slow

AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
WIDTHS = (1280, 390)
#: Links that are not pages: downloads, API documentation (a third-party page), logging out.
SKIP = re.compile(r"^/(static|v1|docs|redoc|openapi\.json|metrics|healthz|logout)|\.(csv|ics)$")
#: How many chart legends each audit looked at (a test fails if too few were checked).
LEGENDS_CHECKED: list[int] = []
ID = re.compile(r"/([0-9a-f]{8}-[0-9a-f-]{27}|\d+)(?=/|$)")

FITTED = """
() => [...document.querySelectorAll('.chart[data-rendered="true"]')].every(chart => {
  const svg = chart.querySelector('svg.main-svg');
  return svg && Math.abs(svg.getBoundingClientRect().width - chart.clientWidth) <= 2;
})
"""

LEGEND_CHECK = """
() => {
  const problems = [];
  let legends = 0;
  const box = el => el.getBoundingClientRect();
  const overlap = (a, b) => Math.min(a.right, b.right) - Math.max(a.left, b.left) > 1 &&
                            Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top) > 1;
  for (const chart of document.querySelectorAll('.chart[data-rendered="true"]')) {
    const outer = box(chart);
    const legend = chart.querySelector('g.legend');
    if (!legend) continue;
    legends += 1;
    const l = box(legend);
    if (l.left < outer.left - 1 || l.right > outer.right + 1 || l.left < 0 ||
        l.right > document.documentElement.clientWidth + 1) {
      problems.push(chart.id + ': legend outside the chart');
    }
    const others = [
      ...chart.querySelectorAll('.modebar-container, .gtitle, .xtitle, .ytitle, .y2title'),
      ...chart.querySelectorAll('.cartesianlayer .xy .gridlayer, .plot .bars, .nsewdrag'),
    ];
    for (const other of others) {
      const o = box(other);
      if (o.width > 0 && o.height > 0 && overlap(l, o)) {
        problems.push(chart.id + ': legend covered by ' + other.getAttribute('class'));
      }
    }
  }
  for (const wrap of document.querySelectorAll('.table-wrap')) {
    const hint = wrap.previousElementSibling;
    if (wrap.scrollWidth > wrap.clientWidth + 1 && wrap.offsetParent !== null &&
        !(wrap.classList.contains('scrolls') && hint && hint.classList.contains('scroll-hint'))) {
      problems.push('a table scrolls sideways with no cue: ' + (wrap.getAttribute('aria-label') ||
                    wrap.querySelector('table').id || wrap.parentElement.id));
    }
  }
  return {problems, legends};
}
"""


@pytest.fixture(scope="session")
def axe_source() -> str:
    if not AXE.is_file():
        _unavailable("axe-core is not installed: run `npm ci` in the repository")
    return AXE.read_text(encoding="utf-8")


def route_of(path: str) -> str:
    return ID.sub("/<id>", path)


def links(page, base: str) -> Iterator[str]:
    for href in page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)"):
        parts = urlsplit(href)
        if f"{parts.scheme}://{parts.netloc}" != base or SKIP.search(parts.path):
            continue
        yield parts.path + (f"?{parts.query}" if parts.query else "")


def audit(page, axe_source: str, where: str) -> list[str]:
    """The problems on the page that is open now: axe, sideways scroll, covered legends."""
    page.wait_for_load_state("load")
    charts = page.locator(".chart[data-figure]").count()
    if charts:
        page.wait_for_function(
            "n => document.querySelectorAll('.chart[data-rendered=\"true\"]').length >= n",
            arg=charts,
        )
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(axe_source)
    result = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    problems = [
        f"{where}: axe {v['impact']} {v['id']}: {v['help']} at "
        + "; ".join(" ".join(n["target"]) for n in v["nodes"][:4])
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    scroll = page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    if scroll[0] > scroll[1] + 1:
        problems.append(f"{where}: the page scrolls sideways ({scroll[0]} px > {scroll[1]} px)")
    checked = page.evaluate(LEGEND_CHECK)
    LEGENDS_CHECKED.append(checked["legends"])
    return problems + [f"{where}: {p}" for p in checked["problems"]]


def audit_widths(page, axe_source: str, where: str) -> list[str]:
    problems = []
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        # Plotly redraws a chart for the new width after a short delay: wait for it.
        page.wait_for_function(FITTED)
        problems += audit(page, axe_source, f"{where} at {width} px")
    return problems


def audit_form_pages(page, axe_source: str, who: str) -> list[str]:
    """Pages reached only through a form: an open task, a quiz in progress, its result."""
    page.goto("/study")
    page.select_option("#f-topic", index=1)
    page.click("label[for=f-difficulty-medium]")
    page.click("#predict")
    page.wait_for_url(re.compile(r"/study/tasks/"))
    problems = audit_widths(page, axe_source, f"{who} open task")
    page.goto("/subjects")
    page.locator("button[data-quiz-topic]").first.click()
    page.wait_for_url(re.compile(r"/quiz/[0-9a-f-]+(\?asked=\d+)?$"))
    problems += audit_widths(page, axe_source, f"{who} quiz in progress")
    questions = page.locator("#quiz-form .question")
    for i in range(questions.count()):
        questions.nth(i).locator("input[type=radio]").first.check()
    page.click("#quiz-submit")
    page.wait_for_selector("#result")
    return problems + audit_widths(page, axe_source, f"{who} quiz result")


def crawl(page, axe_source: str, base: str, who: str) -> list[str]:
    problems: list[str] = []
    seen_routes: set[str] = set()
    queue = ["/dashboard" if who == "student" else "/admin/models", "/no-such-page"]
    while queue:
        path = queue.pop(0)
        route = route_of(path.split("?")[0])
        if route in seen_routes:
            continue
        seen_routes.add(route)
        response = page.goto(path)
        status = response.status if response else 0
        if status != (404 if path == "/no-such-page" else 200):
            problems.append(f"{who} {path}: answered {status}")
        problems += audit_widths(page, axe_source, f"{who} {path}")
        queue += list(links(page, base))
    expected = {"/dashboard", "/study", "/study/tasks/<id>", "/preparation", "/tasks", "/analytics"}
    expected |= {"/subjects", "/concepts/<id>", "/settings"}
    admin_pages = {"/admin/models", "/admin/users", "/admin/users/<id>", "/admin/catalogue"}
    admin_pages |= {"/admin/catalogue/topics/<id>", "/admin/person-fit"}
    expected |= admin_pages if who == "admin" else {"/preparation/exams/<id>"}
    missing = expected - seen_routes
    assert not missing, f"{who}: pages not reached by following links: {sorted(missing)}"
    return problems


#: Chart legends each visitor's pages must have let the audit check (student: the analytics
#: and concept pages; admin: the models page; the anonymous pages have no chart).
MIN_LEGENDS = {"student": 10, "admin": 1, "anonymous": 0}


# One case per visitor, so that two test processes can crawl at once.
@pytest.mark.parametrize("who", list(MIN_LEGENDS))
def test_every_page_is_accessible_and_fits_a_phone(new_page, server, axe_source, who):
    problems: list[str] = []
    first = len(LEGENDS_CHECKED)
    page, watch = new_page()
    if who == "anonymous":
        for path in ("/", "/login", "/signup"):
            page.goto(path)
            problems += audit_widths(page, axe_source, f"anonymous {path}")
    else:
        # The student is the one with an exam.
        student = next(e for e in server.students if e.startswith("ada@"))
        email = student if who == "student" else server.admin_email
        watch.expected.append("404")
        login(page, email, server.accounts[email])
        problems += audit_form_pages(page, axe_source, who)
        problems += crawl(page, axe_source, server.base_url, who)
    assert not problems, "\n".join(problems)
    legends = sum(LEGENDS_CHECKED[first:])
    assert legends >= MIN_LEGENDS[who], f"{who}: only {legends} chart legends were checked"
