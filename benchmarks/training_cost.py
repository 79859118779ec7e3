"""CPU time of the trainings of one worker process: when nothing is due for a refit, or
with ``--refit``, when LNIRT and Baseline refit every time (as under load, once their data
have grown by 10%).

Under load a training is due every few completions, while the families are refitted only
once their data have grown enough (``training.REFIT_GROWTH``). Such a training still reads
the history, scores every family's active version on the held-out students, and refits the
serving calibration; on a machine shared with API processes its CPU comes out of the
requests. This runs ``--trainings`` trainings in a row in one process, as a worker does, on a
scratch PostgreSQL database filled with ``smartstudy simulate cohort`` and trained once
(``--template DB`` copies a database already filled and trained), and prints the CPU and wall
seconds of each. The first one predicts every held-out task; the later ones reuse the
predictions of students whose held-out tasks did not change (``registry.HeldOutMemo``), so
the difference between them is what that memo saves. With ``--refit`` the first training
refits every family and searches LNIRT's hyperparameters again (``smartstudy train``); the
later ones refit LNIRT and Baseline, and reuse the search (``training.SEARCH_AGAIN_GROWTH``).

    .venv/bin/python benchmarks/training_cost.py [--students 500] [--tasks 200] [--template DB]
        [--trainings 3] [--refit]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

from scratch_db import add_database_options, scratch_database
from smartstudy.config import Settings
from smartstudy.services import training
from smartstudy.services.context import AppContext
from smartstudy.services.training import run_training


def run(args: argparse.Namespace) -> None:
    with (
        scratch_database(args.postgres_url, "smartstudy_cost", args.template) as url,
        tempfile.TemporaryDirectory() as folder,
    ):
        env = {**os.environ, "SMARTSTUDY_DATABASE_URL": url, "SMARTSTUDY_DATA_DIR": folder}
        if not args.template:
            for command in (
                [
                    "simulate",
                    "cohort",
                    "--students",
                    str(args.students),
                    "--tasks",
                    str(args.tasks),
                ],
                ["train"],
            ):
                subprocess.run(
                    [sys.executable, "-m", "smartstudy.cli", *command],
                    env=env,
                    check=True,
                    capture_output=True,
                )
        settings = Settings(database_url=url, data_dir=folder, training_pause=0.0)
        context = AppContext.from_settings(settings)
        try:
            if args.refit:
                training.REFIT_GROWTH.update(lnirt=0.0, baseline=0.0)
            for k in range(args.trainings):
                cpu, wall = time.process_time(), time.perf_counter()
                job = run_training(context, refit_all=args.refit and k == 0)
                cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
                refits = [n for n in context.predictor.chain if "version" in job.summary.get(n, {})]
                print(
                    f"training {k + 1}: {cpu:.2f} s of CPU, {wall:.2f} s, {job.status}, "
                    f"{job.summary.get('rows')} tasks, refitted: {', '.join(refits) or 'none'}"
                    + "".join(
                        f"; {n}: {job.summary[n]['searched']}"
                        for n in refits
                        if "searched" in job.summary[n]
                    )
                )
        finally:
            context.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_database_options(parser)
    parser.add_argument("--trainings", type=int, default=3)
    parser.add_argument(
        "--refit",
        action="store_true",
        help="refit LNIRT and Baseline in every training (the first one refits everything)",
    )
    run(parser.parse_args())


if __name__ == "__main__":
    main()
