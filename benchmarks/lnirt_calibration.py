"""LNIRT with and without its cross-fitted recalibration of the chances, in the same run.

Protocol: ``eval.protocol.run_evaluation`` (split by student, 20% of the users held out per
seed, or the data set's own split), every test row predicted one step ahead through the
public model contract. ``LNIRT()`` (which learns the map, ``models/lnirt/calibration.py``)
against ``LNIRT(learn_calibration=False)``, both fitted on the same training students. Prints
per data set and seed: log loss, ECE and AUC of each, the map learned and both fit times,
then the means.

    .venv/bin/python benchmarks/lnirt_calibration.py [--datasets cognitive_tutor ...]
        [--seeds 0 1 2 3 4]

``--datasets assistments09`` uses its own (Gervet et al.) split once, whatever the seeds;
its fits take about a minute without the map and two to three with it.
"""

from __future__ import annotations

import argparse
import statistics
from typing import Any

from smartstudy.eval.protocol import run_evaluation
from smartstudy.models.lnirt import LNIRT

DATASETS = ("cognitive_tutor", "mars_ib", "credential_form1")
OWN_SPLIT = ("assistments09", "assistments09_dkt")
KEYS = ("log_loss", "ece", "auc", "fit_seconds")


def one_split(name: str, seed: int) -> tuple[dict[str, Any], dict[str, Any], tuple]:
    calibrated = LNIRT()
    report = run_evaluation(
        name,
        {"map": calibrated, "plain": LNIRT(learn_calibration=False)},
        split="own" if name in OWN_SPLIT else "student",
        seed=seed,
    )
    rows = {r["name"]: r for r in report.to_dict()["results"]}
    return rows["map"], rows["plain"], tuple(round(v, 3) for v in calibrated.calibration_)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    args = parser.parse_args()
    for name in args.datasets:
        seeds = [0] if name in OWN_SPLIT else args.seeds
        runs = []
        for seed in seeds:
            mapped, plain, calibration = one_split(name, seed)
            runs.append((mapped, plain))
            print(
                f"{name} seed {seed}: map (c0, c1) = {calibration}; "
                + "; ".join(f"{k} {plain[k]:.4f} -> {mapped[k]:.4f}" for k in KEYS),
                flush=True,
            )
        means = {
            k: (statistics.mean(p[k] for _, p in runs), statistics.mean(m[k] for m, _ in runs))
            for k in KEYS
        }
        print(
            f"{name} mean of {len(runs)}: "
            + "; ".join(f"{k} {a:.4f} -> {b:.4f}" for k, (a, b) in means.items())
        )


if __name__ == "__main__":
    main()
