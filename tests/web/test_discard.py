"""An unfinished task can be discarded on the study page (issue 16); a completed one
cannot."""

from __future__ import annotations

from tests.web.conftest import Web, complete_task, create_task


def test_discarding_on_the_study_page(web: Web, maths):
    web.signup("robin@example.com")
    task_id = create_task(web, maths.topic_id, "medium")
    page = web.get(f"/study/tasks/{task_id}").text
    assert 'id="discard"' in page
    r = web.post(f"/study/tasks/{task_id}/discard")
    assert r.status_code == 303 and r.headers["location"] == "/study?done=discarded"
    assert "Task discarded." in web.get(r.headers["location"]).text
    assert web.get(f"/study/tasks/{task_id}").status_code == 404
    # A completed task has no discard button, and a forged request changes nothing.
    done = create_task(web, maths.topic_id, "easy")
    complete_task(web, done)
    assert 'id="discard"' not in web.get(f"/study/tasks/{done}").text
    r = web.post(f"/study/tasks/{done}/discard")
    assert r.status_code == 303 and r.headers["location"] == f"/study/tasks/{done}"
    assert web.get(f"/study/tasks/{done}").status_code == 200
