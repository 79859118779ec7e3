"""Long unbroken text does not widen the page (issue "Hardening", defect 14).

A description of 2,000 characters without a space, and subject, topic, concept and display
names of 120, once stretched pages to 4,500-16,800 px. Every page that shows them must fit
the window, at desktop width and at phone width.
"""

from __future__ import annotations

import re

import httpx
import pytest

from smartstudy.services import rules
from tests.browser.test_browser import shot

pytestmark = pytest.mark.slow

WIDTHS = (1280, 390)


def _name(prefix: str) -> str:
    return prefix + "x" * (rules.MAX_NAME - len(prefix))


def _long_catalogue(server) -> dict[str, str]:
    """A subject, topic and concept with the longest unbroken names, and three questions
    with long unbroken prompts and options, made by the demo admin through the API."""
    with httpx.Client(base_url=server.base_url, timeout=30) as api:
        r = api.post(
            "/v1/auth/login",
            json={
                "email": server.admin_email,
                "password": server.accounts[server.admin_email],
            },
        )
        assert r.status_code == 200, r.text
        admin = {"Authorization": f"Bearer {r.json()['access_token']}"}

        def post(path: str, body: dict) -> dict:
            r = api.post(path, json=body, headers=admin)
            assert r.status_code == 201, r.text
            return r.json()

        subject = post("/v1/subjects", {"name": _name("Longsubject")})
        topic = post("/v1/topics", {"subject_id": subject["id"], "name": _name("Longtopic")})
        concept = post("/v1/concepts", {"topic_id": topic["id"], "name": _name("Longconcept")})
        for i in range(3):
            options = [f"{i}{j}" + "o" * rules.MAX_OPTION for j in range(3)]
            options = [o[: rules.MAX_OPTION] for o in options]
            post(
                "/v1/questions",
                {
                    "concept_id": concept["id"],
                    "prompt": f"{i}" + "p" * 600,
                    "options": options,
                    "correct_option": 1,
                },
            )
    return {"subject": subject["name"], "topic": topic["name"], "concept": concept["id"]}


def _assert_fits(page, path: str, folder, name: str) -> None:
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(path)
        page.wait_for_load_state("load")
        scroll, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        shot(page, folder, f"long-{name}-{width}")
        assert scroll <= inner, f"{path} is {scroll} px wide in a {inner} px window"


def test_long_unbroken_text_fits_the_window(new_page, server, screenshots):
    catalogue = _long_catalogue(server)
    page, _watch = new_page()
    page.goto("/signup")
    page.fill("#f-display_name", _name("Longdisplayname"))
    page.fill("#f-email", "longtext@example.com")
    page.fill("#f-password", "long text password")
    page.fill("#f-password_confirm", "long text password")
    page.click("main button[type=submit]")
    page.wait_for_url(re.compile(r"/study"))

    description = "w" * rules.MAX_DESCRIPTION
    page.select_option("#f-subject", label=catalogue["subject"])
    page.select_option("#f-topic", label=catalogue["topic"])
    page.click("label[for=f-difficulty-hard]")
    page.fill("#f-description", description)
    page.click("#predict")
    page.wait_for_url(re.compile(r"/study/tasks/[0-9a-f-]+$"))
    done = page.url
    assert page.inner_text("main .page-head p.muted") == description  # stored whole
    page.fill("#f-minutes", "3")
    page.fill("#f-seconds", "0")
    page.click("#mark-correct")
    page.wait_for_selector("#result")
    page.click("#again")  # a second task on the same topic, left open
    page.wait_for_url(re.compile(r"/study/tasks/[0-9a-f-]+$"))
    still_open = page.url

    page.goto("/subjects")
    page.click("button[data-quiz-topic^='Longtopic']")
    page.wait_for_url(re.compile(r"/quiz/[0-9a-f-]+(\?asked=\d+)?$"))
    quiz = page.url
    _assert_fits(page, quiz, screenshots, "quiz-open")
    questions = page.locator("#quiz-form .question")
    for i in range(questions.count()):
        questions.nth(i).locator("input[type=radio]").first.check()
    page.click("#quiz-submit")
    page.wait_for_selector("#mastery-changes")

    pages = {
        "result": done,
        "open-task": still_open,
        "study": "/study",
        "tasks": "/tasks",
        "dashboard": "/dashboard",
        "subjects": "/subjects",
        "concept": f"/concepts/{catalogue['concept']}",
        "quiz-result": quiz,
        "analytics": "/analytics",
        "settings": "/settings",
    }
    for name, path in pages.items():
        _assert_fits(page, path, screenshots, name)
