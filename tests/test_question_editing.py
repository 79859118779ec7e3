"""Editing and deleting quiz questions (API and the admin topic page).

Every quiz keeps its questions as they were asked (``SessionQuestion.snapshot_json``), so a
question can be corrected or taken out of the bank without changing any quiz already taken:
its prompt, its right answer, its score and the mastery it gave stay as they were.
"""

from __future__ import annotations

import re

from sqlalchemy import select

from smartstudy.services import catalogue, quiz
from smartstudy.store.db import session_scope
from smartstudy.store.orm import AuditEntry
from tests.test_api_bkt import _quiz, concepts  # noqa: F401 (a fixture)
from tests.web.conftest import PASSWORD, Web, make_admin


def _actions(context, prefix: str) -> list[str]:
    with context.sessions() as session:
        rows = session.scalars(select(AuditEntry).order_by(AuditEntry.at)).all()
        return [e.action for e in rows if e.action.startswith(prefix)]


def test_edits_and_deletions_leave_quizzes_taken_as_they_were(
    client,
    admin,
    student,
    topic,
    concepts,  # noqa: F811
    context,
):
    taken = _quiz(client, student, topic, answers=[True], n=8)
    done = client.post(f"/v1/sessions/{taken['id']}/submit", headers=student).json()
    before = client.get(f"/v1/sessions/{taken['id']}", headers=student).json()
    assert before["n_correct"] == 8
    mastery_before = client.get("/v1/learning/bkt/mastery", headers=student).json()

    bank = client.get("/v1/questions", params={"topic_id": topic["id"]}, headers=admin).json()
    first, second = bank[0], bank[1]
    body = {
        "concept_id": concepts[1]["id"],  # moved to the other concept too
        "prompt": "A corrected question",
        "options": ["right now", "wrong now"],
        "correct_option": 0,
        "difficulty": "hard",
    }
    r = client.put(f"/v1/questions/{first['id']}", json=body, headers=admin)
    assert r.status_code == 200, r.text
    assert {k: r.json()[k] for k in body} == body
    assert client.delete(f"/v1/questions/{second['id']}", headers=admin).status_code == 204
    assert client.delete(f"/v1/questions/{second['id']}", headers=admin).status_code == 404

    after = client.get(f"/v1/sessions/{taken['id']}", headers=student).json()
    assert after == before  # prompts, options, right answers and the score as asked
    assert done["session"]["n_correct"] == 8
    assert client.get("/v1/learning/bkt/mastery", headers=student).json() == mastery_before
    listed = client.get("/v1/questions", params={"topic_id": topic["id"]}, headers=admin).json()
    assert len(listed) == 7 and second["id"] not in {q["id"] for q in listed}
    assert _actions(context, "question.") == ["question.create"] * 8 + [
        "question.update",
        "question.delete",
    ]
    # A new quiz asks the corrected question.
    fresh = client.post(
        "/v1/sessions", json={"topic_id": topic["id"], "n_questions": 7}, headers=student
    ).json()
    assert "A corrected question" in {q["prompt"] for q in fresh["questions"]}


def test_question_changes_are_checked_and_for_admins_only(
    client,
    admin,
    student,
    topic,
    concepts,  # noqa: F811
):
    qid = client.get("/v1/questions", headers=admin).json()[0]["id"]
    good = {
        "concept_id": concepts[0]["id"],
        "prompt": "Q",
        "options": ["a", "b"],
        "correct_option": 1,
    }
    for change in (
        {"options": ["a"]},
        {"correct_option": 2},
        {"prompt": ""},
        {"options": ["a", "a"]},
        {"extra": True},
    ):
        r = client.put(f"/v1/questions/{qid}", json={**good, **change}, headers=admin)
        assert r.status_code == 422, (change, r.text)
    unknown_concept = {**good, "concept_id": "00000000-0000-0000-0000-000000000000"}
    assert (
        client.put(f"/v1/questions/{qid}", json=unknown_concept, headers=admin).status_code == 404
    )
    assert client.put(f"/v1/questions/{qid}", json=good, headers=student).status_code == 403
    assert client.delete(f"/v1/questions/{qid}", headers=student).status_code == 403
    assert client.delete(f"/v1/questions/{qid}").status_code == 401
    stored = client.get("/v1/questions", headers=admin).json()[0]
    assert stored["id"] == qid and stored["prompt"] != "Q"  # nothing changed


def test_the_topic_page_edits_and_deletes_questions(client, context):
    make_admin(context, "boss@example.com")
    with session_scope(context.sessions) as session:
        topic = catalogue.ensure_topic(session, "Mathematics", "Calculus")
        other = catalogue.ensure_topic(session, "Mathematics", "Algebra")
        limits = catalogue.create_concept(session, topic.id, "Limits")
        groups = catalogue.create_concept(session, other.id, "Groups")
        q1 = quiz.create_question(session, limits.id, "lim 1/x", ["0", "inf"], 0)
        q2 = quiz.create_question(session, limits.id, "lim x", ["0", "1"], 0)
        foreign = quiz.create_question(session, groups.id, "Is Z a group?", ["yes", "no"], 0)
        ids = topic.id, other.id, limits.id, q1.id, q2.id, foreign.id
    topic_id, other_id, limits_id, q1_id, q2_id, foreign_id = ids
    web = Web(client)
    web.login("boss@example.com", PASSWORD)
    page = web.get(f"/admin/catalogue/topics/{topic_id}").text
    assert f'id="f-edit-{q1_id}-prompt"' in page and "Delete question" in page
    # The edit form starts from the stored question: options one per line, right line 1.
    assert re.search(rf'id="f-edit-{q1_id}-options"[^>]*>0\ninf</textarea>', page)

    edit = {
        "concept": str(limits_id),
        "prompt": "lim 1/x at 0+",
        "options": "0\n+inf\n-inf",
        "correct": "2",
        "difficulty": "hard",
    }
    r = web.post(f"/admin/catalogue/topics/{topic_id}/questions/{q1_id}/edit", edit)
    assert r.status_code == 303
    assert "Question saved" in web.get(r.headers["location"]).text
    bad = web.post(
        f"/admin/catalogue/topics/{topic_id}/questions/{q1_id}/edit",
        {**edit, "options": "only one"},
    )
    assert bad.status_code == 422 and "(there is 1)" in bad.text
    assert '<details class="rename" open>' in bad.text and "only one</textarea>" in bad.text
    r = web.post(f"/admin/catalogue/topics/{topic_id}/questions/{q2_id}/delete")
    assert r.status_code == 303 and "Question deleted" in web.get(r.headers["location"]).text
    # A question of another topic is not reachable through this topic's address.
    for action in ("edit", "delete"):
        r = web.post(f"/admin/catalogue/topics/{topic_id}/questions/{foreign_id}/{action}", edit)
        assert r.status_code == 404, action
    with context.sessions() as session:
        [kept] = quiz.list_questions(session, topic_id=topic_id)
        assert (kept.prompt, kept.options, kept.correct_option, kept.difficulty) == (
            "lim 1/x at 0+",
            ["0", "+inf", "-inf"],
            1,
            "hard",
        )
        assert len(quiz.list_questions(session, topic_id=other_id)) == 1
    assert _actions(context, "question.") == ["question.update", "question.delete"]
