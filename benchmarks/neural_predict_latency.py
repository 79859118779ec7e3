"""NeuralPredictor serving costs: ``predict_one`` for a user with 1,000 completed tasks, and
``update`` (the online step after each completed task).

A model is trained on simulated app data (``simulate_app_learners``: items "topic:difficulty",
skills = topics) in which one user has 1,000 tasks; a second user, unseen in training, then
completes 1,000 tasks through ``update``. For both, ``predict_one`` is timed over many calls
cycling through every topic and difficulty (median and p99 of single calls), and compared with
a one-row ``predict`` (which validates a DataFrame). The features live in per-user counters,
so the cost does not grow with the user's history. Timings depend on the machine and its load.

    .venv/bin/python benchmarks/neural_predict_latency.py [--calls 20000] [--updates 5000]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time

import numpy as np
import pandas as pd

from smartstudy.data.simulate import simulate_app_learners
from smartstudy.models import NeuralPredictor

TARGET_MS = 2.0


def _time_calls(fn, args_list: list[tuple]) -> np.ndarray:
    out = np.empty(len(args_list))
    for k, args in enumerate(args_list):
        start = time.perf_counter()
        fn(*args)
        out[k] = time.perf_counter() - start
    return out * 1e6


def _summary(us: np.ndarray) -> str:
    return (
        f"median {np.median(us):7.1f} us, p99 {np.percentile(us, 99):7.1f} us, "
        f"mean {us.mean():7.1f} us over {len(us)} calls"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=20000, help="timed predict_one calls")
    parser.add_argument("--updates", type=int, default=5000, help="timed update calls")
    args = parser.parse_args()

    df, _ = simulate_app_learners([1000] + [80] * 40, seed=0)
    heavy = df["user_id"].iloc[0]
    start = time.perf_counter()
    model = NeuralPredictor().fit(df)
    print(
        f"trained on {len(df)} simulated tasks ({df['user_id'].nunique()} users; {heavy!r} has "
        f"{int((df['user_id'] == heavy).sum())}) in {time.perf_counter() - start:.1f} s"
    )
    items = sorted(df["item_id"].unique())
    calls = [(heavy, it, it.split(":")[0]) for it in items] * (args.calls // len(items) + 1)
    calls = calls[: args.calls]

    # A user unseen in training completes 1,000 tasks online.
    rng = np.random.default_rng(1)
    rows = [
        {
            "user_id": "online-user",
            "item_id": (it := items[rng.integers(len(items))]),
            "skill_id": it.split(":")[0],
            "correct": int(rng.random() < 0.7),
            "rt_seconds": float(np.exp(rng.normal(5.0, 0.5))),
        }
        for _ in range(1000)
    ]
    upd = _time_calls(model.update, [(r,) for r in rows])

    gc.collect()
    for _ in range(200):  # warm-up
        model.predict_one(*calls[0])
    heavy_us = _time_calls(model.predict_one, calls)
    online_calls = [("online-user", it, sk) for _, it, sk in calls]
    online_us = _time_calls(model.predict_one, online_calls)

    frame_calls = calls[: min(2000, len(calls))]

    def via_frame(user: str, item: str, skill: str) -> None:
        model.predict(
            pd.DataFrame(
                {
                    "user_id": [user],
                    "item_id": [item],
                    "skill_id": [skill],
                    "correct": [np.nan],
                    "order": [0.0],
                }
            )
        )

    frame_us = _time_calls(via_frame, frame_calls)

    # Cost of update once the user and pair exist (the steady state of the live service).
    more = [
        (
            {
                **rows[k % len(rows)],
                "correct": k % 2,
            },
        )
        for k in range(args.updates)
    ]
    upd_steady = _time_calls(model.update, more)

    print(f"predict_one, user with 1,000 tasks from training: {_summary(heavy_us)}")
    print(f"predict_one, user with 1,000 tasks learned online: {_summary(online_us)}")
    print(f"predict on a one-row DataFrame (for comparison):  {_summary(frame_us)}")
    print(f"update, first 1,000 tasks of a new user:          {_summary(upd)}")
    print(f"update, steady state:                             {_summary(upd_steady)}")
    p_med = statistics.median(heavy_us.tolist()) / 1000
    print(
        f"target: predict_one < {TARGET_MS} ms for a user with 1,000 tasks: "
        f"{'met' if p_med < TARGET_MS else 'MISSED'} (median {p_med:.3f} ms)"
    )


if __name__ == "__main__":
    main()
