"""/admin/users: each account with what its student has done (tasks, share right, last task)."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from smartstudy.services import user_admin
from tests.web.conftest import PASSWORD, Web, complete_task, create_task, make_admin


def test_the_users_page_shows_each_students_practice(web: Web, maths, context):
    web.signup("busy@example.com")
    for correct in (True, True, False):
        complete_task(web, create_task(web, maths.topic_id), correct=correct)
    create_task(web, maths.topic_id)  # started, not done: not counted
    idle = Web(TestClient(web.client.app))
    idle.signup("idle@example.com")

    make_admin(context, "boss@example.com")
    admin = Web(TestClient(web.client.app))
    admin.login("boss@example.com", PASSWORD)
    page = admin.get("/admin/users").text
    rows = {
        m.group(1): m.group(0)
        for m in re.finditer(
            r'<td class="text" data-label="E-mail">([^<]+)</td>.*?</tr>', page, re.S
        )
    }
    assert 'data-label="Tasks done">3<' in rows["busy@example.com"]
    assert 'data-label="Correct">67%<' in rows["busy@example.com"]
    assert 'data-label="Tasks done">0<' in rows["idle@example.com"]
    assert 'data-label="Correct">—<' in rows["idle@example.com"]
    with context.sessions() as session:
        busy = user_admin.list_users(session, search="busy").items[0]
        done = user_admin.activity(session, [busy.id])[busy.id]
    assert (done.tasks_done, done.correct) == (3, 2) and done.last_done is not None
    account = admin.get(f"/admin/users/{busy.id}").text
    assert "3 tasks done, 67% correct; the last on" in account
