"""A web page's errors are pages of the site; the API's stay JSON (issue 16)."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_an_address_with_no_page_answers_the_sites_404_page(client: TestClient):
    r = client.get("/no-such-page")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("text/html")
    assert "Page not found" in r.text and "There is no page at this address" in r.text
    assert '<link rel="stylesheet"' in r.text  # the styled layout, not a bare message
    assert r.text.lstrip().lower().startswith("<!doctype html>")


def test_the_api_keeps_json_errors(client: TestClient):
    for path in ("/v1/no-such-thing", "/healthz/nope"):
        r = client.get(path)
        assert r.status_code == 404
        assert r.headers["content-type"] == "application/json"
        assert r.json() == {"detail": "Not Found"}


def test_a_method_a_page_does_not_take_is_a_page_too(client: TestClient):
    r = client.delete("/login")
    assert r.status_code == 405
    assert r.headers["content-type"].startswith("text/html")
    assert "Not possible here" in r.text
    assert "GET" in r.headers["allow"]


def test_a_bug_is_a_500_page_on_the_web_and_json_in_the_api(failing_client: TestClient):
    page = failing_client.get("/boom")
    assert page.status_code == 500
    assert page.headers["content-type"].startswith("text/html")
    assert "Something went wrong on our side" in page.text
    assert "a bug" not in page.text  # no internals on the page
    api = failing_client.get("/v1/boom")
    assert api.status_code == 500
    assert api.json() == {"detail": "Internal server error"}


def test_a_404_keeps_the_student_signed_in(web):
    """The error page runs no page dependency; it must still keep the browser's session
    (it once answered with a new anonymous cookie, which logged the student out)."""
    web.signup("lost@example.com")
    assert web.get("/dashboard", follow_redirects=False).status_code == 200
    missing = web.get("/no-such-page")
    assert missing.status_code == 404
    assert "set-cookie" not in missing.headers
    assert web.get("/dashboard", follow_redirects=False).status_code == 200


def test_a_signed_in_students_error_page_keeps_their_navigation(web):
    """No page ran, but nothing failed either: the 404 and 405 pages show the signed-in
    student's menu, not "Log in / Sign up" as if they had been logged out."""
    anonymous = web.get("/no-such-page")
    assert "Sign up" in anonymous.text and "Log out" not in anonymous.text
    web.signup("wanderer@example.com", name="Wanda")
    for r, status in ((web.get("/no-such-page"), 404), (web.client.put("/dashboard"), 405)):
        assert r.status_code == status
        assert "Log out" in r.text and "Wanda" in r.text and 'href="/study"' in r.text
        assert "Sign up" not in r.text


def test_an_error_page_whose_user_cannot_be_looked_up_is_the_anonymous_one(web, monkeypatch):
    from smartstudy.api import errors

    def broken(*args, **kwargs):
        raise RuntimeError("the database went away")

    web.signup("unlucky@example.com")
    monkeypatch.setattr(errors, "optional_user", broken)
    r = web.get("/no-such-page")
    assert r.status_code == 404
    assert "Page not found" in r.text and "Sign up" in r.text and "Log out" not in r.text


def test_every_form_address_opened_as_a_page_leads_to_the_page_of_its_form(client: TestClient):
    """A page's form posts to its own address (``/settings/password``, …); when the form is
    refused, the browser shows that address, and opening it again is a GET. Every such address
    leads to the page of its form, so no page address of the site answers 405."""
    from fastapi.routing import APIRoute

    from smartstudy.web.routes import FORM_PAGES

    methods: dict[str, set[str]] = {}
    for route in client.app.routes:
        if isinstance(route, APIRoute) and not route.path.startswith("/v1"):
            methods.setdefault(route.path, set()).update(route.methods)
    assert not [path for path, m in methods.items() if "POST" in m and "GET" not in m]
    ids = {"task_id": "a b", "exam_id": "e-1", "version_id": "v1", "user_id": "u1"}
    ids |= {"subject_id": "s1", "topic_id": "t1", "concept_id": "c1", "question_id": "q1"}
    for form, page in FORM_PAGES.items():
        r = client.get(form.format(**ids), follow_redirects=False)
        assert r.status_code == 303, form
        assert r.headers["location"] == page.format(**{**ids, "task_id": "a%20b"}), form
