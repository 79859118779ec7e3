"""A small class through the service: what the chain serves before anything is held out.

With fewer than ``registry.MIN_USERS_FOR_HOLDOUT`` students no training holds anyone out, so
nothing validates the families against each other. This streams a few learners of each
shared data set with times through the service path (``services.replay``: tasks created
with their prediction stored, then completed, a training every ``--retrain-every``
completions) twice on fresh databases:

- **served**: the chain as the app serves it (with nothing held out, its last family,
  Baseline, answers first; the others are asked for the record);
- **default order**: the chain's families asked in their default order (LNIRT, then the
  neural model, then Baseline), which is what the app served before 2026-12-03.

It prints both per stream (data set, seed, class size) and their means: log loss, ECE,
RMSE of log time, 80% coverage and swing p95, as in the replay evaluation.

    .venv/bin/python benchmarks/small_class.py [--sizes 3 6] [--seeds 0 1 2]
        [--max-attempts 40] [--retrain-every 20] [--datasets mars_ib ...]
"""

from __future__ import annotations

import argparse

import numpy as np

from smartstudy.services import replay
from smartstudy.services.predictor import PredictionService

COLUMNS = ("log_loss", "ece", "rmse_log_time", "coverage80", "swing_p95")


def one_stream(name: str, size: int, seed: int, args: argparse.Namespace) -> dict[str, dict]:
    """Both configurations' scores on one stream of ``size`` learners of data set ``name``."""
    stream = replay.build_stream(
        replay.replay_data(name), learners=size, seed=seed, max_attempts=args.max_attempts
    )
    scores = {}
    for label, chain in (("served", None), ("default order", PredictionService().chain)):
        with replay.scratch_database() as url:
            run = replay.replay_chain(stream, chain, url, args.retrain_every, f"Class {name}")
        result = replay.score(stream.rows, run.predictions)
        scores[label] = {**result["all"], "swing_p95": result["swing_p95"]}
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[3, 6])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--max-attempts", type=int, default=40)
    parser.add_argument("--retrain-every", type=int, default=20)
    parser.add_argument("--datasets", nargs="+", default=list(replay.REPLAY_DATASETS))
    args = parser.parse_args()
    print("| data set | learners | seed | tasks | configuration | " + " | ".join(COLUMNS) + " |")
    print("|---" * (5 + len(COLUMNS)) + "|")
    totals: dict[str, list[list[float]]] = {"served": [], "default order": []}
    for name in args.datasets:
        for size in args.sizes:
            for seed in args.seeds:
                for label, m in one_stream(name, size, seed, args).items():
                    values = [float(m[c]) for c in COLUMNS]
                    totals[label].append(values)
                    cells = " | ".join(f"{v:.3f}" for v in values)
                    print(f"| {name} | {size} | {seed} | {m['n']} | {label} | {cells} |")
    for label, rows in totals.items():
        means = " | ".join(f"{v:.3f}" for v in np.mean(rows, axis=0))
        print(f"| mean of {len(rows)} streams | | | | {label} | {means} |")


if __name__ == "__main__":
    main()
