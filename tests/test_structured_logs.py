"""Structured logs: JSON lines with request ids, and the access log of the API middleware."""

from __future__ import annotations

import io
import json
import logging
import uuid

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from smartstudy.api.app import create_app
from smartstudy.config import Settings
from smartstudy.models.baseline import Baseline
from smartstudy.observability import logs
from smartstudy.services.predictor import PredictionService


class Exploding(Baseline):
    """Trains fine, then fails to predict (its failure is logged inside the request)."""

    def _predict_validated(self, data):
        raise RuntimeError("boom")


@pytest.fixture
def captured():
    """Yield a function that configures logging onto a StringIO and returns its lines;
    the root logger's handlers and level come back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    stream = io.StringIO()

    def configure(log_format: str) -> io.StringIO:
        logs.configure_logging(log_format, "INFO", stream=stream)
        return stream

    yield configure
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def _json_lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_json_lines_carry_the_request_and_its_access_log(context, student, topic, captured):
    context.predictor = PredictionService(
        chain=("exploding", "baseline"),
        factories={"exploding": Exploding, "baseline": Baseline},
        fixed_order=True,  # "exploding" is asked first, though nothing is held out
    )
    stream = captured("json")
    with TestClient(create_app(context=context)) as client:
        r = client.post(
            "/v1/tasks/preview",
            json={"topic_id": topic["id"], "difficulty": "easy"},
            headers={**student, "X-Request-ID": "req-42"},
        )
        assert r.status_code == 200, r.text
        missing = uuid.uuid4()
        assert client.get(f"/v1/tasks/{missing}", headers=student).status_code == 404
    lines = _json_lines(stream)  # every line parses as JSON
    assert lines
    for line in lines:
        assert {"time", "level", "logger", "message"} <= line.keys()
        assert line["time"].endswith("+00:00")

    access = [line for line in lines if line["logger"] == "smartstudy.access"]
    preview = next(a for a in access if a.get("request_id") == "req-42")
    assert preview["level"] == "INFO"
    assert preview["method"] == "POST" and preview["route"] == "/v1/tasks/preview"
    assert preview["path"] == "/v1/tasks/preview" and preview["status"] == 200
    assert isinstance(preview["duration_ms"], float) and preview["duration_ms"] > 0
    not_found = next(a for a in access if a["status"] == 404)
    assert not_found["route"] == "/v1/tasks/{task_id}"
    assert len(not_found["request_id"]) == 32  # made by the server, none was given

    # The model failure was logged inside the request (in the endpoint's thread): it carries
    # the same request id, and its traceback.
    failure = next(line for line in lines if "exploding failed" in line["message"])
    assert failure["request_id"] == "req-42"
    assert failure["level"] == "ERROR" and "RuntimeError: boom" in failure["exception"]


def test_json_formatter_keeps_extras_and_writes_the_rest_as_text(captured):
    stream = captured("json")
    some_id = uuid.uuid4()
    logging.getLogger("smartstudy.test").warning(
        "imported %d rows", 3, extra={"rows": 3, "user_id": some_id}
    )
    (line,) = _json_lines(stream)
    assert line["message"] == "imported 3 rows" and line["level"] == "WARNING"
    assert line["logger"] == "smartstudy.test"
    assert line["rows"] == 3 and line["user_id"] == str(some_id)
    assert "request_id" not in line  # outside a request


def test_text_lines_show_the_request_id(client, captured):
    stream = captured("text")
    r = client.get("/healthz", headers={"X-Request-ID": "abc123"})
    assert r.status_code == 200
    access = [line for line in stream.getvalue().splitlines() if "smartstudy.access" in line]
    assert any("[abc123]" in line and "GET /healthz 200" in line for line in access)
    with pytest.raises(json.JSONDecodeError):
        json.loads(access[0])


def test_configuring_twice_keeps_one_handler(captured):
    captured("json")
    captured("text")
    root = logging.getLogger()
    assert sum(getattr(h, "_smartstudy_handler", False) for h in root.handlers) == 1


def test_settings_check_the_log_format_and_level():
    assert Settings(log_format="json", log_level="debug").log_format == "json"
    with pytest.raises(ValidationError, match="log_format"):
        Settings(log_format="xml")
    with pytest.raises(ValidationError, match="log_level"):
        Settings(log_level="loud")
    with pytest.raises(ValueError, match="text, json"):
        logs.make_handler("yaml")
