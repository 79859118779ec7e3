"""Time an LNIRT fit on all of credential_form1 and one online person update.

LNIRT (van der Linden 2007, Psychometrika 72(3); R package LNIRT) is fitted by its default
EM on every scored response of the credentialing exam; then the mean time of one
``update(row)`` (the live service's step) is measured over many updates that cycle through
persons, new users and items. Timings depend on the machine and its load: on a small shared
machine they are pessimistic.

    .venv/bin/python benchmarks/lnirt_fit_time.py [--repeats 3] [--updates 20000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

from smartstudy.data.loaders import load_dataset
from smartstudy.models.lnirt import LNIRT


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="number of timed fits")
    parser.add_argument("--updates", type=int, default=20000, help="number of timed updates")
    args = parser.parse_args()

    df = load_dataset("credential_form1")
    print(
        f"credential_form1: {len(df)} responses, {df['user_id'].nunique()} persons, "
        f"{df['item_id'].nunique()} items; {os.cpu_count()} CPU cores visible"
    )
    fit_times = []
    model = LNIRT()
    for _ in range(args.repeats):
        start = time.perf_counter()
        model = LNIRT().fit(df)
        fit_times.append(time.perf_counter() - start)
    print(
        f"fit: median {statistics.median(fit_times):.2f} s, min {min(fit_times):.2f} s, "
        f"max {max(fit_times):.2f} s over {args.repeats} fits "
        f"({model.n_iter_} EM iterations, converged={model.converged_}); target < 30 s"
    )

    rng = np.random.default_rng(0)
    users = list(model.user_index_)[:500] + [f"new-{k}" for k in range(500)]
    items = list(model.item_index_)
    rows = [
        {
            "user_id": users[rng.integers(len(users))],
            "item_id": items[rng.integers(len(items))],
            "correct": int(rng.uniform() < 0.7),
            "rt_seconds": float(np.exp(rng.normal(4.0, 0.6))),
        }
        for _ in range(args.updates)
    ]
    start = time.perf_counter()
    for row in rows:
        model.update(row)
    per_update = (time.perf_counter() - start) / len(rows)
    print(f"online update: mean {per_update * 1e6:.1f} us over {len(rows)} updates; target < 1 ms")
    start = time.perf_counter()
    n_pred = 2000
    for row in rows[:n_pred]:
        model.predict_one(row["user_id"], row["item_id"])
    per_pred = (time.perf_counter() - start) / n_pred
    print(f"predict_one: mean {per_pred * 1e6:.1f} us over {n_pred} calls (pandas validation)")


if __name__ == "__main__":
    main()
