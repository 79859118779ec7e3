"""Latency of one online BKT mastery update, in process: the live service's step.

Measures ``smartstudy.models.bkt.core.update_mastery`` alone (Bayes' rule and the learning
transition of Corbett & Anderson 1995 on plain floats) and ``BKT.update(row)`` (row checks,
the (user, skill) lookup and the update) on a model fitted to the ``train`` split of
assistments09_dkt, over rows that cycle through known learners, new learners and skills.
Target: under 50 us per update. Timings depend on the machine and its load.

    .venv/bin/python benchmarks/bkt_update_latency.py [--updates 200000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from smartstudy.data.loaders import load_dataset
from smartstudy.models.bkt import BKT
from smartstudy.models.bkt.core import update_mastery

TARGET_US = 50.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--updates", type=int, default=200_000, help="updates per repeat")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats")
    args = parser.parse_args()

    df = load_dataset("assistments09_dkt")
    model = BKT().fit(df[df["split"] == "train"])
    rng = np.random.default_rng(0)
    users = sorted({u for u, _ in model.mastery_})[:1000] + [f"new-{k}" for k in range(1000)]
    skills = sorted(model.params_)
    rows = [
        {
            "user_id": users[rng.integers(len(users))],
            "item_id": skills[rng.integers(len(skills))],
            "correct": int(rng.uniform() < 0.65),
        }
        for _ in range(args.updates)
    ]
    for row in rows:
        row["skill_id"] = row["item_id"]
    params = [model.params_[r["skill_id"]] for r in rows]
    outcomes = [r["correct"] for r in rows]

    core_us, model_us = [], []
    for _ in range(args.repeats):
        p = 0.1
        start = time.perf_counter()
        for correct, par in zip(outcomes, params, strict=True):
            p = update_mastery(p, correct, par)
        core_us.append((time.perf_counter() - start) / len(rows) * 1e6)
        start = time.perf_counter()
        for row in rows:
            model.update(row)
        model_us.append((time.perf_counter() - start) / len(rows) * 1e6)

    print(
        f"core.update_mastery: median {statistics.median(core_us):.2f} us, "
        f"max {max(core_us):.2f} us per update ({args.repeats} x {len(rows)} updates)"
    )
    print(
        f"BKT.update(row):     median {statistics.median(model_us):.2f} us, "
        f"max {max(model_us):.2f} us per update ({args.repeats} x {len(rows)} updates; "
        f"{len(model.mastery_)} (user, skill) masteries held); target < {TARGET_US:.0f} us"
    )


if __name__ == "__main__":
    main()
