"""Training loop of :class:`~smartstudy.models.neural.NeuralPredictor` (PyTorch, CPU).

One Adam loop trains the correctness head (weighted binary cross-entropy) and the log-time
head (weighted Gaussian negative log-likelihood) together. The two heads share no
parameters, so each has its own Adam optimiser and early-stopping snapshot: the weights of
the epoch with the lowest validation loss of that head. An epoch without improvement halves
that head's learning rate (reduce-on-plateau); training stops when neither head has improved
for ``patience`` epochs. Each epoch maps a random share of users (and items) to the cold-start
row 0 of their embedding tables, so that row learns what an unseen user (item) looks like.

Everything random comes from one ``torch.Generator`` seeded by the caller, and the global
torch RNG is forked, so a fit is deterministic for a given seed and thread count.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# L2 on the per-skill slope offsets (in logits per standardised feature): skills with few
# attempts keep the shared slopes, as the per-KC coefficients of a regularised Best-LR would.
SLOPE_L2 = 1e-3


@dataclass
class TrainData:
    """Row-aligned training arrays (NumPy; converted to tensors once)."""

    u: np.ndarray
    i: np.ndarray
    s: np.ndarray
    xc: np.ndarray
    z: np.ndarray
    logit_ref: np.ndarray
    y: np.ndarray
    t: np.ndarray  # normalised log-time residual; 0 where untimed
    timed: np.ndarray
    w: np.ndarray


@dataclass
class TrainConfig:
    """Settings of one training stage."""

    lr: float
    epochs: int
    patience: int
    batch_size: int
    l2: float
    cold_user_rate: float
    cold_item_rate: float
    # Rows to train on in an epoch: a function of (epoch, generator) returning row indices.
    rows: Callable[[int, Any], Any]
    with_time: bool


@dataclass
class TrainResult:
    """What a stage did: epochs run and the best epoch / loss of each head."""

    epochs_run: int = 0
    best_epoch_correct: int = -1
    best_epoch_time: int = -1
    best_val_correct: float = math.inf
    best_val_time: float = math.inf
    history: list[dict[str, float]] = field(default_factory=list)


def _tensors(data: TrainData) -> dict[str, Any]:
    import torch

    return {
        "u": torch.as_tensor(data.u, dtype=torch.long),
        "i": torch.as_tensor(data.i, dtype=torch.long),
        "s": torch.as_tensor(data.s, dtype=torch.long),
        "xc": torch.as_tensor(data.xc, dtype=torch.float32),
        "z": torch.as_tensor(data.z, dtype=torch.float32),
        "lref": torch.as_tensor(data.logit_ref, dtype=torch.float32),
        "y": torch.as_tensor(data.y, dtype=torch.float32),
        "t": torch.as_tensor(data.t, dtype=torch.float32),
        "timed": torch.as_tensor(data.timed, dtype=torch.float32),
        "w": torch.as_tensor(data.w, dtype=torch.float32),
    }


def _losses(
    module: Any, b: dict[str, Any], u: Any, i: Any, with_time: bool, l2: float
) -> tuple[Any, Any, Any]:
    """(correctness loss, time loss, L2 penalty) of one batch; losses are weighted means."""
    import torch
    from torch.nn import functional as F

    w = b["w"]
    logit, ec, slope_s = module.correctness(u, i, b["s"], b["xc"], b["lref"])
    bce = (w * F.binary_cross_entropy_with_logits(logit, b["y"], reduction="none")).sum() / w.sum()
    penalty = (ec * ec).sum(1).mean() + module.c_bias_item(i).pow(2).mean()
    slope_penalty = SLOPE_L2 * (slope_s * slope_s).sum(1).mean()
    nll = torch.zeros(())
    if with_time:
        mu, logvar, et = module.time(u, i, b["s"], b["z"])
        wt = w * b["timed"]
        denom = wt.sum()
        if float(denom) > 0:
            per_row = 0.5 * (logvar + (b["t"] - mu).pow(2) * torch.exp(-logvar))
            nll = (wt * per_row).sum() / denom
        penalty = penalty + (et * et).sum(1).mean() + module.t_bias_item(i).pow(2).mean()
    return bce, nll, l2 * penalty + slope_penalty


def train_stage(
    module: Any,
    data: TrainData,
    val_rows: np.ndarray,
    cfg: TrainConfig,
    generator: Any,
    n_users: int,
    n_items: int,
) -> TrainResult:
    """Train ``module`` in place; on return it holds each head's best weights."""
    import torch

    tensors = _tensors(data)
    optimisers = _HeadOptimisers(module, cfg.lr)
    val_idx = torch.as_tensor(val_rows, dtype=torch.long)
    stopping = _EarlyStopping(module, cfg)
    for epoch in range(cfg.epochs):
        module.train()
        train_loss, n_rows = _train_epoch(
            module, tensors, cfg, generator, optimisers, n_users, n_items, epoch
        )
        stopping.result.epochs_run = epoch + 1
        entry = {"epoch": float(epoch), "train_loss": train_loss / max(n_rows, 1)}
        if len(val_rows) == 0:
            stopping.result.history.append(entry)
            continue
        module.eval()
        with torch.no_grad():
            b = {k: v[val_idx] for k, v in tensors.items()}
            bce, nll, _ = _losses(module, b, b["u"], b["i"], cfg.with_time, 0.0)
        entry.update(val_correct=float(bce), val_time=float(nll))
        stopping.result.history.append(entry)
        if stopping.after_epoch(epoch, float(bce), float(nll), optimisers):
            break
    stopping.restore_best()
    return stopping.result


class _HeadOptimisers:
    """One Adam optimiser per head, so each head's learning rate is halved on its own
    plateaus (the time head has none when the network has no time head)."""

    def __init__(self, module: Any, lr: float) -> None:
        import torch

        named = list(module.named_parameters())
        self.correct = torch.optim.Adam([p for n, p in named if n.startswith("c_")], lr=lr)
        t_params = [p for n, p in named if n.startswith("t_")]
        self.time = torch.optim.Adam(t_params, lr=lr) if t_params else None

    def step(self, loss: Any) -> None:
        """Back-propagate ``loss`` and step both heads."""
        self.correct.zero_grad(set_to_none=True)
        if self.time is not None:
            self.time.zero_grad(set_to_none=True)
        loss.backward()
        self.correct.step()
        if self.time is not None:
            self.time.step()


def _train_epoch(
    module: Any,
    tensors: dict[str, Any],
    cfg: TrainConfig,
    generator: Any,
    optimisers: _HeadOptimisers,
    n_users: int,
    n_items: int,
    epoch: int,
) -> tuple[float, int]:
    """One pass over the epoch's rows in shuffled batches, with this epoch's cold-start
    masks (user 0 and item 0 are always the cold-start rows). Returns (summed loss, rows)."""
    import torch

    rows = torch.as_tensor(cfg.rows(epoch, generator), dtype=torch.long)
    perm = rows[torch.randperm(len(rows), generator=generator)]
    cold_u = torch.rand(n_users, generator=generator) < cfg.cold_user_rate
    cold_u[0] = True
    cold_i = torch.rand(n_items, generator=generator) < cfg.cold_item_rate
    cold_i[0] = True
    train_loss = 0.0
    for start in range(0, len(perm), cfg.batch_size):
        idx = perm[start : start + cfg.batch_size]
        b = {k: v[idx] for k, v in tensors.items()}
        u = torch.where(cold_u[b["u"]], 0, b["u"])
        i = torch.where(cold_i[b["i"]], 0, b["i"])
        bce, nll, pen = _losses(module, b, u, i, cfg.with_time, cfg.l2)
        loss = bce + nll + pen
        optimisers.step(loss)
        train_loss += float(loss.detach()) * len(idx)
    return train_loss, len(perm)


class _EarlyStopping:
    """Keeps each head's best weights on the validation rows, halves a head's learning rate
    after an epoch without improvement, and says when both heads have stalled ``patience``
    epochs."""

    def __init__(self, module: Any, cfg: TrainConfig) -> None:
        self.module = module
        self.cfg = cfg
        self.result = TrainResult()
        self.best_c: dict[str, Any] | None = None
        self.best_t: dict[str, Any] | None = None
        self.stale_c = 0
        self.stale_t = 0

    def _snapshot(self, prefix: str) -> dict[str, Any]:
        return {
            k: v.detach().clone()
            for k, v in self.module.state_dict().items()
            if k.startswith(prefix)
        }

    def after_epoch(self, epoch: int, vc: float, vt: float, optimisers: _HeadOptimisers) -> bool:
        """Record the epoch's validation losses; True when training should stop."""
        result, cfg = self.result, self.cfg
        if vc < result.best_val_correct - 1e-5:
            result.best_val_correct, result.best_epoch_correct = vc, epoch
            self.best_c, self.stale_c = self._snapshot("c_"), 0
        else:
            self.stale_c += 1
            _halve_lr(optimisers.correct)
        if cfg.with_time and vt < result.best_val_time - 1e-5:
            result.best_val_time, result.best_epoch_time = vt, epoch
            self.best_t, self.stale_t = self._snapshot("t_"), 0
        else:
            self.stale_t += 1
            if optimisers.time is not None:
                _halve_lr(optimisers.time)
        return self.stale_c >= cfg.patience and (not cfg.with_time or self.stale_t >= cfg.patience)

    def restore_best(self) -> None:
        """Load each head's best weights (the last ones where a head never improved)."""
        state = self.module.state_dict()
        for best in (self.best_c, self.best_t):
            if best:
                state.update(best)
        self.module.load_state_dict(state)


def _halve_lr(opt: Any) -> None:
    """Reduce-on-plateau: halve the learning rate after an epoch without improvement."""
    for group in opt.param_groups:
        group["lr"] *= 0.5
