"""Baseline with and without its learned guessing floor, on every shared data set.

Protocol: ``eval.protocol.run_evaluation`` (the data set's own split where it has one, else
20% of the students held out by the seed), both models fitted on the training students and
every test row predicted one step ahead through the public model contract. Printed per data
set and seed: test log loss, AUC and ECE of each, the floor and prior precision learned, and
the fit time of each on the whole data set (median of three fits, same run).

    .venv/bin/python benchmarks/baseline_floor.py [--datasets mars_ib ...] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import pandas as pd

from smartstudy.data.loaders import load_dataset
from smartstudy.eval.protocol import run_evaluation
from smartstudy.models.baseline import Baseline

DATASETS = ("assistments09", "cognitive_tutor", "credential_form1", "mars_ib")


def _fit_seconds(make: Callable[[], Baseline], data: pd.DataFrame, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        make().fit(data)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    args = parser.parse_args()
    print("| data set | seed | log loss without → with floor | AUC | ECE | floor | precision |")
    print("|---|---|---|---|---|---|---|")
    for name in args.datasets:
        for seed in args.seeds:
            models = {"without": Baseline(learn_guess_floor=False), "with": Baseline()}
            report = run_evaluation(name, models, seed=seed)
            res = {r.name: r for r in report.results}
            a, b = res["without"], res["with"]
            fitted = models["with"]
            print(
                f"| {name} | {seed} | {a.log_loss:.5f} → {b.log_loss:.5f} "
                f"| {a.auc:.4f} → {b.auc:.4f} | {a.ece:.4f} → {b.ece:.4f} "
                f"| {fitted.guess_floor_:.2f} | {fitted.user_precision_:.2f} |",
                flush=True,
            )
        data = load_dataset(name)
        without = _fit_seconds(lambda: Baseline(learn_guess_floor=False), data)
        with_floor = _fit_seconds(Baseline, data)
        print(
            f"| {name} | fit on all {len(data):,} rows | {without:.2f} s → {with_floor:.2f} s "
            f"(×{with_floor / without:.1f}) | | | | |",
            flush=True,
        )


if __name__ == "__main__":
    main()
