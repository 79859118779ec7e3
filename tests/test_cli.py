"""The command line, run as a user would: on a SQLite file in a temporary data folder."""

from __future__ import annotations

import json
import random
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, func, select
from typer.testing import CliRunner

from smartstudy.cli import app
from smartstudy.store.orm import Exam, ModelVersion, PracticeTask, Question, User
from smartstudy.threads import THREAD_VARIABLES

from .demo_server import demo_server

runner = CliRunner()


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "data"
    monkeypatch.setenv("SMARTSTUDY_DATA_DIR", str(folder))
    monkeypatch.delenv("SMARTSTUDY_DATABASE_URL", raising=False)
    return folder


def _count(folder: Path, model) -> int:
    engine = create_engine(f"sqlite:///{folder / 'smartstudy.db'}")
    with engine.connect() as conn:
        n = conn.execute(select(func.count()).select_from(model)).scalar()
    engine.dispose()
    return n


def test_db_upgrade_creates_the_database(data_dir):
    result = runner.invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    from smartstudy.store.migrate import head_revision

    assert f"revision {head_revision()}" in result.output
    assert (data_dir / "smartstudy.db").is_file()


def test_create_admin(data_dir):
    args = ["users", "create-admin", "--email", "Boss@Example.com", "--password", "long password"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "admin boss@example.com created" in result.output
    again = runner.invoke(app, args)
    assert again.exit_code == 1
    assert "already exists" in again.output
    short = runner.invoke(
        app, ["users", "create-admin", "--email", "x@example.com", "--password", "short"]
    )
    assert short.exit_code == 1 and "at least 8 characters" in short.output


def test_demo_is_idempotent(data_dir):
    first = runner.invoke(app, ["demo"])
    assert first.exit_code == 0, first.output
    assert "demo data added" in first.output
    creds = data_dir / "demo-credentials.txt"
    assert stat.S_IMODE(creds.stat().st_mode) == 0o600
    lines = [ln for ln in creds.read_text().splitlines() if "@" in ln]
    assert len(lines) == 5 and "(admin)" in lines[0]
    n_tasks = _count(data_dir, PracticeTask)
    assert n_tasks >= 100
    assert _count(data_dir, Question) >= 18  # a question bank for the quizzes
    second = runner.invoke(app, ["demo"])
    assert second.exit_code == 0 and "already present" in second.output
    assert _count(data_dir, PracticeTask) == n_tasks
    assert _count(data_dir, User) == 5
    assert _count(data_dir, Exam) == 1  # Ada's exam, for the Preparation page
    engine = create_engine(f"sqlite:///{data_dir / 'smartstudy.db'}")
    with engine.connect() as conn:
        named = conn.execute(
            select(func.count()).where(PracticeTask.model_name == "baseline")
        ).scalar()
        active = conn.execute(select(func.count()).where(ModelVersion.is_active)).scalar()
    engine.dispose()
    assert named == n_tasks  # every demo task carries the model that predicted it
    assert active == 3  # neural, lnirt and baseline


def test_import_all_or_nothing(data_dir, tmp_path):
    runner.invoke(app, ["users", "create-admin", "--email", "a@example.com", "--password", "p" * 9])
    good = tmp_path / "good.csv"
    good.write_text(
        "email,subject,topic,difficulty,correct,rt_seconds\n"
        "a@example.com,Maths,Calculus,easy,1,50\n"
        "a@example.com,Maths,Calculus,hard,0,400\n"
    )
    result = runner.invoke(app, ["import", str(good)])
    assert result.exit_code == 0, result.output
    assert "imported 2 tasks" in result.output
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "email,subject,topic,difficulty,correct,rt_seconds\n"
        "a@example.com,Maths,Calculus,easy,1,50\n"
        "a@example.com,Maths,Calculus,medium,1,-1\n"
    )
    result = runner.invoke(app, ["import", str(bad)])
    assert result.exit_code == 1
    assert "line 3, column rt_seconds" in result.output
    assert "nothing was written" in result.output
    assert _count(data_dir, PracticeTask) == 2
    dry = runner.invoke(app, ["import", str(good), "--dry-run"])
    assert dry.exit_code == 0 and "2 rows are valid" in dry.output
    assert _count(data_dir, PracticeTask) == 2
    missing = runner.invoke(app, ["import", str(tmp_path / "nope.csv")])
    assert missing.exit_code == 1 and "no such file" in missing.output


def test_evaluate_json(data_dir):
    result = runner.invoke(
        app, ["evaluate", "--dataset", "mars_ib", "--model", "baseline", "--json"]
    )
    if "not found" in result.output.lower() and result.exit_code != 0:
        pytest.skip("shared data sets are not beside this checkout")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    (res,) = report["results"]
    assert res["name"] == "baseline"
    assert 0.5 < res["auc"] < 1
    assert res["coverage80"] is not None and res["rmse_log_time"] > 0
    assert report["test"]["users"] > 0 and report["train"]["users"] > report["test"]["users"]


def test_evaluate_refuses_unknown_names(data_dir):
    result = runner.invoke(app, ["evaluate", "--dataset", "nope", "--model", "baseline"])
    assert result.exit_code == 1 and "unknown data set" in result.output
    result = runner.invoke(app, ["evaluate", "--dataset", "mars_ib", "--model", "oracle"])
    assert result.exit_code == 1 and "unknown model" in result.output


def test_serve_demo_end_to_end(tmp_path):
    """README line one: `smartstudy serve --demo`, then a student's whole round trip."""
    with (
        demo_server(tmp_path / "data", timeout=90) as base,
        httpx.Client(base_url=base, timeout=10) as http,
    ):
        r = http.post(
            "/v1/auth/register", json={"email": "new@example.com", "password": "a good pass"}
        )
        assert r.status_code == 201, r.text
        token = http.post(
            "/v1/auth/login", json={"email": "new@example.com", "password": "a good pass"}
        ).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        subjects = {s["name"] for s in http.get("/v1/subjects", headers=auth).json()}
        assert {"Mathematics", "Economics", "Physics"} <= subjects
        calculus = next(
            t for t in http.get("/v1/topics", headers=auth).json() if t["name"] == "Calculus"
        )
        task = http.post(
            "/v1/tasks", json={"topic_id": calculus["id"], "difficulty": "medium"}, headers=auth
        ).json()
        assert 0 < task["predicted_correct"] < 1
        assert (
            task["predicted_time_p10_s"]
            < task["predicted_time_median_s"]
            < task["predicted_time_p90_s"]
        )
        done = http.post(
            f"/v1/tasks/{task['id']}/complete",
            json={"is_correct": True, "actual_time_seconds": 200},
            headers=auth,
        )
        assert done.status_code == 200, done.text
        listed = http.get("/v1/tasks", params={"completed": True}, headers=auth).json()
        assert listed["total"] == 1
        assert listed["items"][0]["is_correct"] is True
        assert listed["items"][0]["actual_time_seconds"] == 200
        # Password hashes and every student's data: readable by their owner only (the
        # helper made the folder 0755 before the server started; the server tightened it).
        data = tmp_path / "data"
        private = ["smartstudy.db", "smartstudy.db-wal", "smartstudy.db-shm", "secret_key"]
        private.append("demo-credentials.txt")
        modes = {name: stat.S_IMODE((data / name).stat().st_mode) for name in private}
        assert modes == dict.fromkeys(private, 0o600)
        assert stat.S_IMODE(data.stat().st_mode) == 0o700


def _quiz_history(n_students: int = 5, n_quizzes: int = 3) -> list[str]:
    """Students answering quizzes on two concepts, through the services (SQLite file)."""
    from smartstudy.config import Settings
    from smartstudy.services import accounts, catalogue, quiz
    from smartstudy.services.context import AppContext
    from smartstudy.store.db import session_scope

    context = AppContext.from_settings(Settings())
    context.migrate()
    rng = random.Random(0)
    with session_scope(context.sessions) as session:
        subject = catalogue.create_subject(session, "Maths")
        topic = catalogue.create_topic(session, subject.id, "Calculus")
        concept_ids = []
        for name in ("Limits", "Derivatives"):
            concept = catalogue.create_concept(session, topic.id, name)
            concept_ids.append(str(concept.id))
            for i in range(4):
                quiz.create_question(session, concept.id, f"{name} {i}", ["a", "b", "c"], 2)
        for k in range(n_students):
            user = accounts.create_user(session, f"s{k}@example.com", "password 123")
            for _ in range(n_quizzes):
                s = quiz.create_session(session, user, topic_id=topic.id, n_questions=8, seed=k)
                for j, q in enumerate(s.questions):
                    learned = j >= 3 or rng.random() < 0.3
                    quiz.answer_question(session, user, s.id, q.id, 2 if learned else 0)
                quiz.submit_session(session, user, s.id)
    context.close()
    return concept_ids


def test_fit_bkt(data_dir):
    concept_ids = _quiz_history()
    usage = runner.invoke(app, ["fit-bkt"])
    assert usage.exit_code == 1 and "--concept-id" in usage.output
    result = runner.invoke(app, ["fit-bkt", "--all", "--activate", "--restarts", "2"])
    assert result.exit_code == 0, result.output
    assert "BKT fit, run" in result.output
    assert "2 fitted, 0 skipped, 0 failed" in result.output
    assert result.output.count("fitted, active") == 2
    one = runner.invoke(
        app, ["fit-bkt", "--concept-id", concept_ids[0], "--min-users", "50", "--restarts", "1"]
    )
    assert one.exit_code == 0, one.output
    assert "skipped" in one.output and "needs 10 attempts and 50 users" in one.output
    bad = runner.invoke(app, ["fit-bkt", "--all", "--from-date", "yesterday"])
    assert bad.exit_code == 1 and "not a date" in bad.output
    missing = runner.invoke(app, ["fit-bkt", "--concept-id", str(uuid.uuid4())])
    assert missing.exit_code == 1 and "concept not found" in missing.output


def test_train_and_analyze_predictions(data_dir):
    assert runner.invoke(app, ["analyze-predictions"]).output.strip() == "no stored predictions yet"
    assert runner.invoke(app, ["demo"]).exit_code == 0
    trained = runner.invoke(app, ["train"])
    assert trained.exit_code == 0, trained.output
    assert "completed tasks:" in trained.output
    for family in ("neural", "lnirt", "baseline"):
        assert f"{family}: version" in trained.output
    result = runner.invoke(app, ["analyze-predictions", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    n_tasks = _count(data_dir, PracticeTask)
    assert report["predictions"] == n_tasks
    (baseline,) = report["by_model"]
    assert baseline["model_name"] == "baseline" and baseline["n"] == n_tasks
    assert len(report["by_user"]) == 4 and {r["difficulty"] for r in report["by_difficulty"]} == {
        "easy",
        "medium",
        "hard",
    }
    assert all(0 <= r["saturated_share"] <= 1 and r["distinct_p"] >= 1 for r in report["by_user"])
    table = runner.invoke(app, ["analyze-predictions"])
    assert table.exit_code == 0 and "by user" in table.output and "by difficulty" in table.output
    bad = runner.invoke(app, ["analyze-predictions", "--since", "yesterday"])
    assert bad.exit_code == 1 and "--since" in bad.output


def test_evaluate_dominant_user_scenario(data_dir):
    result = runner.invoke(app, ["evaluate", "--scenario", "dominant-user", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["strategy"]: r for r in json.loads(result.output)}
    assert set(rows) == {
        "inverse_frequency",
        "l2",
        "balanced",
        "progressive",
        "per_user_heads",
        "none",
    }
    assert rows["inverse_frequency"]["passed"]
    assert all(
        set(r["checks"]) == {"saturation", "distinct", "monotone", "spread"} for r in rows.values()
    )
    table = runner.invoke(app, ["evaluate", "--scenario", "dominant-user"])
    assert table.exit_code == 0 and "inverse_frequency" in table.output and "PASS" in table.output
    both = runner.invoke(app, ["evaluate", "--scenario", "dominant-user", "--dataset", "mars_ib"])
    assert both.exit_code == 1 and "--scenario replaces" in both.output
    unknown = runner.invoke(app, ["evaluate", "--scenario", "crowd"])
    assert unknown.exit_code == 1 and "unknown scenario" in unknown.output
    nothing = runner.invoke(app, ["evaluate"])
    assert nothing.exit_code == 1 and "--dataset" in nothing.output


LOWERED = """
import os, threading
from smartstudy.cli import lower_priority
started, stop = threading.Event(), threading.Event()
def wait():
    started.set()
    stop.wait()
thread = threading.Thread(target=wait)
thread.start()
started.wait()
before = os.getpriority(os.PRIO_PROCESS, thread.native_id)
lower_priority(3)
print(before, os.getpriority(os.PRIO_PROCESS, thread.native_id), os.getpriority(os.PRIO_PROCESS, 0))
stop.set()
"""


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="threads' priorities: Linux")
def test_the_worker_priority_is_lowered_in_threads_started_before_it() -> None:
    """``worker --nice``: on Linux a priority is per thread, and libraries start threads on
    import; each of them is lowered too (a subprocess, so this test keeps its priority)."""
    out = subprocess.run(
        [sys.executable, "-c", LOWERED], capture_output=True, text=True, check=True, timeout=60
    )
    before, thread, main = (int(v) for v in out.stdout.split())
    assert thread == main == min(19, before + 3)


def _cli_import(environment: dict[str, str]) -> subprocess.CompletedProcess:
    code = "import os, smartstudy.cli; print(os.environ['OPENBLAS_NUM_THREADS'])"
    return subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        env=environment,
    )


def test_the_command_line_gives_numerical_libraries_one_thread_before_numpy_loads() -> None:
    """``smartstudy.threads``: the command line's processes (servers, workers) run numerical
    libraries on one thread each, set before NumPy reads it; a value set by hand stays."""
    import os

    environment = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
    out = _cli_import(environment)
    assert out.stdout.split() == ["1"]
    # -X importtime lists each module as its import ends: ours before any of NumPy's.
    modules = [line.rsplit("|", 1)[-1].strip() for line in out.stderr.splitlines()]
    assert modules.index("smartstudy.threads") < modules.index("numpy")
    assert _cli_import({**environment, "OPENBLAS_NUM_THREADS": "2"}).stdout.split() == ["2"]
