"""Helpers for the web page tests: a client that fills in the CSRF token like a browser does,
and a small catalogue with a question bank."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from smartstudy.services import accounts, catalogue, quiz
from smartstudy.services.context import AppContext
from smartstudy.store.db import session_scope

PASSWORD = "correct horse 1"
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(html: str) -> str:
    found = _TOKEN.search(html)
    assert found, "no CSRF token on the page"
    return found.group(1)


class Web:
    """A TestClient used like a browser: it keeps the cookie and posts each form with the
    CSRF token of the page it last loaded."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.token: str | None = None

    def get(self, path: str, **kwargs) -> Response:
        r = self.client.get(path, **kwargs)
        found = (
            _TOKEN.search(r.text)
            if r.headers.get("content-type", "").startswith("text/html")
            else None
        )
        if found:
            self.token = found.group(1)
        return r

    def post(
        self, path: str, data: dict | None = None, *, token: str | None = None, **kwargs
    ) -> Response:
        if self.token is None:
            self.get("/login")
        body = {"csrf_token": self.token if token is None else token, **(data or {})}
        kwargs.setdefault("follow_redirects", False)
        r = self.client.post(path, data=body, **kwargs)
        found = (
            _TOKEN.search(r.text)
            if r.headers.get("content-type", "").startswith("text/html")
            else None
        )
        if found:
            self.token = found.group(1)
        return r

    def signup(self, email: str, password: str = PASSWORD, name: str = "") -> Response:
        self.logout_locally()
        self.get("/signup")
        r = self.post(
            "/signup",
            {
                "email": email,
                "display_name": name,
                "password": password,
                "password_confirm": password,
            },
        )
        assert r.status_code == 303, r.text
        self.token = None
        return r

    def login(self, email: str, password: str = PASSWORD) -> Response:
        self.logout_locally()
        self.get("/login")
        r = self.post("/login", {"email": email, "password": password})
        assert r.status_code == 303, r.text
        self.token = None
        return r

    def logout_locally(self) -> None:
        """Forget the session cookie (as a fresh browser would)."""
        self.client.cookies.clear()
        self.token = None

    def form_token(self, path: str) -> str:
        self.get(path)
        assert self.token
        return self.token


@pytest.fixture
def web(client: TestClient) -> Web:
    return Web(client)


@dataclass
class Catalogue:
    subject_id: uuid.UUID
    topic_id: uuid.UUID
    other_topic_id: uuid.UUID
    concept_ids: list[uuid.UUID]


@pytest.fixture
def maths(context: AppContext) -> Catalogue:
    """Mathematics: Calculus (two concepts, three questions each) and Algebra."""
    with session_scope(context.sessions) as session:
        topic = catalogue.ensure_topic(session, "Mathematics", "Calculus")
        other = catalogue.ensure_topic(session, "Mathematics", "Algebra")
        ids = []
        for name in ("Limits", "Derivatives"):
            concept = catalogue.create_concept(session, topic.id, name)
            ids.append(concept.id)
            for i in range(3):
                quiz.create_question(
                    session, concept.id, f"{name} question {i}", ["a", "b", "c"], 1
                )
        return Catalogue(topic.subject_id, topic.id, other.id, ids)


def make_admin(context: AppContext, email: str = "admin@example.com") -> None:
    with session_scope(context.sessions) as session:
        accounts.create_user(session, email, PASSWORD, "Admin", role="admin")


def create_task(web: Web, topic_id: uuid.UUID, difficulty: str = "medium", **extra) -> str:
    """The "Predict" step; the new task's id."""
    web.get("/study")
    r = web.post("/study", {"topic": str(topic_id), "difficulty": difficulty, **extra})
    assert r.status_code == 303, r.text
    found = re.search(r"/study/tasks/([0-9a-f-]+)", r.headers["location"])
    assert found
    return found.group(1)


def complete_task(
    web: Web, task_id: str, correct: bool = True, minutes: str = "2", seconds: str = "30"
) -> Response:
    web.get(f"/study/tasks/{task_id}")
    return web.post(
        f"/study/tasks/{task_id}/complete",
        {"minutes": minutes, "seconds": seconds, "result": "correct" if correct else "wrong"},
    )


def take_quiz(web: Web, topic_id: uuid.UUID, answer: str = "1") -> str:
    """Start a quiz on a topic, answer every question with ``answer``, submit; the quiz id."""
    web.get("/subjects")
    r = web.post("/quiz", {"topic": str(topic_id), "n_questions": "4"})
    assert r.status_code == 303, r.text
    quiz_id = r.headers["location"].rsplit("/", 1)[1]
    page = web.get(f"/quiz/{quiz_id}")
    names = set(re.findall(r'name="(q-[0-9a-f-]+)"', page.text))
    assert names
    r = web.post(f"/quiz/{quiz_id}", {n: answer for n in names})
    assert r.status_code == 303, r.text
    return quiz_id
