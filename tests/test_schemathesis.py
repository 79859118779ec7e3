"""Schemathesis over the app's whole OpenAPI document, in process, as a student and as an admin.

Every operation gets a few derandomized examples, valid and invalid, some with the ids of
real objects in the path. Each answer must not be a server error, and its status, content
type and body must be the ones the document lists for that operation. All distinct failures
of a run are collected and reported together.
"""

from __future__ import annotations

import os
import re

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import APIOperation, Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.errors import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.types import ASGIApp, Receive, Scope, Send

from smartstudy.api.openapi import EXTRA_ERRORS

CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
]
# Few examples per operation and no shrinking keep the whole file near a minute on two cores;
# SMARTSTUDY_SCHEMATHESIS_EXAMPLES=100 makes a deeper run.
EXAMPLES = settings(
    max_examples=int(os.environ.get("SMARTSTUDY_SCHEMATHESIS_EXAMPLES", "6")),
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
_PATH_PARAM = re.compile(r"{(\w+)}")


def _without_lifespan(app: ASGIApp) -> ASGIApp:
    """``app`` for Schemathesis' ASGI client, which would otherwise start the app a second
    time: the ``client`` fixture already runs its start-up and shut-down."""

    async def serve(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await app(scope, receive, send)

    return serve


def _seed(client: TestClient, admin: dict, student: dict) -> dict[str, str]:
    """A subject, topic, concept, question, task and quiz; their ids by path parameter name."""

    def post(path: str, body: dict, headers: dict) -> dict:
        r = client.post(path, json=body, headers=headers)
        assert r.status_code == 201, (path, r.text)
        return r.json()

    subject = post("/v1/subjects", {"name": "Physics"}, admin)
    topic = post("/v1/topics", {"subject_id": subject["id"], "name": "Optics"}, admin)
    concept = post("/v1/concepts", {"topic_id": topic["id"], "name": "Refraction"}, admin)
    question = {"concept_id": concept["id"], "prompt": "n of water?", "correct_option": 0}
    post("/v1/questions", question | {"options": ["1.33", "2.4"]}, admin)
    task = post("/v1/tasks", {"topic_id": topic["id"], "difficulty": "easy"}, student)
    quiz = post("/v1/sessions", {"topic_id": topic["id"], "n_questions": 1}, student)
    me = client.get("/v1/auth/me", headers=student).json()
    return {
        "subject_id": subject["id"],
        "topic_id": topic["id"],
        "concept_id": concept["id"],
        "task_id": task["id"],
        "session_id": quiz["id"],
        "user_id": me["id"],
    }


def _fuzz(
    operation: APIOperation, headers: dict, ids: dict[str, str], found: dict[str, str]
) -> None:
    """Run the examples of one operation; add each distinct failure to ``found``."""
    strategies = [operation.as_strategy(generation_mode=mode) for mode in GenerationMode]
    known = {n: ids[n] for n in _PATH_PARAM.findall(operation.path) if n in ids}
    if known:
        strategies.append(operation.as_strategy(path_parameters=known))

    @EXAMPLES
    @given(case=st.one_of(strategies))
    def run(case: Case) -> None:
        curl = case.as_curl_command(headers=headers)
        try:
            response = case.call(headers=headers)
        except Exception as exc:  # the app raised past its error handlers: a 500
            found.setdefault(f"{operation.label}: {type(exc).__name__}", f"{curl}\n{exc}")
            return
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except FailureGroup as group:
            for failure in group.exceptions:
                key = f"{operation.label} -> {response.status_code}: {failure.title}"
                found.setdefault(key, f"{curl}\n{failure.message}\n{response.text[:300]}")

    run()


def _report(found: dict[str, str]) -> str:
    return f"{len(found)} distinct failures:\n\n" + "\n\n".join(
        f"* {key}\n{details}" for key, details in sorted(found.items())
    )


@pytest.mark.parametrize("role", ["student", "admin"])
def test_every_operation_answers_as_its_document_says(
    client: TestClient, student: dict, admin: dict, role: str
) -> None:
    ids = _seed(client, admin, student)
    schema = schemathesis.openapi.from_asgi("/openapi.json", _without_lifespan(client.app))
    headers = {"student": student, "admin": admin}[role]
    found: dict[str, str] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 30
    for operation in operations:
        _fuzz(operation, headers, ids, found)
    assert not found, _report(found)


def _statuses(document: dict, method: str, path: str) -> set[str]:
    return set(document["paths"][path][method]["responses"])


def test_the_document_lists_each_routes_error_answers(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    assert _statuses(document, "get", "/healthz") == {"200"}
    assert {"400", "401", "422", "429", "503"} <= _statuses(document, "post", "/v1/auth/login")
    # Any signed-in user may read the catalogue; only admins change it.
    assert _statuses(document, "get", "/v1/subjects") == {"200", "401", "503"}
    assert {"401", "403", "409", "422"} <= _statuses(document, "post", "/v1/subjects")
    assert {"404", "409"} <= _statuses(document, "post", "/v1/tasks/{task_id}/complete")
    assert "409" not in _statuses(document, "get", "/v1/tasks/{task_id}")
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas  # FastAPI's 422 body, not what the app sends
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, answer in operation["responses"].items():
                if int(status) < 400:
                    continue
                ref = answer["content"]["application/json"]["schema"]["$ref"]
                name = "ValidationErrorOut" if status == "422" else "ErrorOut"
                assert ref == f"#/components/schemas/{name}", (method, path, status)
    assert schemas["ErrorOut"]["required"] == ["detail"]
    assert schemas["ValidationErrorOut"]["required"] == ["detail", "message"]


def test_every_extra_status_names_a_real_operation(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    operations = {(m.upper(), p) for p, ops in document["paths"].items() for m in ops}
    assert set(EXTRA_ERRORS) <= operations, set(EXTRA_ERRORS) - operations
