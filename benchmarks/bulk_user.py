"""Seed 000's bulk user through the service: 100 tasks in each of six (topic, difficulty)
cells, a training, then the prediction for each cell against what the user did.

Acceptance 2 of issue 10: every predicted chance within 0.05 of the observed rate, every
predicted median time within 15% of the observed median. The table also shows the predicted
80% range and the share of the user's own times in the cell that fall inside it (the promise
of the study page: "the range is where 8 of 10 of your times should fall"). Runs on a scratch
SQLite database.

    python benchmarks/bulk_user.py [--seed 0]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from sqlalchemy import select

from smartstudy.config import Settings
from smartstudy.jobs import SyncRunner
from smartstudy.services import accounts
from smartstudy.services.context import AppContext
from smartstudy.services.simulation import simulate_bulk_user
from smartstudy.store.orm import Topic
from smartstudy.store.repositories.tasks import cell_outcomes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(data_dir=Path(folder), secret_key="bench-" + "x" * 40)
        settings.retrain_every = 1_000_000  # one training at the end, as in seed 000
        context = AppContext.from_settings(settings)
        context.migrate()
        context.runner = SyncRunner()
        try:
            simulate_bulk_user(context, "bulk@example.com", seed=args.seed)
            print_table(context)
        finally:
            context.close()


def print_table(context: AppContext) -> None:
    columns = ["topic", "difficulty", "observed rate", "predicted", "observed median s"]
    columns += ["predicted s", "model", "within", "predicted 80% range s", "own times inside"]
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    with context.sessions() as session:
        user = accounts.get_user_by_email(session, "bulk@example.com")
        assert user is not None
        for topic in session.scalars(select(Topic).order_by(Topic.name)):
            for difficulty in ("easy", "medium", "hard"):
                rows = cell_outcomes(session, user.id, topic.id, difficulty)
                if not rows:
                    continue
                rate = float(np.mean([r[0] for r in rows]))
                times = np.array([r[1] for r in rows], dtype=float)
                median = float(np.median(times))
                p = context.predictor.predict(session, user.id, topic.id, difficulty)
                ok = (
                    abs(p.p_correct - rate) <= 0.05
                    and abs(p.time_median_s - median) <= 0.15 * median
                )
                cells = [topic.name, difficulty, f"{rate:.2f}", f"{p.p_correct:.2f}"]
                cells += [f"{median:.0f}", f"{p.time_median_s:.0f}", p.model_name]
                cells.append("yes" if ok else "NO")
                cells.append(f"{p.time_p10_s:.0f}–{p.time_p90_s:.0f}")
                inside = (times >= p.time_p10_s) & (times <= p.time_p90_s)
                cells.append(f"{inside.mean():.2f}")
                print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
