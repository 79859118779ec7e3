"""Input hardening: non-finite and loosely typed numbers, huge offsets, control characters,
one limit per kind of text, names that differ only in case. Each reproduction of the
"Hardening" issue (defects 2, 3, 4 and 13) is a test here, on SQLite and PostgreSQL."""

from __future__ import annotations

import http.client
import io
import json
import threading
import time
import typing
import uuid
from collections.abc import Iterator

import pytest
import uvicorn
from pydantic import BaseModel
from pydantic.types import Strict as StrictMarker
from sqlalchemy import func, select
from typer.testing import CliRunner

from smartstudy import cli
from smartstudy.api import schemas
from smartstudy.api.app import create_app
from smartstudy.services import catalogue, rules, tasks
from smartstudy.services.accounts import create_user
from smartstudy.services.errors import InvalidInputError
from smartstudy.services.importing import ImportErrors, import_tasks_csv
from smartstudy.store.db import UnitOfWork, session_scope
from smartstudy.store.orm import PracticeTask, Subject, Topic, User
from tests.demo_server import free_port
from tests.web.conftest import Web, create_task

JSON = {"content-type": "application/json"}
NON_FINITE = ["NaN", "Infinity", "-Infinity", "1e309"]


@pytest.fixture
def web(client) -> Web:
    return Web(client)


def _task(client, headers, topic, **extra) -> dict:
    r = client.post(
        "/v1/tasks",
        json={"topic_id": topic["id"], "difficulty": "medium", **extra},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    return r.json()


def _refused(r, field: str) -> dict:
    """A 422 whose message and detail name ``field``; the parsed body."""
    assert r.status_code == 422, r.text
    body = r.json()
    assert any(e["loc"][-1] == field for e in body["detail"]), body
    assert f"{field}:" in body["message"], body["message"]
    return body


# --- defect 2: non-finite numbers and loose types -------------------------------------------


def test_non_finite_or_unencodable_login_input_is_a_json_422(client):
    cases = [(f'{{"email":"a@example.com","password":{n}}}', "password") for n in NON_FINITE]
    cases += [
        # An unpaired surrogate cannot be encoded as UTF-8, in the input nor in its name.
        ('{"email":"a@example.com","password":"\\ud800"}', "password"),
        ('{"email":"a@example.com","password":"p","\\udc00":1}', "body"),
    ]
    for raw, field in cases:
        r = client.post("/v1/auth/login", content=raw, headers=JSON)
        assert r.status_code == 422, (raw, r.text)
        assert r.json()["message"].startswith(f"{field}: "), raw
        # A NaN is not echoed; an unpaired surrogate comes back as "?".
        assert [e.get("input") for e in r.json()["detail"]] in ([None], ["?"]), r.text
    assert client.get("/healthz").status_code == 200


def test_complete_takes_finite_json_numbers_and_booleans_only(client, student, topic):
    task = _task(client, student, topic)
    url = f"/v1/tasks/{task['id']}/complete"
    for number in NON_FINITE:
        raw = f'{{"is_correct":true,"actual_time_seconds":{number}}}'
        _refused(client.post(url, content=raw, headers=JSON | student), "actual_time_seconds")
    for body, field in [
        ({"is_correct": True, "actual_time_seconds": True}, "actual_time_seconds"),
        ({"is_correct": True, "actual_time_seconds": "30"}, "actual_time_seconds"),
        ({"is_correct": "true", "actual_time_seconds": 30}, "is_correct"),
        ({"is_correct": 1, "actual_time_seconds": 30}, "is_correct"),
    ]:
        _refused(client.post(url, json=body, headers=student), field)
    assert client.get(f"/v1/tasks/{task['id']}", headers=student).json()["status"] == "created"
    ok = client.post(url, json={"is_correct": False, "actual_time_seconds": 30}, headers=student)
    assert ok.status_code == 200, ok.text
    assert ok.json()["actual_time_seconds"] == 30.0


def _lax_scalars(model: type[BaseModel]) -> list[str]:
    """Fields of ``model`` typed int, float or bool (maybe optional) without strict mode."""
    lax = []
    for name, info in model.model_fields.items():
        kinds = typing.get_args(info.annotation) or (info.annotation,)
        strict = any(isinstance(m, StrictMarker) and m.strict for m in info.metadata)
        if any(k in (int, float, bool) for k in kinds) and not strict:
            lax.append(name)
    return lax


def test_every_request_schema_is_strict_about_numbers_and_text():
    bodies = [
        m
        for m in vars(schemas).values()
        if isinstance(m, type) and issubclass(m, schemas.Strict) and m is not schemas.Strict
    ]
    assert len(bodies) >= 10
    for model in bodies:
        assert _lax_scalars(model) == [], model.__name__
        for name, info in model.model_fields.items():
            if str in (typing.get_args(info.annotation) or (info.annotation,)):
                limits = [getattr(m, "max_length", None) for m in info.metadata]
                assert any(limits), f"{model.__name__}.{name} has no length limit"


@pytest.mark.parametrize(
    "value",
    [float("nan"), float("inf"), 10**400, {"a": 1}, "\ud800" + "x" * 5000, b"\x00", None],
)
def test_validation_error_out_is_always_json(value):
    out = schemas.validation_error_out(
        {"loc": ("body", "\udc00", 3), "msg": "bad \ud800", "type": "x", "input": value}
    )
    text = json.dumps(out, allow_nan=False, ensure_ascii=False)
    text.encode("utf-8")
    assert len(text) < 1000
    assert out["loc"] == ["body", "?", 3]


@pytest.fixture
def live_server(context) -> Iterator[tuple[str, int]]:
    """The app on a real socket (uvicorn in a thread): keep-alive is visible there only."""
    port = free_port()
    config = uvicorn.Config(
        create_app(context=context), host="127.0.0.1", port=port, lifespan="off", log_level="error"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield "127.0.0.1", port
    server.should_exit = True
    thread.join(timeout=10)


def test_nan_login_keeps_the_connection_alive(live_server):
    conn = http.client.HTTPConnection(*live_server, timeout=10)
    try:
        conn.request("POST", "/v1/auth/login", '{"email":"a@example.com","password":NaN}', JSON)
        r = conn.getresponse()
        body = json.loads(r.read())
        assert r.status == 422 and "password" in body["message"]
        assert not r.will_close, "the server closed the connection after the answer"
        sock = conn.sock
        conn.request("GET", "/healthz")
        r = conn.getresponse()
        r.read()
        assert r.status == 200
        assert conn.sock is sock, "the second request needed a new connection"
    finally:
        conn.close()


# --- defect 3: offsets and page sizes -------------------------------------------------------


def test_out_of_range_pagination_is_a_422(client, student, topic):
    for query, field in [
        ("offset=9223372036854775808", "offset"),
        (f"offset={rules.MAX_OFFSET + 1}", "offset"),
        ("offset=-1", "offset"),
        (f"limit={rules.MAX_PAGE_SIZE + 1}", "limit"),
        ("limit=0", "limit"),
    ]:
        _refused(client.get(f"/v1/tasks?{query}", headers=student), field)
    _task(client, student, topic)
    r = client.get(f"/v1/tasks?offset={rules.MAX_OFFSET}", headers=student)
    assert r.status_code == 200, r.text
    assert r.json()["items"] == [] and r.json()["total"] == 1


def test_service_refuses_out_of_range_pagination(context):
    with session_scope(context.sessions) as session:
        user = create_user(session, "pager@example.com", "password 123", "P")
        with pytest.raises(InvalidInputError, match="offset"):
            tasks.list_tasks(session, user, offset=2**63)
        with pytest.raises(InvalidInputError, match="limit"):
            tasks.list_tasks(session, user, limit=10**6)


def test_task_history_page_clamps_out_of_range_numbers(web: Web, topic):
    web.signup("pages@example.com")
    create_task(web, topic["id"])
    for query in ["page=9223372036854775808", "page=" + "9" * 5000, "page=-3", "per_page=10000000"]:
        r = web.get(f"/tasks?{query}")
        assert r.status_code == 200, (query, r.text[:300])
        assert "1 task." in r.text and "Showing 1–1." in r.text


# --- defect 4: NUL and other control characters ---------------------------------------------


def test_control_characters_in_api_text_are_a_422(client, admin, student, topic):
    for bad in ["\x00", "\x07", "\x1b[31m"]:
        r = client.post(
            "/v1/auth/register",
            json={"email": "c@example.com", "password": "password 123", "display_name": bad},
        )
        _refused(r, "display_name")
        r = client.post(
            "/v1/tasks",
            json={"topic_id": topic["id"], "difficulty": "easy", "description": f"x{bad}y"},
            headers=student,
        )
        _refused(r, "description")
        r = client.post("/v1/concepts", json={"topic_id": topic["id"], "name": bad}, headers=admin)
        _refused(r, "name")
        _refused(client.post("/v1/subjects", json={"name": f"Art{bad}"}, headers=admin), "name")
        r = client.patch(f"/v1/topics/{topic['id']}", json={"name": f"C{bad}"}, headers=admin)
        _refused(r, "name")
    _refused(client.post("/v1/subjects", json={"name": "Two\nlines"}, headers=admin), "name")
    # A description is multi-line text: tabs and line breaks stay.
    task = _task(client, student, topic, description="Step 1\n\tStep 2")
    assert task["description"] == "Step 1\n\tStep 2"


def test_services_refuse_control_characters(context):
    with session_scope(context.sessions) as session:
        topic = catalogue.ensure_topic(session, "Physics", "Waves")
        with pytest.raises(InvalidInputError, match="NUL") as info:
            catalogue.create_concept(session, topic.id, "Wave\x00length")
        assert info.value.field == "name"
        with pytest.raises(InvalidInputError, match="NUL"):
            catalogue.ensure_topic(session, "Phys\x00ics", "Optics")
        user = create_user(session, "svc@example.com", "password 123", "S")
        with pytest.raises(InvalidInputError) as info:
            tasks.create_task(session, None, user, topic.id, "easy", "a\x00b")  # type: ignore[arg-type]
        assert info.value.field == "description"


# --- defect 13: one limit per kind of text; names equal ignoring case -------------------


def test_description_limit_is_the_same_in_api_and_web(client, student, topic, web, context):
    longest = "d" * rules.MAX_DESCRIPTION
    assert _task(client, student, topic, description=longest)["description"] == longest
    r = client.post(
        "/v1/tasks",
        json={"topic_id": topic["id"], "difficulty": "easy", "description": longest + "d"},
        headers=student,
    )
    _refused(r, "description")

    web.signup("limits@example.com")
    web.get("/study")
    r = web.post(
        "/study",
        {"topic": topic["id"], "difficulty": "easy", "description": longest + "d"},
    )
    assert r.status_code == 422
    assert f"must be at most {rules.MAX_DESCRIPTION:,} characters" in r.text
    assert f'value="{longest}d"' in r.text  # what was typed is kept, not cut
    r = web.post("/study", {"topic": topic["id"], "difficulty": "easy", "description": "a\x00b"})
    assert r.status_code == 422, r.text[:300]
    assert "The description contains a NUL character (U+0000) at character 2" in r.text
    r = web.post("/study", {"topic": topic["id"], "difficulty": "easy", "description": longest})
    assert r.status_code == 303, r.text[:300]
    task_id = r.headers["location"].rsplit("/", 1)[1]
    with context.sessions() as session:
        stored = session.get(PracticeTask, uuid.UUID(task_id)).description
    assert stored == longest  # once cut to 500 characters without a word


def test_names_that_differ_only_in_case_conflict(client, admin, topic):
    r = client.post("/v1/subjects", json={"name": "mathematics"}, headers=admin)
    assert r.status_code == 409, r.text
    subject_id = topic["subject_id"]
    r = client.post(
        "/v1/topics", json={"subject_id": subject_id, "name": "CALCULUS"}, headers=admin
    )
    assert r.status_code == 409, r.text
    r = client.post("/v1/concepts", json={"topic_id": topic["id"], "name": "Limits"}, headers=admin)
    assert r.status_code == 201, r.text
    r = client.post("/v1/concepts", json={"topic_id": topic["id"], "name": "limits"}, headers=admin)
    assert r.status_code == 409, r.text
    # Renaming a subject to a new spelling of its own name is fine.
    r = client.patch(f"/v1/subjects/{subject_id}", json={"name": "MATHEMATICS"}, headers=admin)
    assert r.status_code == 200 and r.json()["name"] == "MATHEMATICS"


HEADER = "email,subject,topic,difficulty,correct,rt_seconds,description\n"


@pytest.fixture
def ada(context) -> None:
    with session_scope(context.sessions) as session:
        create_user(session, "ada@example.com", "password 123", "Ada")
        catalogue.ensure_topic(session, "Mathematics", "Calculus")


def _import(context, text: str):
    with session_scope(context.sessions) as session:
        return import_tasks_csv(context, UnitOfWork(session), io.StringIO(text))


def _import_problems(context, text: str) -> list[str]:
    session = context.sessions()
    try:
        with pytest.raises(ImportErrors) as info:
            import_tasks_csv(context, UnitOfWork(session), io.StringIO(text))
    finally:
        session.rollback()
        session.close()
    return info.value.problems


def test_import_matches_names_ignoring_case(context, ada):
    result = _import(
        context,
        HEADER
        + "ada@example.com,mathematics,CALCULUS,easy,1,60,\n"
        + "ada@example.com,Physics,Waves,easy,1,60,\n"
        + "ada@example.com,PHYSICS,waves,hard,0,90,\n",
    )
    assert (result.rows, result.subjects_created, result.topics_created) == (3, 1, 1)
    with context.sessions() as session:
        assert sorted(session.scalars(select(Subject.name))) == ["Mathematics", "Physics"]
        assert session.scalar(select(func.count()).select_from(Topic)) == 2


def test_import_checks_text_like_the_api(context, ada):
    for cell, column, needle in [
        ("x" * (rules.MAX_DESCRIPTION + 1), "description", "at most 2,000 characters"),
        ("a\x00b", "description", "NUL character (U+0000) at character 2"),
        ("a\x07b", "description", "control character (U+0007)"),
        ("y" * (rules.MAX_NAME + 1), "topic", "at most 120 characters"),
    ]:
        cells = {"topic": "Calc", "description": ""} | {column: cell}
        line = f'ada@example.com,Maths,"{cells["topic"]}",easy,1,60,"{cells["description"]}"\n'
        problems = _import_problems(context, HEADER + line)
        assert len(problems) == 1 and problems[0].startswith(f"line 2, column {column}: ")
        assert needle in problems[0]
    for column in ("subject", "topic"):
        cells = {"subject": "Maths", "topic": "Calc"} | {column: "Ma\x00ths"}
        line = f"ada@example.com,{cells['subject']},{cells['topic']},easy,1,60,\n"
        assert _import_problems(context, HEADER + line) == [
            f"line 2, column {column}: contains a NUL character (U+0000) at character 3, "
            "which is not allowed here"
        ]
    with context.sessions() as session:
        assert session.scalar(select(func.count()).select_from(PracticeTask)) == 0


def test_import_cell_over_the_csv_limit_is_a_message_not_a_traceback(context, ada):
    huge = "y" * 131_073
    text = (
        HEADER
        + "ada@example.com,Maths,Calc,easy,1,60,ok\n"
        + f"ada@example.com,M,C,easy,1,60,{huge}\n"
    )
    problems = _import_problems(context, text)
    assert len(problems) == 1 and problems[0].startswith("line 3: a cell is too long")
    assert f"{rules.MAX_DESCRIPTION:,} characters" in problems[0]


def test_cli_import_of_a_huge_cell_is_one_line_not_a_traceback(tmp_path, monkeypatch):
    monkeypatch.setenv("SMARTSTUDY_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("SMARTSTUDY_DATABASE_URL", raising=False)
    runner = CliRunner()
    made = runner.invoke(
        cli.app, ["users", "create-admin", "--email", "ada@example.com", "--password", "p" * 9]
    )
    assert made.exit_code == 0, made.output
    path = tmp_path / "huge.csv"
    path.write_text(HEADER + "ada@example.com,Maths,Calc,easy,1,60," + "z" * 131_073 + "\n")
    result = runner.invoke(cli.app, ["import", str(path)])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "line 2: a cell is too long" in result.output
    assert "nothing was written" in result.output


def test_import_file_that_is_not_utf8_is_a_message(context, ada, tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes((HEADER + "ada@example.com,Maths,Caf\xe9,easy,1,60,\n").encode("latin-1"))
    session = context.sessions()
    try:
        with pytest.raises(ImportErrors, match="line 2: byte 0xe9 is not UTF-8"):
            import_tasks_csv(context, UnitOfWork(session), path)
    finally:
        session.close()


def test_limits_match_the_database_columns():
    columns = {
        rules.MAX_NAME: [Subject.__table__.c.name, Topic.__table__.c.name],
        rules.MAX_DISPLAY_NAME: [User.__table__.c.display_name],
        rules.MAX_EMAIL: [User.__table__.c.email],
    }
    for limit, cols in columns.items():
        assert all(c.type.length == limit for c in cols), cols
