"""Commands that cannot use the database or the data folder stop with ONE line on stderr that
names the setting and the path or URL, and exit 1; files the app creates are private."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
from functools import partial
from pathlib import Path

import pytest
from sqlalchemy import create_engine, event, func, select
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from smartstudy.cli import app
from smartstudy.config import Settings
from smartstudy.services import context as context_module
from smartstudy.services import demo as demo_module
from smartstudy.store.orm import User

from .demo_server import free_port

runner = CliRunner()

COMMANDS = [
    ["serve", "--port", "1"],  # fails before it listens
    ["demo"],
    ["db", "upgrade"],
    ["train", "--json"],
    ["users", "create-admin", "--email", "a@example.com", "--password", "long password"],
]


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "data"
    monkeypatch.setenv("SMARTSTUDY_DATA_DIR", str(folder))
    for name in ("SMARTSTUDY_DATABASE_URL", "SMARTSTUDY_SECRET_KEY", "SMARTSTUDY_MIN_FREE_DISK_MB"):
        monkeypatch.delenv(name, raising=False)
    return folder


def one_error_line(result) -> str:
    """The single line a failed command printed; it failed cleanly (exit 1, no traceback)."""
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_wrong_database_port(command: list[str], data_dir: Path, monkeypatch):
    port = free_port()  # nothing listens there
    url = f"postgresql+psycopg://postgres:example-password@127.0.0.1:{port}/postgres"
    monkeypatch.setenv("SMARTSTUDY_DATABASE_URL", url)
    line = one_error_line(runner.invoke(app, command))
    assert line == (
        f"error: cannot reach the database at postgresql+psycopg://postgres:***@127.0.0.1:{port}"
        "/postgres (SMARTSTUDY_DATABASE_URL): connection refused"
    )


def test_wrong_database_port_from_the_shell(tmp_path: Path):
    """The real entry point, as a user starts it: one line, no traceback, exit 1."""
    port = free_port()
    env = {
        **os.environ,
        "SMARTSTUDY_DATA_DIR": str(tmp_path / "data"),
        "SMARTSTUDY_DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres",
    }
    done = subprocess.run(
        [sys.executable, "-m", "smartstudy.cli", "serve", "--demo", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"error: cannot reach the database at postgresql+psycopg://postgres@127.0.0.1:{port}"
        "/postgres (SMARTSTUDY_DATABASE_URL): connection refused"
    ]


@pytest.mark.parametrize("command", COMMANDS[:3], ids=lambda c: " ".join(c[:2]))
def test_data_folder_that_cannot_be_created(command: list[str], tmp_path: Path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("SMARTSTUDY_DATA_DIR", str(blocker / "data"))
    monkeypatch.delenv("SMARTSTUDY_DATABASE_URL", raising=False)
    line = one_error_line(runner.invoke(app, command))
    assert line == f"error: cannot use {blocker / 'data'} (SMARTSTUDY_DATA_DIR): not a directory"


def _can_mount_read_only(folder: Path) -> bool:
    probe = ["unshare", "-m", "sh", "-c", 'mount -t tmpfs -o ro,size=1m tmpfs "$0"', str(folder)]
    try:
        return subprocess.run(probe, capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


@pytest.mark.parametrize("command", COMMANDS[:3], ids=lambda c: " ".join(c[:2]))
def test_read_only_data_folder(command: list[str], data_dir: Path):
    """A data folder the command may not write to. Root writes in 0500 folders, so as root
    (as in CI) the folder is a read-only mount instead, in the command's own mount namespace."""
    if os.geteuid() != 0:
        data_dir.mkdir(mode=0o500)
        try:
            line = one_error_line(runner.invoke(app, command))
        finally:
            data_dir.chmod(0o700)
        assert line.startswith(f"error: cannot write to {data_dir}")
        assert "(SMARTSTUDY_DATA_DIR): permission denied" in line
        return
    data_dir.mkdir()
    if not _can_mount_read_only(data_dir):
        pytest.skip("root without `unshare -m`: cannot mount a read-only file system")
    script = 'mount -t tmpfs -o ro,size=1m tmpfs "$0" && exec "$@"'
    shell = ["unshare", "-m", "sh", "-c", script, str(data_dir)]
    done = subprocess.run(
        [*shell, sys.executable, "-m", "smartstudy.cli", *command],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"error: cannot write to {data_dir}"), lines[0]
    assert "(SMARTSTUDY_DATA_DIR): read-only file system" in lines[0]


@pytest.mark.parametrize("command", COMMANDS[:3], ids=lambda c: " ".join(c[:2]))
def test_full_disk(command: list[str], data_dir: Path, monkeypatch):
    monkeypatch.setenv("SMARTSTUDY_MIN_FREE_DISK_MB", str(10**9))  # more than any disk has
    line = one_error_line(runner.invoke(app, command))
    assert line.startswith(
        f"error: no space left for {data_dir} (SMARTSTUDY_DATA_DIR, SMARTSTUDY_MIN_FREE_DISK_MB)"
        ": only "
    )
    assert line.endswith(f"MiB free on its disk, at least {10**9} MiB needed")


def test_full_database(data_dir: Path, monkeypatch):
    """A SQLite database that may not grow (its max_page_count reached, as SQLite sees a full
    disk): the start-up check says so in one line, naming the file."""
    make_engine = context_module.make_engine

    def limited_engine(url: str, **kwargs):
        engine = make_engine(url, **kwargs)
        event.listen(engine, "connect", lambda conn, _r: conn.execute("PRAGMA max_page_count=1"))
        return engine

    monkeypatch.setattr(context_module, "make_engine", limited_engine)
    line = one_error_line(runner.invoke(app, ["db", "upgrade"]))
    assert line == (
        f"error: no space left for {data_dir / 'smartstudy.db'} (SMARTSTUDY_DATA_DIR): "
        "the database file may not grow any more"
    )


def test_demo_whose_commit_fails_writes_no_credentials(data_dir: Path, monkeypatch):
    monkeypatch.setattr(  # a small demo: the failure comes at its commit anyway
        demo_module, "seed_demo", partial(demo_module.seed_demo, tasks_per_student=2)
    )
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0

    def disk_full(self: Session) -> None:
        orig = sqlite3.OperationalError("database or disk is full")
        raise sa_exc.OperationalError("COMMIT", None, orig)

    monkeypatch.setattr(Session, "commit", disk_full)
    line = one_error_line(runner.invoke(app, ["demo"]))
    assert line == (
        f"error: no space left for {data_dir / 'smartstudy.db'} (SMARTSTUDY_DATA_DIR): "
        "database or disk is full"
    )
    assert not (data_dir / "demo-credentials.txt").exists()
    engine = create_engine(f"sqlite:///{data_dir / 'smartstudy.db'}")
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(User)).scalar() == 0
    engine.dispose()


def test_files_are_private(data_dir: Path):
    """New: folder 0700, database 0600; existing ones too loose are tightened on start."""
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    database = data_dir / "smartstudy.db"
    assert (mode(data_dir), mode(database)) == (0o700, 0o600)
    key = data_dir / "secret_key"
    assert Settings().resolved_secret_key and mode(key) == 0o600
    for path, loose in ((data_dir, 0o755), (database, 0o644), (key, 0o644)):
        path.chmod(loose)
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    assert Settings().resolved_secret_key
    assert (mode(data_dir), mode(database), mode(key)) == (0o700, 0o600, 0o600)
