"""Reopening an old result shows what was shown then, not today's prediction (issue 16)."""

from __future__ import annotations

import re
import uuid

from smartstudy.store.orm import PracticeTask
from tests.web.conftest import Web, complete_task, create_task


def _next_p(page: str) -> float:
    found = re.search(r'id="next-p" data-value="([0-9.e-]+)"', page)
    assert found, "no next prediction on the page"
    return float(found.group(1))


def test_a_result_keeps_the_next_prediction_it_showed(web: Web, context, maths):
    web.signup("robin@example.com")
    first = create_task(web, maths.topic_id, "medium")
    complete_task(web, first, correct=True, minutes="3", seconds="0")
    with context.sessions() as session:
        stored = session.get(PracticeTask, uuid.UUID(first)).next_prediction
    assert stored and 0 < stored["p_correct"] < 1 and stored["sentences"]
    page = web.get(f"/study/tasks/{first}").text
    shown = _next_p(page)
    assert shown == stored["p_correct"]
    assert "Predicted right after this task by" in page

    # Later tasks in the same cell move today's prediction...
    for _ in range(4):
        later = create_task(web, maths.topic_id, "medium")
        complete_task(web, later, correct=False, minutes="9", seconds="0")
    now = _next_p(web.get(f"/study/tasks/{later}").text)
    assert now < shown
    # ...but the first result still shows what it showed then.
    again = web.get(f"/study/tasks/{first}").text
    assert _next_p(again) == shown
    for sentence in stored["sentences"]:
        assert sentence.replace("'", "&#39;") in again or sentence in again
