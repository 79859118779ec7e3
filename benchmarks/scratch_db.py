"""A scratch PostgreSQL database and the options that choose it, for the benchmarks that need
one (``load.py``, ``training_read.py``)."""

from __future__ import annotations

import argparse
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url


def add_database_options(parser: argparse.ArgumentParser) -> None:
    """``--students``, ``--tasks`` (the cohort to fill it with), ``--postgres-url`` (the
    server) and ``--template`` (a filled database to copy instead)."""
    parser.add_argument("--students", type=int, default=500)
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "SMARTSTUDY_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
        ),
    )
    parser.add_argument(
        "--template",
        help="copy this database, already filled (and trained, for load.py) with CREATE "
        "DATABASE ... TEMPLATE, instead of filling a new one: for repeated runs",
    )


@contextmanager
def scratch_database(postgres_url: str, prefix: str, template: str | None) -> Iterator[str]:
    """The URL of a new database on the server of ``postgres_url`` (a copy of ``template``
    if given), dropped on exit."""
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    copy = f' TEMPLATE "{template}"' if template else ""
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"{copy}'))
    try:
        yield make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
