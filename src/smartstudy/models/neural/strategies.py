"""Remedies against one dominant user (seed 002), as small strategy objects.

One user with 92% of the rows saturated the original model's user embedding. Each strategy of
:class:`~smartstudy.models.neural.NeuralPredictor` says how it changes the hyperparameters
(``adjust``), how rows are weighted (``row_weights``), which rows each training stage draws
(``stages``) and whether per-user heads are fitted after training (``user_heads``):

- ``inverse_frequency`` (default): row weights ∝ 1 / rows_of_user ** power, mean 1;
- ``l2``: 10× stronger L2 on embeddings, half-size user embedding, counts capped at 50;
- ``balanced``: each epoch samples at most ``max_per_user`` rows per user;
- ``progressive``: pre-train on each user's ``max_per_user`` most recent rows, then fine-tune on
  all rows at ``finetune_lr_factor`` × the learning rate;
- ``per_user_heads``: a shared network without user embedding, then per-user heads;
- ``none``: plain training, for comparison.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

# "l2" strategy: embedding L2 multiplier and count cap.
L2_STRONG_FACTOR = 10.0
L2_COUNT_CAP = 50.0

#: Rows to train on in an epoch: a function of (epoch, torch generator) returning row indices.
RowSampler = Callable[[int, Any], np.ndarray]


@dataclass(frozen=True)
class Effective:
    """Hyperparameters after a strategy's adjustments."""

    d_user: int
    l2: float
    count_cap: float


@dataclass(frozen=True)
class Stage:
    """One training stage: the rows each epoch draws and the learning-rate factor."""

    name: str
    rows: RowSampler
    lr_factor: float = 1.0


class TrainingRows:
    """The fit rows of a training run and the samplers the strategies draw from them."""

    def __init__(self, ucodes: np.ndarray, fit_rows: np.ndarray, max_per_user: int) -> None:
        self.ucodes = ucodes
        self.train_rows = np.flatnonzero(fit_rows)
        self.max_per_user = max_per_user
        # Position of each row among its user's fit rows, counted from the most recent.
        from_end = np.full(len(ucodes), -1)
        from_end[self.train_rows] = (
            pd.Series(self.train_rows)
            .groupby(ucodes[self.train_rows])
            .cumcount(ascending=False)
            .to_numpy()
        )
        self.recent_rows = self.train_rows[from_end[self.train_rows] < max_per_user]

    def all_rows(self, _epoch: int, _gen: Any) -> np.ndarray:
        return self.train_rows

    def recent(self, _epoch: int, _gen: Any) -> np.ndarray:
        """Each user's ``max_per_user`` most recent fit rows."""
        return self.recent_rows

    def balanced(self, _epoch: int, gen: Any) -> np.ndarray:
        """At most ``max_per_user`` fit rows per user, drawn afresh each epoch."""
        import torch

        rows = self.train_rows
        keys = torch.rand(len(rows), generator=gen).numpy()
        order = np.lexsort((keys, self.ucodes[rows]))
        sorted_codes = self.ucodes[rows][order]
        rank = pd.Series(sorted_codes).groupby(sorted_codes).cumcount().to_numpy()
        return np.sort(rows[order][rank < self.max_per_user])


class Strategy:
    """Plain training (``"none"``); the other strategies override what they change."""

    name = "none"
    #: Fit a per-user logit gain and bias and a time offset after training.
    user_heads = False

    def adjust(self, d_user: int, l2: float, count_cap: float) -> Effective:
        return Effective(d_user=d_user, l2=l2, count_cap=count_cap)

    def row_weights(
        self, ucodes: np.ndarray, fit_rows: np.ndarray, frequency_power: float
    ) -> np.ndarray:
        return np.ones(len(ucodes))

    def stages(self, rows: TrainingRows, finetune_lr_factor: float) -> list[Stage]:
        return [Stage("train", rows.all_rows)]


class InverseFrequency(Strategy):
    name = "inverse_frequency"

    def row_weights(
        self, ucodes: np.ndarray, fit_rows: np.ndarray, frequency_power: float
    ) -> np.ndarray:
        counts = np.bincount(ucodes[fit_rows], minlength=int(ucodes.max()) + 1).astype(float)
        counts_all = np.bincount(ucodes).astype(float)
        # Validation rows use their user's total (they are not in the fit counts).
        per_user = np.where(counts > 0, counts, counts_all)
        w = per_user[ucodes] ** (-float(frequency_power))
        return w / w[fit_rows].mean()


class StrongL2(Strategy):
    name = "l2"

    def adjust(self, d_user: int, l2: float, count_cap: float) -> Effective:
        return Effective(
            d_user=max(1, d_user // 2) if d_user else 0,
            l2=max(l2, 1e-3) * L2_STRONG_FACTOR,
            count_cap=min(count_cap, L2_COUNT_CAP),
        )


class Balanced(Strategy):
    name = "balanced"

    def stages(self, rows: TrainingRows, finetune_lr_factor: float) -> list[Stage]:
        return [Stage("train", rows.balanced)]


class Progressive(Strategy):
    name = "progressive"

    def stages(self, rows: TrainingRows, finetune_lr_factor: float) -> list[Stage]:
        return [
            Stage("pretrain", rows.recent),
            Stage("finetune", rows.all_rows, finetune_lr_factor),
        ]


class PerUserHeads(Strategy):
    name = "per_user_heads"
    user_heads = True

    def adjust(self, d_user: int, l2: float, count_cap: float) -> Effective:
        return Effective(d_user=0, l2=l2, count_cap=count_cap)


STRATEGY_CLASSES: dict[str, type[Strategy]] = {
    cls.name: cls
    for cls in (InverseFrequency, StrongL2, Balanced, Progressive, PerUserHeads, Strategy)
}
#: Names of the strategies, the default first.
STRATEGIES: tuple[str, ...] = tuple(STRATEGY_CLASSES)


def strategy(name: str) -> Strategy:
    """The strategy called ``name``."""
    if name not in STRATEGY_CLASSES:
        raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}, got {name!r}")
    return STRATEGY_CLASSES[name]()
