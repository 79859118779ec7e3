"""How long a training takes to read every completed task from PostgreSQL.

A training reads the whole history (``predictor.completed_interactions``) before it fits.
On PostgreSQL it reads the ids as text and the completion times without the ORM type's
per-row conversion; the reference, timed in the same run on the same database, is the same
query with the ORM's column types (UUID objects, ``UTCDateTime``), as every other database
reads it. Both give the same frame (checked: task ids compared as text).

It fills a scratch database with ``smartstudy simulate cohort --students S --tasks T``
(500 × 200 = 100,000 completed tasks by default; ``--template DB`` copies a filled one
instead), prints the CPU seconds of each read (best of 3) and their ratio, and drops it.

    .venv/bin/python benchmarks/training_read.py [--students 500] [--tasks 200] [--template DB]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

import pandas as pd
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from scratch_db import add_database_options, scratch_database
from smartstudy.services import predictor
from smartstudy.store.orm import PracticeTask


def _best_cpu(read: Callable[[], pd.DataFrame]) -> tuple[float, pd.DataFrame]:
    """The least CPU time (s) of three reads, and the last frame read."""
    best, frame = float("inf"), pd.DataFrame()
    for _ in range(3):
        started = time.process_time()
        frame = read()
        best = min(best, time.process_time() - started)
    return best, frame


def run(args: argparse.Namespace) -> None:
    with scratch_database(args.postgres_url, "smartstudy_read", args.template) as url:
        if not args.template:
            with tempfile.TemporaryDirectory() as folder:
                env = {**os.environ, "SMARTSTUDY_DATABASE_URL": url, "SMARTSTUDY_DATA_DIR": folder}
                subprocess.run(
                    [
                        *(sys.executable, "-m", "smartstudy.cli", "simulate", "cohort"),
                        *("--students", str(args.students), "--tasks", str(args.tasks)),
                    ],
                    env=env,
                    check=True,
                    capture_output=True,
                )
        engine = create_engine(url)
        with Session(engine) as session:
            fast, frame = _best_cpu(lambda: predictor.completed_interactions(session))
            generic_query = (
                select(*predictor._INTERACTION_COLUMNS)
                .where(PracticeTask.completed_at.is_not(None))
                .order_by(PracticeTask.completed_at, PracticeTask.id)
            )
            generic, reference = _best_cpu(
                lambda: predictor.interactions_frame(
                    session.connection().execute(generic_query).all()
                )
            )
        engine.dispose()
    same = frame.assign(task_id=frame["task_id"].astype(str)).equals(
        reference.assign(task_id=reference["task_id"].astype(str))
    )
    print(f"{len(frame)} completed tasks read as a training reads them (CPU, best of 3):")
    print(f"  ids as text: {fast:.2f} s; ORM column types: {generic:.2f} s")
    print(f"  ratio {generic / fast:.1f}x; same frame: {same}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_database_options(parser)
    run(parser.parse_args())


if __name__ == "__main__":
    main()
