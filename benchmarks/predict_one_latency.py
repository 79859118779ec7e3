"""Latency of one prediction: the models' own ``predict_one`` against the generic path.

Baseline and the app's per-topic LNIRT answer a single request without building a
DataFrame (``predict_one``). The reference is ``LearnerModel.predict_one``, the generic path
every model inherits (a one-row frame through ``predict``), timed in the same run on the same
fitted model and the same 302 requests (300 sampled rows, an unknown user, an unknown item).
Data: ``simulate_app_learners`` with 500 learners of 50 to 350 tasks each (about 100,000
rows). It prints microseconds per call (best of 3), the speed-up, and the largest relative
difference between the two answers.

It also times ``update`` (one completion learnt online, as every serving process does for
every completion) and ``learn_many`` (the same rows learnt in one call, as a training replays
its held-out students and a loaded version catches up; for Baseline it is the loop of
``update``): the model is fitted on four learners in five and learns the fifth's 20,000 or so
attempts in order; the figures are microseconds per attempt (best of 3, each round on a
fresh copy of the fitted model).

    .venv/bin/python benchmarks/predict_one_latency.py
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from functools import partial

import numpy as np

from smartstudy.data.simulate import simulate_app_learners
from smartstudy.models.base import LearnerModel
from smartstudy.models.baseline import Baseline
from smartstudy.models.lnirt import TopicLNIRT

KEYS = ("p_correct", "time_median_s", "time_p10_s", "time_p90_s")


def _per_call(fn: Callable[..., object], probes: list[tuple], reps: int) -> float:
    """Microseconds per call, best of three rounds."""
    best = []
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(reps):
            for probe in probes:
                fn(*probe)
        best.append((time.perf_counter() - started) / (reps * len(probes)))
    return min(best) * 1e6


def main() -> None:
    rng = np.random.default_rng(0)
    data, _ = simulate_app_learners(rng.integers(50, 350, 500).tolist(), seed=1)
    sample = data[["user_id", "item_id", "skill_id"]].sample(300, random_state=0)
    probes = list(sample.itertuples(index=False, name=None))
    probes += [("stranger", probes[0][1], probes[0][2]), ("stranger", "new:item", probes[0][2])]
    print(f"{len(data)} rows, {data['user_id'].nunique()} learners, {len(probes)} requests")
    for name, make in (("Baseline", Baseline), ("TopicLNIRT", TopicLNIRT)):
        model = make().fit(data)
        generic = _per_call(partial(LearnerModel.predict_one, model), probes, 1)
        own = _per_call(model.predict_one, probes, 20)
        differ = max(
            abs(model.predict_one(*p)[k] - LearnerModel.predict_one(model, *p)[k])
            / abs(LearnerModel.predict_one(model, *p)[k])
            for p in probes
            for k in KEYS
        )
        print(
            f"{name}: generic path {generic:.0f} µs, predict_one {own:.0f} µs "
            f"({generic / own:.0f}x), largest relative difference {differ:.1e}"
        )
    held = set(data["user_id"].unique()[::5])
    train, later = data[~data["user_id"].isin(held)], data[data["user_id"].isin(held)]
    frame = later[["user_id", "item_id", "skill_id", "correct", "rt_seconds"]]
    rows = frame.to_dict("records")
    for name, make in (("Baseline", Baseline), ("TopicLNIRT", TopicLNIRT)):
        fitted = make().fit(train).to_bytes()
        best, at_once = math.inf, math.inf
        for _ in range(3):
            model = type(make()).from_bytes(fitted)
            started = time.perf_counter()
            for row in rows:
                model.update(row)
            best = min(best, (time.perf_counter() - started) / len(rows))
            batch = type(make()).from_bytes(fitted)
            started = time.perf_counter()
            batch.learn_many(frame)
            at_once = min(at_once, (time.perf_counter() - started) / len(rows))
        print(
            f"{name}: update {best * 1e6:.0f} µs, learn_many {at_once * 1e6:.1f} µs per attempt "
            f"({len(rows)} attempts learnt in order)"
        )


if __name__ == "__main__":
    main()
