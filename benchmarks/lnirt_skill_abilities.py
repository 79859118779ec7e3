"""What LNIRT's skill abilities cost: online update and predict_one with and without them.

LNIRT is fitted on every row of cognitive_tutor twice, with its skill abilities learned
(``skill_sd_`` chosen by replay) and with them off (``learn_skill_sd=False``, the reference),
and the mean time of one ``update(row)`` and one ``predict_one`` is measured over the same
random requests (known and new students, random items). With ``--scale``, a synthetic set of
400,000 rows, 20,000 students and 2,000 skills (four per student) is fitted too, to show the
fit time, the number of stored (student, skill) pairs and the peak memory. Timings depend on
the machine and its load.

    .venv/bin/python benchmarks/lnirt_skill_abilities.py [--requests 5000] [--scale]
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import pandas as pd

from smartstudy.data.loaders import load_dataset
from smartstudy.models.lnirt import LNIRT


def _requests(model: LNIRT, n: int) -> list[dict]:
    rng = np.random.default_rng(0)
    users = list(model.user_index_)[:200] + [f"new-{k}" for k in range(200)]
    items = list(model.item_index_)
    return [
        {
            "user_id": users[rng.integers(len(users))],
            "item_id": items[rng.integers(len(items))],
            "correct": int(rng.uniform() < 0.7),
            "rt_seconds": float(np.exp(rng.normal(3.0, 0.6))),
        }
        for _ in range(n)
    ]


def _latency(model: LNIRT, rows: list[dict]) -> tuple[float, float]:
    """Mean microseconds of ``predict_one`` and of ``update`` over ``rows``."""
    start = time.perf_counter()
    for row in rows:
        model.predict_one(row["user_id"], row["item_id"])
    predict = (time.perf_counter() - start) / len(rows) * 1e6
    start = time.perf_counter()
    for row in rows:
        model.update(row)
    return predict, (time.perf_counter() - start) / len(rows) * 1e6


def _synthetic(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n_users, n_items, n_skills, n = 20_000, 8_000, 2_000, 400_000
    users = rng.integers(n_users, size=n)
    own_skills = rng.integers(n_skills, size=(n_users, 4))
    skill = own_skills[users, rng.integers(4, size=n)]
    items = skill + n_skills * rng.integers(n_items // n_skills, size=n)
    theta, b = rng.normal(size=n_users), rng.normal(size=n_items)
    delta = rng.normal(0.0, 0.6, (n_users, 4))
    which = (own_skills[users] == skill[:, None]).argmax(axis=1)
    z = theta[users] - b[items] + delta[users, which]
    return pd.DataFrame(
        {
            "user_id": users.astype(str),
            "item_id": items.astype(str),
            "skill_id": skill.astype(str),
            "correct": (rng.random(n) < 1.0 / (1.0 + np.exp(-1.7 * z))).astype(float),
            "rt_seconds": np.exp(rng.normal(3.0, 0.5, n)),
            "order": np.arange(n),
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=5000, help="timed requests per model")
    parser.add_argument("--scale", action="store_true", help="also fit the synthetic set")
    args = parser.parse_args()

    df = load_dataset("cognitive_tutor")
    print(f"cognitive_tutor: {len(df)} rows, {df['skill_id'].nunique()} skills")
    timings = {}
    for label, params in (("skill abilities", {}), ("reference (off)", {"learn_skill_sd": False})):
        model = LNIRT(**params).fit(df)
        timings[label] = _latency(model, _requests(model, args.requests))
        predict, update = timings[label]
        print(
            f"{label:16s} skill_sd_ {model.skill_sd_:.2f}: predict_one {predict:6.1f} us, "
            f"update {update:6.1f} us"
        )
    (p1, u1), (p0, u0) = timings["skill abilities"], timings["reference (off)"]
    print(f"ratio to the reference: predict_one {p1 / p0:.2f}x, update {u1 / u0:.2f}x")

    if args.scale:
        data = _synthetic()
        start = time.perf_counter()
        model = LNIRT().fit(data)
        fit_s = time.perf_counter() - start
        pairs = len(model.skill_abilities())
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
        print(
            f"synthetic: {len(data)} rows, 20,000 students, 2,000 skills: fit {fit_s:.1f} s, "
            f"skill_sd_ {model.skill_sd_:.2f}, {pairs} (student, skill) pairs stored "
            f"(a dense table would hold {20_000 * 2_000:,}), peak memory {peak:.2f} GB, "
            f"artifact {len(model.to_bytes()) / 1e6:.1f} MB"
        )


if __name__ == "__main__":
    main()
