"""The dominant-user scenario of seed 002: does one heavy user saturate the neural model?

The original system had one user with 846 of 917 tasks (92 %). Its neural model gave that
user probabilities of almost exactly 0 or 1, a handful of distinct values, predictions that
could drop after a correct answer, and nearly constant predictions for everyone else. This
module rebuilds that situation with :func:`smartstudy.data.simulate.simulate_app_learners`
(app terms: items "topic:difficulty", skills = topics, times in seconds) and measures each
``NeuralPredictor`` strategy on it.

API (used by ``smartstudy evaluate --scenario dominant-user``)::

    data = dominant_user_data(seed=0)              # the 917 tasks, one row per attempt
    results = run_dominant_user(strategies=None, seed=0)   # one DominantUserResult each
    print(format_dominant_user_table(results))     # plain-text table, one line per strategy

Protocol: each user's last ``HOLDOUT_FRACTION`` of attempts (at least one) is held out; the
model is fitted on the rest and predicts the held-out attempts one step ahead (AUC and log
loss, pooled over users). Then a copy of the model learns the held-out attempts with
``update`` and the dominant user keeps practising for ``N_NEXT`` more simulated tasks
(predict_one, then update, across topics and difficulties).

The four checks, as properties of :class:`DominantUserResult`:

1. ``check_saturation``: fewer than 1 % of the dominant user's predictions (held-out and next
   100) lie outside [0.02, 0.98];
2. ``check_distinct``: the next 100 predictions take at least 20 distinct values rounded to
   0.01;
3. ``check_monotone``: on the dominant user's most practised topic and difficulty, 5
   consecutive correct answers never lower the predicted probability and 5 consecutive wrong
   answers never raise it (checked on two copies of the model, tolerance 1e-12);
4. ``check_spread``: the other users' predictions spread at least half as widely as the
   dominant user's: the mean over the other users of the standard deviation of their
   predictions over every topic x difficulty is at least 0.5 times the dominant user's.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from smartstudy.data.simulate import APP_DIFFICULTIES, APP_TOPICS, simulate_app_learners
from smartstudy.eval.metrics import auc, log_loss
from smartstudy.models.neural import STRATEGIES, NeuralPredictor

DOMINANT_USER = "bulk"
#: Users and task counts of seed 002 (bulk 846 of 917 tasks).
SCENARIO_USERS: tuple[tuple[str, int], ...] = (
    ("bulk", 846),
    ("you2", 59),
    ("nigag", 9),
    ("asss77", 3),
)
HOLDOUT_FRACTION = 0.2
N_NEXT = 100
RUN_LENGTH = 5
SATURATION_BOUNDS = (0.02, 0.98)
MAX_SATURATED_SHARE = 0.01
MIN_DISTINCT = 20
MIN_SPREAD_RATIO = 0.5
MONOTONE_TOLERANCE = 1e-12


@dataclass
class DominantUserResult:
    """One strategy's figures on the dominant-user scenario (see the module docstring)."""

    strategy: str
    auc: float
    log_loss: float
    saturated_share: float
    distinct_next: int
    correct_run: list[float]
    wrong_run: list[float]
    spread_dominant: float
    spread_others: float
    fit_seconds: float
    n_dominant_predictions: int = 0
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def monotone_correct(self) -> bool:
        """Probability never decreases along the run of correct answers."""
        return bool(np.all(np.diff(self.correct_run) >= -MONOTONE_TOLERANCE))

    @property
    def monotone_wrong(self) -> bool:
        """Probability never increases along the run of wrong answers."""
        return bool(np.all(np.diff(self.wrong_run) <= MONOTONE_TOLERANCE))

    @property
    def check_saturation(self) -> bool:
        return self.saturated_share < MAX_SATURATED_SHARE

    @property
    def check_distinct(self) -> bool:
        return self.distinct_next >= MIN_DISTINCT

    @property
    def check_monotone(self) -> bool:
        return self.monotone_correct and self.monotone_wrong

    @property
    def check_spread(self) -> bool:
        return self.spread_others >= MIN_SPREAD_RATIO * self.spread_dominant

    @property
    def passed(self) -> bool:
        """All four checks hold."""
        return (
            self.check_saturation
            and self.check_distinct
            and self.check_monotone
            and (self.check_spread)
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain values (JSON-ready), including the four checks."""
        return {
            "strategy": self.strategy,
            "auc": self.auc,
            "log_loss": self.log_loss,
            "saturated_share": self.saturated_share,
            "distinct_next": self.distinct_next,
            "correct_run": list(self.correct_run),
            "wrong_run": list(self.wrong_run),
            "spread_dominant": self.spread_dominant,
            "spread_others": self.spread_others,
            "fit_seconds": self.fit_seconds,
            "checks": {
                "saturation": self.check_saturation,
                "distinct": self.check_distinct,
                "monotone": self.check_monotone,
                "spread": self.check_spread,
            },
            "passed": self.passed,
        }


def _scenario_frames(seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(data, the dominant user's next N_NEXT tasks) from one simulation."""
    names = [u for u, _ in SCENARIO_USERS]
    counts = [n + (N_NEXT if u == DOMINANT_USER else 0) for u, n in SCENARIO_USERS]
    frame, _ = simulate_app_learners(counts, user_ids=names, seed=seed)
    n_dom = dict(SCENARIO_USERS)[DOMINANT_USER]
    future = (frame["user_id"] == DOMINANT_USER) & (frame["order"] >= n_dom)
    return frame[~future].reset_index(drop=True), frame[future].reset_index(drop=True)


def dominant_user_data(seed: int = 0) -> pd.DataFrame:
    """The scenario's tasks: "bulk" with 846, "you2" 59, "nigag" 9 and "asss77" 3.

    Columns ``user_id, item_id ("topic:difficulty"), skill_id (topic), correct, rt_seconds,
    order``; sorted by user, then order.
    """
    return _scenario_frames(seed)[0]


def split_later_attempts(
    df: pd.DataFrame, fraction: float = HOLDOUT_FRACTION
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hold out each user's last ``round(fraction * n)`` attempts (at least one each)."""
    ranked = df.sort_values(["user_id", "order"], kind="stable")
    from_end = ranked.groupby("user_id").cumcount(ascending=False)
    n = ranked.groupby("user_id")["order"].transform("size")
    hold = np.maximum(np.round(fraction * n), 1)
    test = from_end < hold
    return ranked[~test].copy(), ranked[test].copy()


def _std(values: Sequence[float]) -> float:
    return float(np.std(np.asarray(values, dtype=float))) if len(values) else 0.0


def _grid(model: NeuralPredictor, user: str, topics: Sequence[str]) -> list[float]:
    return [
        model.predict_one(user, f"{t}:{d}", t)["p_correct"]
        for t in topics
        for d in APP_DIFFICULTIES
    ]


def _run(model: NeuralPredictor, user: str, item: str, skill: str, correct: int) -> list[float]:
    out = [model.predict_one(user, item, skill)["p_correct"]]
    for _ in range(RUN_LENGTH):
        median = model.predict_one(user, item, skill)["time_median_s"]
        model.update(
            {
                "user_id": user,
                "item_id": item,
                "skill_id": skill,
                "correct": correct,
                "rt_seconds": median,
            }
        )
        out.append(model.predict_one(user, item, skill)["p_correct"])
    return out


def evaluate_strategy(
    strategy: str,
    train: pd.DataFrame,
    test: pd.DataFrame,
    future: pd.DataFrame,
    *,
    seed: int = 0,
    model_params: Mapping[str, Any] | None = None,
) -> DominantUserResult:
    """Fit one strategy on ``train`` and measure it (see the module docstring)."""
    params = {"seed": seed, **dict(model_params or {}), "strategy": strategy}
    start = time.perf_counter()
    model = NeuralPredictor(**params).fit(train)
    fit_seconds = time.perf_counter() - start

    pred = model.predict(test)
    y = test["correct"].to_numpy(dtype=float)
    p = pred["p_correct"].to_numpy(dtype=float)
    is_dom = (test["user_id"] == DOMINANT_USER).to_numpy()

    # Continue online: learn the held-out attempts, then the dominant user's next tasks.
    live = NeuralPredictor.from_bytes(model.to_bytes())
    for row in test.sort_values(["user_id", "order"]).to_dict("records"):
        live.update(row)
    topics = sorted(set(train["skill_id"].astype(str)) | set(APP_TOPICS))
    users = [u for u, _ in SCENARIO_USERS]
    spreads = {u: _std(_grid(live, u, topics)) for u in users}
    next_p = []
    for row in future.sort_values("order").to_dict("records"):
        next_p.append(
            live.predict_one(row["user_id"], row["item_id"], row["skill_id"])["p_correct"]
        )
        live.update(row)

    # Monotonicity on the dominant user's most practised topic and difficulty.
    dom_rows = pd.concat([train, test, future])
    dom_rows = dom_rows[dom_rows["user_id"] == DOMINANT_USER]
    item = str(dom_rows["item_id"].value_counts().sort_index().idxmax())
    skill = item.split(":", 1)[0]
    blob = live.to_bytes()
    correct_run = _run(NeuralPredictor.from_bytes(blob), DOMINANT_USER, item, skill, 1)
    wrong_run = _run(NeuralPredictor.from_bytes(blob), DOMINANT_USER, item, skill, 0)

    dom_p = np.concatenate([p[is_dom], np.asarray(next_p)])
    lo, hi = SATURATION_BOUNDS
    others = [spreads[u] for u in users if u != DOMINANT_USER]
    return DominantUserResult(
        strategy=strategy,
        auc=auc(y, p),
        log_loss=log_loss(y, p),
        saturated_share=float(np.mean((dom_p < lo) | (dom_p > hi))),
        distinct_next=len({round(v, 2) for v in next_p}),
        correct_run=correct_run,
        wrong_run=wrong_run,
        spread_dominant=spreads[DOMINANT_USER],
        spread_others=float(np.mean(others)),
        fit_seconds=fit_seconds,
        n_dominant_predictions=len(dom_p),
        details={
            "monotone_item": item,
            "spread_per_user": spreads,
            "dominant_p_range": (float(dom_p.min()), float(dom_p.max())),
            "train_info": dict(model.train_info_),
        },
    )


def run_dominant_user(
    strategies: Sequence[str] | None = None,
    seed: int = 0,
    model_params: Mapping[str, Any] | None = None,
) -> list[DominantUserResult]:
    """Train every strategy (default: all of ``STRATEGIES``) on the scenario; one result each.

    ``seed`` seeds the simulation and the models; ``model_params`` are extra
    ``NeuralPredictor`` hyperparameters (e.g. fewer epochs in tests).
    """
    chosen = list(STRATEGIES if strategies is None else strategies)
    unknown = [s for s in chosen if s not in STRATEGIES]
    if unknown:
        raise ValueError(f"unknown strategies {unknown}; choose from {', '.join(STRATEGIES)}")
    data, future = _scenario_frames(seed)
    train, test = split_later_attempts(data)
    return [
        evaluate_strategy(s, train, test, future, seed=seed, model_params=model_params)
        for s in chosen
    ]


def format_dominant_user_table(results: Sequence[DominantUserResult]) -> str:
    """A plain-text table: one line per strategy, the figures and the four checks."""
    header = (
        f"{'strategy':<18} {'AUC':>6} {'logloss':>7} {'sat%':>6} {'distinct':>8} "
        f"{'mono+':>5} {'mono-':>5} {'spread dom':>10} {'spread oth':>10} {'fit s':>6}  checks"
    )
    lines = [
        "Dominant-user scenario (seed 002): bulk 846, you2 59, nigag 9, asss77 3 tasks; "
        f"last {HOLDOUT_FRACTION:.0%} of each user held out",
        header,
        "-" * len(header),
    ]
    for r in results:
        marks = "".join(
            "Y" if ok else "n"
            for ok in (r.check_saturation, r.check_distinct, r.check_monotone, r.check_spread)
        )
        lines.append(
            f"{r.strategy:<18} {r.auc:>6.3f} {r.log_loss:>7.3f} {100 * r.saturated_share:>5.1f}% "
            f"{r.distinct_next:>8d} {'yes' if r.monotone_correct else 'NO':>5} "
            f"{'yes' if r.monotone_wrong else 'NO':>5} {r.spread_dominant:>10.3f} "
            f"{r.spread_others:>10.3f} {r.fit_seconds:>6.1f}  {marks}"
            f"{'  PASS' if r.passed else '  FAIL'}"
        )
    lines.append(
        "checks: saturation (<1% of bulk's predictions outside [0.02, 0.98]), distinct "
        "(>=20 of the next 100 at 0.01), monotone (5 correct never lower, 5 wrong never "
        "raise), spread (others' std >= 0.5 x bulk's)"
    )
    return "\n".join(lines)


__all__ = [
    "DOMINANT_USER",
    "SCENARIO_USERS",
    "DominantUserResult",
    "dominant_user_data",
    "evaluate_strategy",
    "format_dominant_user_table",
    "run_dominant_user",
    "split_later_attempts",
]
