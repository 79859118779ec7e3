"""The audit log: every admin action leaves exactly one entry (actor, action, target) in the
transaction of the action; the users API changes roles; the admin page lists the entries."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from smartstudy.cli import app as cli_app
from smartstudy.models.baseline import Baseline
from smartstudy.services import accounts, catalogue, quiz
from smartstudy.services.predictor import PredictionService
from smartstudy.store.db import session_scope
from smartstudy.store.orm import (
    AuditEntry,
    Question,
    SessionAnswer,
    SessionQuestion,
    StudySession,
    utcnow,
)

from .web.conftest import PASSWORD, Web, make_admin


class RecordingRunner:
    """Takes job submissions without running them (a training request, not a training)."""

    def __init__(self) -> None:
        self.kinds: list[str] = []

    def submit(self, kind: str, fn) -> None:
        self.kinds.append(kind)

    def wait_idle(self, timeout: float | None = None) -> bool:
        return True

    def shutdown(self) -> None:
        return None


def _entries(context, action: str | None = None) -> list[AuditEntry]:
    with context.sessions() as session:
        stmt = select(AuditEntry).order_by(AuditEntry.at)
        if action is not None:
            stmt = stmt.where(AuditEntry.action == action)
        return list(session.scalars(stmt))


def _one(context, action: str) -> AuditEntry:
    entries = _entries(context, action)
    assert len(entries) == 1, [(e.action, e.target_id) for e in entries]
    return entries[0]


def _admin_id(context) -> uuid.UUID:
    with context.sessions() as session:
        user = accounts.get_user_by_email(session, "admin@example.com")
        assert user is not None
        return user.id


def test_catalogue_changes_are_audited_once_each(client, admin, context):
    s = client.post("/v1/subjects", json={"name": "Physics"}, headers=admin).json()
    client.patch(f"/v1/subjects/{s['id']}", json={"name": "Physics HL"}, headers=admin)
    t = client.post("/v1/topics", json={"subject_id": s["id"], "name": "Waves"}, headers=admin)
    t = t.json()
    client.patch(f"/v1/topics/{t['id']}", json={"name": "Waves and optics"}, headers=admin)
    c = client.post("/v1/concepts", json={"topic_id": t["id"], "name": "Doppler"}, headers=admin)
    c = c.json()
    client.patch(f"/v1/concepts/{c['id']}", json={"name": "Doppler effect"}, headers=admin)
    q = client.post(
        "/v1/questions",
        json={
            "concept_id": c["id"],
            "prompt": "f' > f?",
            "options": ["yes", "no"],
            "correct_option": 0,
        },
        headers=admin,
    ).json()
    # A refused change (a duplicate name) leaves no entry: it rolls back with the action.
    dup = client.post("/v1/subjects", json={"name": "Physics HL"}, headers=admin)
    assert dup.status_code == 409
    admin_id = _admin_id(context)
    expected = {
        "subject.create": ("subject", s["id"], "Physics"),
        "subject.update": ("subject", s["id"], "Physics HL"),
        "topic.create": ("topic", t["id"], "Waves"),
        "topic.update": ("topic", t["id"], "Waves and optics"),
        "concept.create": ("concept", c["id"], "Doppler"),
        "concept.update": ("concept", c["id"], "Doppler effect"),
    }
    question = _one(context, "question.create")
    assert (question.target_type, question.target_id) == ("question", q["id"])
    assert question.details == {"concept_id": c["id"]}
    assert len(_entries(context)) == len(expected) + 1
    for action, (target_type, target_id, name) in expected.items():
        entry = _one(context, action)
        assert (entry.actor_id, entry.actor_email) == (admin_id, "admin@example.com")
        assert (entry.target_type, entry.target_id) == (target_type, target_id)
        assert entry.details == {"name": name}


def test_activation_and_training_requests_are_audited(client, admin, context):
    context.predictor = PredictionService(chain=("baseline",), factories={"baseline": Baseline})
    context.runner = RecordingRunner()
    with session_scope(context.sessions) as session:
        first = context.predictor.train(session, "baseline")
        context.predictor.train(session, "baseline")
        first_id = first.id
    r = client.post(f"/v1/models/versions/{first_id}/activate", headers=admin)
    assert r.status_code == 200, r.text
    entry = _one(context, "model.activate")
    assert (entry.target_type, entry.target_id) == ("model_version", str(first_id))
    assert entry.details == {"model_name": "baseline", "version": 1}
    assert entry.actor_id == _admin_id(context)
    # An unknown version is refused and leaves nothing.
    assert (
        client.post(f"/v1/models/versions/{uuid.uuid4()}/activate", headers=admin).status_code
        == 404
    )
    assert len(_entries(context, "model.activate")) == 1

    r = client.post("/v1/models/train", headers=admin)
    assert r.status_code == 202, r.text
    assert context.runner.kinds == ["training"]
    entry = _one(context, "model.train")
    assert entry.details == {"families": ["baseline"]} and entry.actor_email == "admin@example.com"


def _submitted_answers(context, concept_id: uuid.UUID, n_users: int = 4) -> None:
    """Quiz answers that show learning (wrong, then right), written straight to the tables."""
    start = utcnow() - timedelta(days=1)
    with session_scope(context.sessions) as session:
        question = session.scalar(select(Question).where(Question.concept_id == concept_id))
        snapshot = {
            "prompt": question.prompt,
            "options": question.options,
            "correct_option": question.correct_option,
            "concept_id": str(concept_id),
        }
        for u in range(n_users):
            user = accounts.create_user(session, f"learner{u}@example.com", "password 123")
            quiz = StudySession(user_id=user.id, status="submitted", submitted_at=start)
            session.add(quiz)
            session.flush()
            for k in range(12):
                asked = SessionQuestion(
                    session_id=quiz.id, question_id=question.id, position=k, snapshot_json=snapshot
                )
                session.add(asked)
                session.flush()
                right = k >= 2 + u  # each learner gets it after a few tries
                session.add(
                    SessionAnswer(
                        session_question_id=asked.id,
                        chosen_option=question.correct_option if right else 0,
                        is_correct=right,
                        answered_at=start + timedelta(minutes=k + 20 * u),
                    )
                )


@pytest.fixture
def concept(context) -> uuid.UUID:
    with session_scope(context.sessions) as session:
        topic = catalogue.ensure_topic(session, "Mathematics", "Calculus")
        made = catalogue.create_concept(session, topic.id, "Limits")
        quiz.create_question(session, made.id, "lim x→0 sin(x)/x", ["0", "1", "∞"], 1)
        return made.id


def test_bkt_recompute_is_audited_with_its_run(client, admin, context, concept):
    _submitted_answers(context, concept)
    r = client.post(
        "/v1/learning/bkt/recompute",
        json={"activate_new_params": True, "min_attempts": 10, "min_users": 3, "n_restarts": 2},
        headers=admin,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    entry = _one(context, "bkt.recompute")
    assert (entry.target_type, entry.target_id) == ("algo_run", body["run_id"])
    assert entry.actor_id == _admin_id(context)
    assert entry.details["trigger"] == "api" and entry.details["activate"] is True
    assert entry.details["fitted"] == body["summary"]["params_fitted"]


def test_cli_actions_are_audited(context, concept, monkeypatch):
    monkeypatch.setenv("SMARTSTUDY_DATABASE_URL", context.settings.resolved_database_url)
    monkeypatch.setenv("SMARTSTUDY_DATA_DIR", str(context.settings.data_dir))
    runner = CliRunner()
    args = ["users", "create-admin", "--email", "Root@Example.com", "--password", "long password"]
    result = runner.invoke(cli_app, args)
    assert result.exit_code == 0, result.output
    entry = _one(context, "user.create_admin")
    assert (entry.actor_id, entry.actor_email) == (None, "command line")
    with context.sessions() as session:
        root = accounts.get_user_by_email(session, "root@example.com")
    assert (entry.target_type, entry.target_id) == ("user", str(root.id))
    # Refused (the e-mail is taken): nothing more is recorded.
    assert runner.invoke(cli_app, args).exit_code == 1
    assert len(_entries(context)) == 1

    _submitted_answers(context, concept)
    fit = ["fit-bkt", "--all", "--restarts", "2", "--min-users", "3"]
    result = runner.invoke(cli_app, fit)  # no --activate: nothing served changes
    assert result.exit_code == 0, result.output
    assert _entries(context, "bkt.recompute") == []
    result = runner.invoke(cli_app, [*fit, "--activate"])
    assert result.exit_code == 0, result.output
    entry = _one(context, "bkt.recompute")
    assert entry.actor_email == "command line" and entry.details["trigger"] == "cli"
    assert entry.details["activated"] == 1


def test_users_api_changes_roles_and_is_audited(client, admin, student, context):
    listed = client.get("/v1/users", params={"limit": 1}, headers=admin)
    assert listed.status_code == 200, listed.text
    page = listed.json()
    assert page["total"] == 2 and page["limit"] == 1 and len(page["items"]) == 1
    assert page["items"][0]["email"] == "admin@example.com"  # ordered by e-mail
    second = client.get("/v1/users", params={"offset": 1}, headers=admin).json()["items"]
    assert [u["email"] for u in second] == ["student@example.com"]
    student_id = second[0]["id"]

    r = client.patch(f"/v1/users/{student_id}", json={"role": "admin"}, headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["role"] == "admin"
    entry = _one(context, "user.update")
    assert (entry.target_type, entry.target_id) == ("user", student_id)
    assert entry.actor_id == _admin_id(context)
    assert entry.details == {"email": "student@example.com", "role": ["student", "admin"]}
    # The promotion takes effect at once: the former student may now list users.
    assert client.get("/v1/users", headers=student).status_code == 200

    r = client.patch(f"/v1/users/{student_id}", json={"is_active": False}, headers=admin)
    assert r.status_code == 200 and r.json()["is_active"] is False
    assert client.get("/v1/auth/me", headers=student).status_code == 401  # locked out
    assert len(_entries(context, "user.update")) == 2


def test_users_api_refusals_leave_no_entry(client, admin, student, context):
    admin_id = _admin_id(context)
    for body, field in (({"role": "student"}, "role"), ({"is_active": False}, "is_active")):
        r = client.patch(f"/v1/users/{admin_id}", json=body, headers=admin)
        assert r.status_code == 409 and field in r.json()["detail"], r.text
    r = client.patch(f"/v1/users/{uuid.uuid4()}", json={"role": "admin"}, headers=admin)
    assert r.status_code == 404
    for body in ({}, {"role": "owner"}, {"is_active": "no"}, {"email": "x@example.com"}):
        r = client.patch(f"/v1/users/{admin_id}", json=body, headers=admin)
        assert r.status_code == 422, body
    with context.sessions() as session:
        assert session.scalar(select(func.count()).select_from(AuditEntry)) == 0
    # Students may do none of it.
    me = client.get("/v1/auth/me", headers=student).json()["id"]
    assert client.get("/v1/users", headers=student).status_code == 403
    assert client.get("/v1/audit", headers=student).status_code == 403
    r = client.patch(f"/v1/users/{me}", json={"role": "admin"}, headers=student)
    assert r.status_code == 403
    assert client.get("/v1/users").status_code == 401


def test_audit_api_lists_newest_first_with_filters(client, admin, context):
    for name in ("A", "B", "C"):
        client.post("/v1/subjects", json={"name": name}, headers=admin)
    client.patch(
        f"/v1/subjects/{client.get('/v1/subjects', headers=admin).json()[0]['id']}",
        json={"name": "A2"},
        headers=admin,
    )
    page = client.get("/v1/audit", headers=admin).json()
    assert page["total"] == 4
    assert [e["action"] for e in page["items"]] == ["subject.update"] + ["subject.create"] * 3
    assert [e["details"]["name"] for e in page["items"][1:]] == ["C", "B", "A"]
    only = client.get("/v1/audit", params={"action": "subject.create", "limit": 2, "offset": 1})
    assert only.status_code == 401  # no token
    only = client.get(
        "/v1/audit", params={"action": "subject.create", "limit": 2, "offset": 1}, headers=admin
    ).json()
    assert only["total"] == 3 and [e["details"]["name"] for e in only["items"]] == ["B", "A"]
    for bad in ({"limit": 0}, {"limit": 201}, {"offset": -1}, {"action": "x" * 65}):
        assert client.get("/v1/audit", params=bad, headers=admin).status_code == 422, bad


def test_admin_page_records_and_lists_actions(client, context, monkeypatch):
    make_admin(context)
    monkeypatch.setattr("smartstudy.web.routes.admin.schedule_training", lambda *_args: None)
    web = Web(client)
    web.login("admin@example.com", PASSWORD)
    page = web.get("/admin/models")
    assert "No admin action recorded yet" in page.text
    assert web.post("/admin/models/train").status_code == 303
    web.get("/admin/models")
    assert web.post("/admin/models/bkt-recompute", {"activate": "on"}).status_code == 303
    assert [e.action for e in _entries(context)] == ["model.train", "bkt.recompute"]
    assert _one(context, "bkt.recompute").details["trigger"] == "web"
    with session_scope(context.sessions) as session:
        version = context.predictor.train(session, "baseline")
    web.get("/admin/models")
    assert web.post(f"/admin/models/versions/{version.id}/activate").status_code == 303
    page = web.get("/admin/models").text
    table = page[page.index('id="audit-log"') :]
    rows = table[: table.index("</table>")].split("<tr>")[2:]  # after the header row
    assert len(rows) == 3
    assert "model.activate" in rows[0] and f"model_version {version.id}" in rows[0]
    assert "bkt.recompute" in rows[1] and "model.train" in rows[2]
    assert all("admin@example.com" in row for row in rows)
