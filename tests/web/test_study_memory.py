"""The study page remembers the last choice (issue 16)."""

from __future__ import annotations

import re

from tests.web.conftest import Web, create_task


def _chosen(page: str) -> tuple[str | None, str | None, str | None]:
    subject = re.search(r'<option value="([^"]+)" selected>', page)
    topic = re.search(r'<option value="([^"]+)" data-subject="[^"]+" selected>', page)
    difficulty = re.search(r'name="difficulty" value="(\w+)" checked', page)
    return (
        subject.group(1) if subject else None,
        topic.group(1) if topic else None,
        difficulty.group(1) if difficulty else None,
    )


def test_the_study_page_starts_from_the_last_choice(web: Web, maths):
    web.signup("robin@example.com")
    assert _chosen(web.get("/study").text) == (None, None, "medium")  # nothing yet
    create_task(web, maths.other_topic_id, "hard")
    assert _chosen(web.get("/study").text) == (
        str(maths.subject_id),
        str(maths.other_topic_id),
        "hard",
    )
    # A choice in the address (a "practise this" link) still wins.
    asked = web.get(f"/study?topic={maths.topic_id}&difficulty=easy").text
    assert _chosen(asked) == (str(maths.subject_id), str(maths.topic_id), "easy")
