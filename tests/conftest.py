"""Shared fixtures: a migrated database per backend (SQLite always, PostgreSQL when
reachable, and always in CI), an app context, an HTTP client and signed-in users."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from smartstudy.api.app import create_app
from smartstudy.config import Settings
from smartstudy.services.context import AppContext
from smartstudy.services.predictor import PredictionService
from smartstudy.store.db import make_engine, make_session_factory
from smartstudy.store.migrate import upgrade
from smartstudy.store.orm import Base, TrainingCounter

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# Tests queue trainings back to back and wait for them: no pause between trainings here
# (servers the tests start inherit it); tests of the pause set their own.
os.environ.setdefault("SMARTSTUDY_TRAINING_PAUSE", "0")
# The local PostgreSQL server of a development machine or CI runner (trust auth, loopback).
POSTGRES_ADMIN_URL = os.environ.get(
    "SMARTSTUDY_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
DATASETS_DIR = Path(__file__).resolve().parents[1] / ".." / "shared" / "datasets"


def _postgres_database() -> Iterator[str]:
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        admin.dispose()
        reason = f"PostgreSQL not reachable at {make_url(POSTGRES_ADMIN_URL).host}: {exc}"
        if IN_CI:
            pytest.fail(f"{reason} (CI=true: PostgreSQL tests must run)")
        pytest.skip(reason + " (set SMARTSTUDY_TEST_POSTGRES_URL)")
    name = f"smartstudy_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """A freshly migrated database of each backend, shared by the tests of a session."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("db") / "smartstudy.db"
        url = f"sqlite:///{path}"
        yield url
        return
    yield from _postgres_database()


@pytest.fixture(scope="session")
def migrated_engine(database_url: str):
    engine = make_engine(database_url)
    upgrade(engine)
    yield engine
    engine.dispose()


def _clear(engine) -> None:
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " CASCADE"))
        else:
            for table in tables:
                conn.execute(text(f'DELETE FROM "{table}"'))
        conn.execute(TrainingCounter.__table__.insert().values(name="training", count=0, total=0))


@pytest.fixture
def context(migrated_engine, tmp_path: Path) -> Iterator[AppContext]:
    """An app context on an empty (migrated) database."""
    _clear(migrated_engine)
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=migrated_engine.url.render_as_string(hide_password=False),
        secret_key="test-secret-key-" + "x" * 32,
        auto_migrate=False,
    )
    yield AppContext(
        settings=settings,
        engine=migrated_engine,
        sessions=make_session_factory(migrated_engine),
        predictor=PredictionService(),
    )


@pytest.fixture
def client(context: AppContext) -> Iterator[TestClient]:
    with TestClient(create_app(context=context)) as c:
        yield c


def register(client: TestClient, email: str, password: str = "correct horse 1") -> dict:
    """Register and log in; the auth header for the new user."""
    r = client.post("/v1/auth/register", json={"email": email, "password": password})
    assert r.status_code == 201, r.text
    r = client.post("/v1/auth/login", json={"email": email, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


@pytest.fixture
def student(client: TestClient) -> dict:
    return register(client, "student@example.com")


@pytest.fixture
def other_student(client: TestClient) -> dict:
    return register(client, "other@example.com")


@pytest.fixture
def admin(client: TestClient, context: AppContext) -> dict:
    from smartstudy.services.accounts import create_user
    from smartstudy.store.db import session_scope

    with session_scope(context.sessions) as session:
        create_user(session, "admin@example.com", "admin password 1", "Admin", role="admin")
    r = client.post(
        "/v1/auth/login", json={"email": "admin@example.com", "password": "admin password 1"}
    )
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


@pytest.fixture
def topic(client: TestClient, admin: dict) -> dict:
    """A subject 'Mathematics' with a topic 'Calculus', made through the API."""
    s = client.post("/v1/subjects", json={"name": "Mathematics"}, headers=admin)
    assert s.status_code == 201, s.text
    t = client.post(
        "/v1/topics", json={"subject_id": s.json()["id"], "name": "Calculus"}, headers=admin
    )
    assert t.status_code == 201, t.text
    return t.json()


@pytest.fixture
def failing_client(context: AppContext) -> Iterator[TestClient]:
    """The app with a bug at /boom (a page) and /v1/boom (the API), answered as a server
    would answer it (no exception raised into the test)."""
    app = create_app(context=context)

    @app.get("/boom", include_in_schema=False)
    def boom() -> None:
        raise RuntimeError("a bug")

    @app.get("/v1/boom", include_in_schema=False)
    def api_boom() -> None:
        raise RuntimeError("a bug")

    with TestClient(app, raise_server_exceptions=False) as c:
        yield c
