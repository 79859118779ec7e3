"""The quiz page numbers its questions and says when the bank had fewer than asked for
(issue 16)."""

from __future__ import annotations

import re

from tests.web.conftest import Web


def _start(web: Web, topic_id, n: int) -> tuple[str, str]:
    web.get("/subjects")
    r = web.post("/quiz", {"topic": str(topic_id), "n_questions": str(n)})
    assert r.status_code == 303, r.text
    return r.headers["location"], web.get(r.headers["location"]).text


def test_questions_are_numbered_in_their_own_text(web: Web, maths):
    web.signup("robin@example.com")
    _, page = _start(web, maths.topic_id, 5)
    legends = re.findall(r'<legend class="prompt">(.*?)</legend>', page, re.S)
    assert len(legends) == 5
    for k, legend in enumerate(legends, start=1):
        assert f"Question {k} of 5." in legend
    assert 'id="quiz-short"' not in page


def test_a_quiz_shorter_than_asked_says_why(web: Web, maths):
    web.signup("robin@example.com")
    location, page = _start(web, maths.topic_id, 10)  # Calculus has 6 questions
    assert location.endswith("?asked=10")
    assert (
        "You asked for 10 questions; the question bank has 6 for this choice, "
        "so this quiz has 6." in page
    )
    assert len(re.findall(r'<legend class="prompt">', page)) == 6
    # The note is about this quiz only: a made-up number changes nothing.
    plain = location.split("?")[0]
    assert 'id="quiz-short"' not in web.get(plain + "?asked=3").text
    assert 'id="quiz-short"' not in web.get(plain + "?asked=abc").text


def test_the_quiz_address_opened_as_a_page_leads_to_the_subjects(web: Web, maths):
    """``/quiz`` only takes POSTs (starting a quiz); a reload or a bookmark of it leads to the
    subjects page, where quizzes are started, instead of a 405."""
    web.signup("quizzer@example.com")
    r = web.get("/quiz")
    assert r.status_code == 200 and r.url.path == "/subjects"
    assert "Take a quiz" in r.text
