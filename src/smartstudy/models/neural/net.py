"""The network of :class:`~smartstudy.models.neural.NeuralPredictor`: PyTorch to train,
NumPy to predict.

Correctness head (monotone in the outcome history by construction)::

    e      = [E_user[u], E_item[i], E_skill[s]]                       context embeddings
    base   = b0 + a * logit(p_ref) + bias_item[i] + bias_skill[s] + bias_user[u]
             + relu(e A1 + a1) a2                                    context-only logit
    pre    = x softplus(Wm) + e Cw + cb                               monotone units
    gain   = softplus(vm + e Gw)                                      > 0, set by the context
    slope  = softplus(lm + L_skill[s])                                per-skill slopes > 0
    logit  = base + sum_k gain_k tanh(pre_k) + sum_j slope_j x_j

``x`` are the standardised monotone history features (each goes up after a correct answer
and down after a wrong one). Their weights ``softplus(.)`` and the gains are positive and
``tanh`` is increasing, so the logit is non-decreasing in every feature whatever the
embeddings are: embeddings and other inputs only shift biases and scale positive gains.

Time head (log-time, Gaussian)::

    h      = relu(relu([T_user[u], T_item[i], T_skill[s], z] B1 + b1) B2 + b2)
    mu_n   = h B3[:, 0] + b3[0] + tbias_item[i] + tbias_user[u]
    logvar = clip(h B3[:, 1] + b3[1], -8, 4)

with ``z`` the standardised time and correctness features; ``mu_n`` and ``logvar`` are in
units of the training log-time residual scale, around the item's population log-time mean.

Training code (``build_module``) imports torch lazily: predicting needs only NumPy and the
weights exported by ``export_params`` (float32 values held as float64 arrays).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

LOGVAR_MIN, LOGVAR_MAX = -8.0, 4.0
# Initial monotone weights, as totals over the history features: the linear slopes start at
# INIT_SLOPE_TOTAL / n_corr each and each unit's input weights at INIT_UNIT_TOTAL / n_corr (the
# first design's softplus(-2.25) and softplus(-2.5) for its 22 features). The untrained network
# is then equally confident whatever the number of features; with per-feature constants, more
# features made it start overconfident, which small data sets (stopped early) did not undo.
INIT_SLOPE_TOTAL = 2.2
INIT_UNIT_TOTAL = 1.74


@dataclass(frozen=True)
class NetShape:
    """Sizes of the network (vocabularies include the cold-start row 0)."""

    n_users: int
    n_items: int
    n_skills: int
    d_user: int
    d_item: int
    d_skill: int
    n_corr: int
    n_time_in: int
    hidden: int
    time_hidden: int
    with_time: bool


def build_module(shape: NetShape) -> Any:
    """The PyTorch module for ``shape`` (torch is imported here, not at module import)."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    class MonotoneNet(nn.Module):
        def __init__(self, sh: NetShape) -> None:
            super().__init__()
            self.sh = sh
            # Layers are created in a fixed order: it fixes the initial weights for a seed.
            _add_correctness_layers(self, sh)
            if sh.with_time:
                _add_time_layers(self, sh)

        def _ctx(self, prefix: str, u: Any, i: Any, s: Any) -> Any:
            parts = []
            if self.sh.d_user:
                parts.append(getattr(self, f"{prefix}_user")(u))
            parts += [getattr(self, f"{prefix}_item")(i), getattr(self, f"{prefix}_skill")(s)]
            return torch.cat(parts, dim=1)

        def correctness(self, u: Any, i: Any, s: Any, x: Any, logit_ref: Any) -> tuple[Any, Any]:
            e = self._ctx("c", u, i, s)
            base = (
                self.c_b0
                + self.c_alpha * logit_ref
                + self.c_bias_item(i)[:, 0]
                + self.c_bias_skill(s)[:, 0]
                + self.c_a2(F.relu(self.c_A1(e)))[:, 0]
            )
            if self.sh.d_user:
                base = base + self.c_bias_user(u)[:, 0]
            pre = x @ F.softplus(self.c_Wm) + self.c_C(e)
            gain = F.softplus(self.c_vm + self.c_G(e))
            slope_s = self.c_slope_skill(s)
            slopes = F.softplus(self.c_lm + slope_s)
            logit = base + (gain * torch.tanh(pre)).sum(1) + (x * slopes).sum(1)
            return logit, e, slope_s

        def time(self, u: Any, i: Any, s: Any, z: Any) -> tuple[Any, Any, Any]:
            e = self._ctx("t", u, i, s)
            h = F.relu(self.t_B2(F.relu(self.t_B1(torch.cat([e, z], dim=1)))))
            out = self.t_B3(h)
            mu = out[:, 0] + self.t_bias_item(i)[:, 0]
            if self.sh.d_user:
                mu = mu + self.t_bias_user(u)[:, 0]
            logvar = torch.clamp(out[:, 1], LOGVAR_MIN, LOGVAR_MAX)
            return mu, logvar, e

    return MonotoneNet(shape)


def _embedding(n: int, d: int, sd: float) -> Any:
    from torch import nn

    e = nn.Embedding(n, d)
    nn.init.normal_(e.weight, 0.0, sd)
    return e


def _add_embeddings(net: Any, head: str, sh: NetShape, *, skill_bias: bool) -> None:
    """A head's user (when ``d_user``), item and skill embeddings and its user, item (and,
    with ``skill_bias``, skill) biases, on ``net`` as ``<head>_user``, ``<head>_bias_item``,
    ...; made in this order, so the random initial weights follow one another as before."""
    setattr(net, f"{head}_user", _embedding(sh.n_users, sh.d_user, 0.05) if sh.d_user else None)
    setattr(net, f"{head}_item", _embedding(sh.n_items, sh.d_item, 0.05))
    setattr(net, f"{head}_skill", _embedding(sh.n_skills, sh.d_skill, 0.05))
    setattr(net, f"{head}_bias_user", _embedding(sh.n_users, 1, 0.0) if sh.d_user else None)
    setattr(net, f"{head}_bias_item", _embedding(sh.n_items, 1, 0.0))
    if skill_bias:
        setattr(net, f"{head}_bias_skill", _embedding(sh.n_skills, 1, 0.0))


def _add_correctness_layers(net: Any, sh: NetShape) -> None:
    """The correctness head's embeddings, context MLP and monotone units, on ``net``."""
    import torch
    from torch import nn

    ctx = sh.d_user + sh.d_item + sh.d_skill
    h = sh.hidden
    _add_embeddings(net, "c", sh, skill_bias=True)
    net.c_A1 = nn.Linear(ctx, h)
    net.c_a2 = nn.Linear(h, 1, bias=False)
    nn.init.zeros_(net.c_a2.weight)
    net.c_C = nn.Linear(ctx, h)
    net.c_G = nn.Linear(ctx, h, bias=False)
    nn.init.zeros_(net.c_G.weight)
    wm0 = _inverse_softplus(INIT_UNIT_TOTAL / sh.n_corr)
    net.c_Wm = nn.Parameter(torch.randn(sh.n_corr, h) * 0.3 + wm0)
    net.c_vm = nn.Parameter(torch.full((h,), -4.0))
    net.c_lm = nn.Parameter(
        torch.full((sh.n_corr,), _inverse_softplus(INIT_SLOPE_TOTAL / sh.n_corr))
    )
    net.c_slope_skill = _embedding(sh.n_skills, sh.n_corr, 0.0)
    net.c_alpha = nn.Parameter(torch.ones(()))
    net.c_b0 = nn.Parameter(torch.zeros(()))


def _inverse_softplus(value: float) -> float:
    """The raw weight whose softplus is ``value`` (> 0)."""
    return math.log(math.expm1(value))


def _add_time_layers(net: Any, sh: NetShape) -> None:
    """The time head's embeddings and MLP (mean and log-variance, starting at 0), on ``net``."""
    from torch import nn

    ctx = sh.d_user + sh.d_item + sh.d_skill
    th = sh.time_hidden
    _add_embeddings(net, "t", sh, skill_bias=False)
    net.t_B1 = nn.Linear(ctx + sh.n_time_in, th)
    net.t_B2 = nn.Linear(th, th)
    net.t_B3 = nn.Linear(th, 2)
    nn.init.zeros_(net.t_B3.weight)
    nn.init.zeros_(net.t_B3.bias)


def export_params(module: Any) -> dict[str, np.ndarray]:
    """The module's weights as float64 NumPy arrays, named ``net_<parameter>``."""
    out = {}
    for name, tensor in module.state_dict().items():
        out["net_" + name.replace(".", "__")] = tensor.detach().cpu().numpy().astype(np.float64)
    return out


def param_names(shape: NetShape) -> list[str]:
    """Names of every exported array of a network of ``shape`` (for state validation)."""
    names = [
        "c_item__weight",
        "c_skill__weight",
        "c_bias_item__weight",
        "c_bias_skill__weight",
        "c_A1__weight",
        "c_A1__bias",
        "c_a2__weight",
        "c_C__weight",
        "c_C__bias",
        "c_G__weight",
        "c_Wm",
        "c_vm",
        "c_lm",
        "c_slope_skill__weight",
        "c_alpha",
        "c_b0",
    ]
    if shape.d_user:
        names += ["c_user__weight", "c_bias_user__weight"]
    if shape.with_time:
        names += [
            "t_item__weight",
            "t_skill__weight",
            "t_bias_item__weight",
            "t_B1__weight",
            "t_B1__bias",
            "t_B2__weight",
            "t_B2__bias",
            "t_B3__weight",
            "t_B3__bias",
        ]
        if shape.d_user:
            names += ["t_user__weight", "t_bias_user__weight"]
    return ["net_" + n for n in names]


# -- NumPy forward ---------------------------------------------------------------------------
def _softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, x)


def _relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0)


class NumpyNet:
    """The exported weights with the derived matrices precomputed (softplus of raw weights)."""

    def __init__(self, shape: NetShape, params: dict[str, np.ndarray]) -> None:
        p = {k[len("net_") :]: np.asarray(v, dtype=np.float64) for k, v in params.items()}
        self.shape = shape
        self.p = p
        self.c_Wm = _softplus(p["c_Wm"])
        # Per-skill monotone slopes: softplus(global + skill row), one row per skill.
        self.c_slopes = _softplus(p["c_lm"][None, :] + p["c_slope_skill__weight"])
        # Linear layers store (out, in); keep transposed copies for x @ W.
        self.c_A1 = p["c_A1__weight"].T.copy()
        self.c_a2 = p["c_a2__weight"][0].copy()
        self.c_C = p["c_C__weight"].T.copy()
        self.c_G = p["c_G__weight"].T.copy()
        self.alpha = float(p["c_alpha"])
        self.b0 = float(p["c_b0"])
        if shape.with_time:
            self.t_B1 = p["t_B1__weight"].T.copy()
            self.t_B2 = p["t_B2__weight"].T.copy()
            self.t_B3 = p["t_B3__weight"].T.copy()

    def _ctx(self, prefix: str, u: np.ndarray, i: np.ndarray, s: np.ndarray) -> np.ndarray:
        p = self.p
        parts = []
        if self.shape.d_user:
            parts.append(p[f"{prefix}_user__weight"][u])
        parts += [p[f"{prefix}_item__weight"][i], p[f"{prefix}_skill__weight"][s]]
        return np.concatenate(parts, axis=1)

    def correctness(
        self, u: np.ndarray, i: np.ndarray, s: np.ndarray, x: np.ndarray, logit_ref: np.ndarray
    ) -> np.ndarray:
        """Logits (n,) for embedding indices and standardised monotone features ``x``."""
        p = self.p
        e = self._ctx("c", u, i, s)
        base = (
            self.b0
            + self.alpha * logit_ref
            + p["c_bias_item__weight"][i, 0]
            + p["c_bias_skill__weight"][s, 0]
            + _relu(e @ self.c_A1 + p["c_A1__bias"]) @ self.c_a2
        )
        if self.shape.d_user:
            base = base + p["c_bias_user__weight"][u, 0]
        pre = x @ self.c_Wm + (e @ self.c_C + p["c_C__bias"])
        gain = _softplus(p["c_vm"] + e @ self.c_G)
        slopes = self.c_slopes[s]
        return base + (gain * np.tanh(pre)).sum(axis=1) + (x * slopes).sum(axis=1)

    def time(
        self, u: np.ndarray, i: np.ndarray, s: np.ndarray, z: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(mu_n, logvar) of the normalised log-time residual."""
        p = self.p
        e = self._ctx("t", u, i, s)
        h = _relu(np.concatenate([e, z], axis=1) @ self.t_B1 + p["t_B1__bias"])
        h = _relu(h @ self.t_B2 + p["t_B2__bias"])
        out = h @ self.t_B3 + p["t_B3__bias"]
        mu = out[:, 0] + p["t_bias_item__weight"][i, 0]
        if self.shape.d_user:
            mu = mu + p["t_bias_user__weight"][u, 0]
        return mu, np.clip(out[:, 1], LOGVAR_MIN, LOGVAR_MAX)
