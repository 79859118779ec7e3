"""/admin/catalogue: an admin builds the catalogue in the browser (a fresh installation has
none), with the same rules and audit entries as the API; students practise what is added."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import select

from smartstudy.services import catalogue, quiz
from smartstudy.store.db import session_scope
from smartstudy.store.orm import AuditEntry, Question
from tests.web.conftest import PASSWORD, Web, make_admin


def _admin(web: Web, context) -> Web:
    make_admin(context, "boss@example.com")
    web.login("boss@example.com", PASSWORD)
    return web


def _actions(context) -> list[tuple[str, str]]:
    with context.sessions() as session:
        rows = session.scalars(select(AuditEntry).order_by(AuditEntry.at)).all()
        return [(e.action, e.actor_email) for e in rows]


def _topic_id(context, subject: str, topic: str):
    with context.sessions() as session:
        found = catalogue.find_subject(session, subject)
        return catalogue.find_topic(session, found, topic).id


def test_an_admin_builds_a_catalogue_that_students_practise(web: Web, context):
    _admin(web, context)
    empty = web.get("/admin/catalogue")
    assert empty.status_code == 200 and "The catalogue is empty" in empty.text
    assert "Add a subject first" in empty.text

    r = web.post("/admin/catalogue/subjects", {"name": "  Chemistry  "})
    assert r.status_code == 303 and r.headers["location"].startswith("/admin/catalogue")
    page = web.get(r.headers["location"])
    assert "Subject added" in page.text and "Chemistry" in page.text
    subject_id = re.search(r'<option value="([0-9a-f-]{36})"', page.text).group(1)

    r = web.post("/admin/catalogue/topics", {"subject": subject_id, "name": "Organic chemistry"})
    assert r.status_code == 303
    topic_id = _topic_id(context, "Chemistry", "Organic chemistry")
    assert r.headers["location"].startswith(f"/admin/catalogue/topics/{topic_id}")
    topic_page = web.get(r.headers["location"])
    assert "Topic added" in topic_page.text and "Add a concept first" in topic_page.text

    assert (
        web.post(f"/admin/catalogue/topics/{topic_id}/concepts", {"name": "Alkanes"}).status_code
        == 303
    )
    with context.sessions() as session:
        [concept] = catalogue.list_concepts(session, topic_id)
    web.get(f"/admin/catalogue/topics/{topic_id}")
    question = {
        "concept": str(concept.id),
        "prompt": "Which is an alkane?",
        "options": "Ethene\n\n  Ethane  \nBenzene\n",
        "correct": "2",
        "difficulty": "easy",
    }
    r = web.post(f"/admin/catalogue/topics/{topic_id}/questions", question)
    assert r.status_code == 303
    # The next question's form keeps the concept and the difficulty.
    after = web.get(r.headers["location"])
    assert "Question added" in after.text
    assert f'<option value="{concept.id}" selected>' in after.text
    assert '<option value="easy" selected>' in after.text
    with context.sessions() as session:
        [stored] = session.scalars(select(Question)).all()
        assert stored.options == ["Ethene", "Ethane", "Benzene"]  # blank lines dropped
        assert (stored.correct_option, stored.difficulty) == (1, "easy")
    assert 'Ethane <span class="badge good">right answer</span>' in after.text
    listed = web.get("/admin/catalogue").text
    assert re.search(r'data-label="Concepts">1<.*?data-label="Quiz questions">1<', listed, re.S)

    assert _actions(context) == [
        ("subject.create", "boss@example.com"),
        ("topic.create", "boss@example.com"),
        ("concept.create", "boss@example.com"),
        ("question.create", "boss@example.com"),
    ]

    # A student can practise the new topic and take a quiz on it.
    student = Web(web.client)
    student.signup("learner@example.com")
    assert "Organic chemistry" in student.get("/study").text
    r = student.post("/study", {"topic": str(topic_id), "difficulty": "medium"})
    assert r.status_code == 303 and "/study/tasks/" in r.headers["location"]
    student.get("/subjects")
    r = student.post("/quiz", {"topic": str(topic_id), "n_questions": "1"})
    assert r.status_code == 303 and "/quiz/" in r.headers["location"]
    assert "Which is an alkane?" in student.get(r.headers["location"]).text


def test_names_are_checked_and_renames_keep_the_rows(web: Web, context):
    _admin(web, context)
    with session_scope(context.sessions) as session:
        topic = catalogue.ensure_topic(session, "Mathematics", "Calculus")
        catalogue.ensure_topic(session, "Physics", "Waves")
        concept = catalogue.create_concept(session, topic.id, "Limits")
        subject_id, topic_id, concept_id = topic.subject_id, topic.id, concept.id
    web.get("/admin/catalogue")
    taken = web.post("/admin/catalogue/subjects", {"name": "physics"})
    assert taken.status_code == 409 and "already exists" in taken.text
    assert 'value="physics"' in taken.text  # what was typed is kept
    blank = web.post("/admin/catalogue/subjects", {"name": "   "})
    assert blank.status_code == 422 and "The name must not be empty." in blank.text
    nul = web.post("/admin/catalogue/topics", {"subject": str(subject_id), "name": "A\x00B"})
    assert nul.status_code == 422 and "NUL" in nul.text
    no_subject = web.post("/admin/catalogue/topics", {"subject": "", "name": "Algebra"})
    assert no_subject.status_code == 422 and "The subject must be chosen." in no_subject.text

    r = web.post(f"/admin/catalogue/subjects/{subject_id}/rename", {"name": "Maths"})
    assert r.status_code == 303
    clash = web.post(f"/admin/catalogue/subjects/{subject_id}/rename", {"name": "PHYSICS"})
    assert clash.status_code == 409 and '<details class="rename" open>' in clash.text
    web.get(f"/admin/catalogue/topics/{topic_id}")
    assert (
        web.post(f"/admin/catalogue/topics/{topic_id}/rename", {"name": "Analysis"}).status_code
        == 303
    )
    r = web.post(
        f"/admin/catalogue/topics/{topic_id}/concepts/{concept_id}/rename", {"name": "Limits of f"}
    )
    assert r.status_code == 303
    dup = web.post(f"/admin/catalogue/topics/{topic_id}/concepts", {"name": "limits OF F"})
    assert dup.status_code == 409 and "already exists in Analysis" in dup.text
    with context.sessions() as session:
        assert catalogue.get_topic(session, topic_id).name == "Analysis"
        assert catalogue.get_topic(session, topic_id).subject.name == "Maths"
        assert catalogue.get_concept(session, concept_id).name == "Limits of f"
    # A concept renamed through another topic's address is not found.
    with session_scope(context.sessions) as session:
        waves = catalogue.find_topic(session, catalogue.find_subject(session, "Physics"), "Waves")
        waves_id = waves.id
    wrong = web.post(
        f"/admin/catalogue/topics/{waves_id}/concepts/{concept_id}/rename", {"name": "X"}
    )
    assert wrong.status_code == 404


def test_a_bad_question_is_explained_and_nothing_is_stored(web: Web, context):
    _admin(web, context)
    with session_scope(context.sessions) as session:
        topic = catalogue.ensure_topic(session, "Mathematics", "Calculus")
        other = catalogue.ensure_topic(session, "Mathematics", "Algebra")
        concept = catalogue.create_concept(session, topic.id, "Limits")
        foreign = catalogue.create_concept(session, other.id, "Groups")
        topic_id, concept_id, foreign_id = topic.id, concept.id, foreign.id
    good = {
        "concept": str(concept_id),
        "prompt": "lim x→0 sin x / x",
        "options": "0\n1",
        "correct": "2",
    }
    cases = [
        ({"options": "1"}, "Give 2 to 8 answers to choose from, one per line (there is 1)."),
        ({"options": "\n".join(str(i) for i in range(9))}, "(there are 9)"),
        ({"correct": "3"}, "Choose which answer is right: 1 to 2."),
        ({"correct": "zero"}, "Choose which answer is right: 1 to 2."),
        ({"prompt": "  "}, "Write the question."),
        ({"prompt": "x\x00"}, "NUL"),
        ({"options": "0\n" + "y" * 501}, "The answer on line 2 must be at most 500 characters"),
        ({"options": "1\n1"}, "options must differ from each other"),
        ({"concept": str(foreign_id)}, "Choose the concept the question tests."),
        ({"concept": "nonsense"}, "Choose the concept the question tests."),
        ({"difficulty": "brutal"}, "Choose a difficulty: easy, medium or hard."),
    ]
    for change, message in cases:
        web.get(f"/admin/catalogue/topics/{topic_id}")
        r = web.post(
            f"/admin/catalogue/topics/{topic_id}/questions",
            {"difficulty": "medium", **good, **change},
        )
        assert r.status_code == 422, (change, r.status_code)
        assert message in r.text, (change, re.findall(r'role="alert"><p>([^<]*)', r.text))
    with context.sessions() as session:
        assert quiz.list_questions(session, topic_id=topic_id) == []
    assert _actions(context) == []


def test_students_cannot_change_the_catalogue(web: Web, context):
    with session_scope(context.sessions) as session:
        topic = catalogue.ensure_topic(session, "Mathematics", "Calculus")
        topic_id, subject_id = topic.id, topic.subject_id
    web.signup("pupil@example.com")
    for path in ("/admin/catalogue", f"/admin/catalogue/topics/{topic_id}"):
        assert web.get(path, follow_redirects=False).status_code == 403
    web.get("/dashboard")
    for path, data in (
        ("/admin/catalogue/subjects", {"name": "Art"}),
        (f"/admin/catalogue/subjects/{subject_id}/rename", {"name": "Art"}),
        (f"/admin/catalogue/topics/{topic_id}/concepts", {"name": "Art"}),
    ):
        assert web.post(path, data).status_code == 403, path
    with context.sessions() as session:
        assert [s.name for s in catalogue.list_subjects(session)] == ["Mathematics"]
    assert 'href="/admin/catalogue"' not in web.get("/dashboard").text


def test_an_empty_catalogue_says_so_where_topics_are_picked(web: Web, context):
    """A new installation: students are told why there is nothing to pick and whom to ask,
    the admin where to add topics; once a topic exists the notes go."""
    web.signup("early@example.com")
    for path in ("/study", "/subjects", "/preparation"):
        page = web.get(path).text
        assert 'id="no-topics"' in page and "ask yours" in page, path
    admin = _admin(Web(TestClient(web.client.app)), context)  # a second browser
    models = admin.get("/admin/models").text
    assert 'id="catalogue-empty-note"' in models and 'href="/admin/catalogue"' in models
    assert 'href="/admin/catalogue"' in admin.get("/study").text  # the admin is sent there
    with session_scope(context.sessions) as session:
        catalogue.ensure_topic(session, "Mathematics", "Calculus")
    for path in ("/study", "/subjects", "/preparation"):
        assert 'id="no-topics"' not in web.get(path).text, path
    assert 'id="catalogue-empty-note"' not in admin.get("/admin/models").text


QUESTIONS_CSV = (
    "subject,topic,concept,question,answer_1,answer_2,right\n"
    "Chemistry,Organic,Alkanes,Which is an alkane?,Ethene,Ethane,2\n"
    "Chemistry,Organic,Alkanes,CH4 is,methane,ethane,1\n"
)


def test_questions_come_and_go_as_a_csv_file(web: Web, context):
    _admin(web, context)
    web.get("/admin/catalogue")
    files = {"file": ("bank.csv", QUESTIONS_CSV.encode(), "text/csv")}
    checked = web.post("/admin/catalogue/questions/import", {"check": "1"}, files=files)
    assert checked.status_code == 200 and 'id="import-result"' in checked.text
    assert "would add 2 questions" in checked.text
    with context.sessions() as session:
        assert catalogue.list_subjects(session) == []  # only checked
    done = web.post("/admin/catalogue/questions/import", files=files)
    assert done.status_code == 200 and "added 2 questions" in done.text
    assert "1 new subject, 1 new topic, 1 new concept" in done.text
    exported = web.get("/admin/catalogue/questions.csv")
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    assert "attachment" in exported.headers["content-disposition"]
    assert exported.text.splitlines()[1].startswith("Chemistry,Organic,Alkanes,Which is an alkane?")

    broken = {"file": ("bank.csv", QUESTIONS_CSV.replace(",2\n", ",5\n").encode(), "text/csv")}
    refused = web.post("/admin/catalogue/questions/import", files=broken)
    assert refused.status_code == 422 and 'id="import-problems"' in refused.text
    assert "line 2, column right: &#39;5&#39; is not the number of an answer" in refused.text
    latin = {"file": ("bank.csv", "subject\nCaf\xe9\n".encode("latin-1"), "text/csv")}
    assert (
        "save the file as UTF-8" in web.post("/admin/catalogue/questions/import", files=latin).text
    )
    nothing = web.post("/admin/catalogue/questions/import", {})
    assert nothing.status_code == 422 and "Choose a CSV file to import." in nothing.text
    with context.sessions() as session:
        assert len(quiz.list_questions(session)) == 2  # the refusals added nothing
