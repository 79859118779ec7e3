"""/admin/person-fit: the admin page that lists unusual response patterns (issue 15)."""

from __future__ import annotations

from smartstudy.store.db import session_scope
from tests.test_person_fit_api import RAPID, lnirt_context  # noqa: F401 (a fixture)
from tests.web.conftest import PASSWORD, make_admin


def test_the_admin_page_lists_the_rapid_guesser(web, lnirt_context):  # noqa: F811
    make_admin(lnirt_context, "boss@example.com")
    web.login("boss@example.com", PASSWORD)
    before = web.get("/admin/person-fit")
    assert before.status_code == 200
    assert 'id="fit-message"' in before.text and "no active LNIRT" in before.text
    assert 'href="/admin/person-fit"' in web.get("/admin/models").text

    with session_scope(lnirt_context.sessions) as session:
        lnirt_context.predictor.train(session, "lnirt")
    page = web.get("/admin/person-fit")
    assert page.status_code == 200
    assert "LNIRT version 1 scored 31 students" in page.text
    body = page.text[page.text.index('id="fit-table"') :]
    body = body[body.index("<tbody>") :]
    first_row = body[: body.index("</tr>")]
    assert RAPID in first_row and "rapid" in first_row and "faster" in first_row
    # An unknown level falls back to 5%; a stricter one flags no more students.
    assert "p &lt; 0.05" in web.get("/admin/person-fit?level=0.3").text
    strict = web.get("/admin/person-fit?level=0.001").text
    assert strict.count("<tr>") <= page.text.count("<tr>")


def test_a_student_cannot_see_it(web, lnirt_context):  # noqa: F811
    web.signup("curious@example.com")
    assert web.get("/admin/person-fit", follow_redirects=False).status_code == 403
