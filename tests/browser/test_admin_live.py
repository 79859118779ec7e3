"""The admin models page follows a training run live (issue 16: "Train now" once said "refresh
to see the run"): after a student completes a task, the admin clicks "Train now"; the new run
appears in the runs table and reaches a finished state there, and the live region says how
it ended, all without a reload (a marker set on ``window`` before the click survives)."""

from __future__ import annotations

import re

import pytest

from tests.browser.test_browser import login, shot

pytestmark = pytest.mark.slow

FINISHED = ("succeeded", "failed")


def _complete_a_task(page) -> None:
    page.goto("/study")
    page.select_option("#f-subject", label="Mathematics")
    page.select_option("#f-topic", label="Calculus")
    page.click("label[for=f-difficulty-medium]")
    page.click("#predict")
    page.wait_for_url(re.compile(r"/study/tasks/[0-9a-f-]+$"))
    page.fill("#f-minutes", "3")
    page.fill("#f-seconds", "10")
    page.click("#mark-correct")
    page.wait_for_selector("#result")


#: Records each row's successive statuses as the page changes them: window.__statuses[id].
WATCH_STATUSES = """() => {
    window.__statuses = {};
    const body = document.querySelector('#training-runs tbody');
    new MutationObserver(() => {
        for (const row of body.querySelectorAll('tr[data-run]')) {
            const seen = (window.__statuses[row.dataset.run] ||= []);
            if (seen[seen.length - 1] !== row.dataset.status) { seen.push(row.dataset.status); }
        }
    }).observe(body, {subtree: true, childList: true, attributes: true});
}"""


def _run_ids(page) -> list[str]:
    return page.eval_on_selector_all(
        "#training-runs tbody tr[data-run]", "rows => rows.map(r => r.dataset.run)"
    )


def test_train_now_shows_the_run_until_it_ends_without_a_reload(new_page, server, screenshots):
    student, _ = new_page()
    email = server.students[3]
    login(student, email, server.accounts[email])
    admin, _ = new_page()
    login(admin, server.admin_email, server.accounts[server.admin_email])
    assert admin.url.endswith("/admin/models")
    admin.evaluate("window.__noReload = 'still here'")
    admin.evaluate(WATCH_STATUSES)
    url = admin.url

    new_ids: list[str] = []
    # A training that the task triggered by itself (every few completions) may already have
    # learnt from it: then "Train now" says there is nothing new, and another task is done.
    for _ in range(3):
        before = _run_ids(admin)
        _complete_a_task(student)
        admin.evaluate("document.getElementById('runs-live').textContent = ''")
        admin.click("#train-now")
        admin.wait_for_function(
            """before => {
                const ids = [...document.querySelectorAll('#training-runs tbody tr[data-run]')]
                    .map(r => r.dataset.run);
                const live = document.getElementById('runs-live').textContent;
                return ids.some(id => !before.includes(id)) || live.includes('nothing');
            }""",
            arg=before,
        )
        new_ids = [i for i in _run_ids(admin) if i not in before]
        if new_ids:
            break
    assert new_ids, "Train now started no run"
    row = f"#training-runs tbody tr[data-run='{new_ids[0]}']"
    assert admin.is_visible(row)

    # The run ends in the table, with no reload: the marker is still there, the URL unchanged.
    admin.wait_for_function(
        "sel => ['succeeded', 'failed'].includes(document.querySelector(sel).dataset.status)",
        arg=row,
        timeout=240_000,
    )
    assert admin.evaluate("window.__noReload") == "still here"
    assert admin.url == url
    status = admin.get_attribute(row, "data-status")
    assert status in FINISHED
    # The table showed it queued or running first, then changed it in place.
    seen = admin.evaluate(f"window.__statuses['{new_ids[0]}']")
    assert seen[0] in ("queued", "running") and seen[-1] == status, seen
    assert admin.inner_text(f"{row} .run-status .badge") == status
    assert admin.inner_text(f"{row} .run-took") != "—"
    live = admin.inner_text("#runs-live")
    assert re.search(r"Training (finished: \d+ versions? stored\.|failed: )", live), live
    assert admin.get_attribute("#runs-live", "aria-live") == "polite"
    shot(admin, screenshots, "32-admin-live-run")
