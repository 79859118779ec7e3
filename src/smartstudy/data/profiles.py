"""Learner profiles from the original system's notes, as plain data (no database).

``bulk_user_profile`` draws the "bulk user" of seed 000: 300 Calculus tasks (easy 85% at
about 60 s, medium 65% at about 220 s, hard 35% at about 450 s) and 300 Microeconomics tasks
(75% at about 80 s, 55% at about 250 s, 30% at about 550 s), 100 per difficulty, spread
over 30 days.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: (subject, topic, difficulty) -> (success rate, typical seconds), from seed 000.
BULK_USER_TARGETS: dict[tuple[str, str, str], tuple[float, float]] = {
    ("Mathematics", "Calculus", "easy"): (0.85, 60.0),
    ("Mathematics", "Calculus", "medium"): (0.65, 220.0),
    ("Mathematics", "Calculus", "hard"): (0.35, 450.0),
    ("Economics", "Microeconomics", "easy"): (0.75, 80.0),
    ("Economics", "Microeconomics", "medium"): (0.55, 250.0),
    ("Economics", "Microeconomics", "hard"): (0.30, 550.0),
}


def bulk_user_profile(
    *, per_difficulty: int = 100, days: float = 30.0, time_log_sd: float = 0.35, seed: int = 0
) -> pd.DataFrame:
    """The bulk user's tasks, oldest first.

    Columns: ``subject, topic, difficulty, correct (0/1), rt_seconds, hours_ago``. Success is
    a Bernoulli draw at the target rate; the time is log-normal with the typical time as its
    median.
    """
    rng = np.random.default_rng(seed)
    frames = []
    for (subject, topic, difficulty), (rate, seconds) in BULK_USER_TARGETS.items():
        frames.append(
            pd.DataFrame(
                {
                    "subject": subject,
                    "topic": topic,
                    "difficulty": difficulty,
                    "correct": (rng.random(per_difficulty) < rate).astype(int),
                    "rt_seconds": np.round(
                        seconds * np.exp(rng.normal(0.0, time_log_sd, per_difficulty)), 1
                    ),
                }
            )
        )
    out = pd.concat(frames, ignore_index=True)
    out["hours_ago"] = rng.uniform(0.1, days * 24.0, len(out))
    return out.sort_values("hours_ago", ascending=False, ignore_index=True)
