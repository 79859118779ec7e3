"""Leave-user-out population references of :class:`~smartstudy.models.neural.NeuralPredictor`.

``p_ref`` (an item's success rate) and ``mu_ref`` (its mean log time) enter the network as an
offset and centre the time head. They are shrunk item -> skill -> global means (pseudo-counts
``REF_K_ITEM`` and ``REF_K_SKILL``, the defaults of Baseline; the global level is shrunk towards
p = 0.5 and one minute with one pseudo-attempt), computed from everyone's attempts EXCEPT the
user's own: the statistics minus that user's counters. Otherwise a user who did most of an
item's attempts (seed 002's dominant user) would see their own record twice, once as "the
item is easy" and once in their history features, and the model would extrapolate towards
0 or 1. The same definition holds everywhere:

- training rows: the fitted statistics minus the user's whole training record on the item,
  its skill and overall (so a row never sees its own outcome either);
- ``predict``: the fitted statistics minus the user's stored counters (rows of other users
  in the frame never matter, as the contract requires);
- ``update``: the row is added both to the population statistics and to the user's counters,
  so the user's leave-user-out reference does not move, while other users' references learn
  from it (as Baseline's item means do).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from smartstudy.models._arrays import grouped_sums, lookup, with_capacity

REF_K_ITEM = 8.0
REF_K_SKILL = 10.0
DEFAULT_TIME_MEDIAN_S = 60.0
# Statistic columns: attempts, successes, timed attempts, sum of log times.
SN, SS, STN, STS = range(4)
N_STATS = 4


def row_stats(y: np.ndarray, has_t: np.ndarray, lt: np.ndarray) -> np.ndarray:
    """Per-row statistic increments (rows with a NaN outcome add nothing)."""
    known = ~np.isnan(y)
    timed = known & has_t
    return np.column_stack(
        [
            known.astype(float),
            np.where(known, y, 0.0),
            timed.astype(float),
            np.where(timed, lt, 0.0),
        ]
    )


def shrunk_references(
    g: np.ndarray, sk: np.ndarray, has_sk: np.ndarray, it: np.ndarray, has_it: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(p, mu) of rows from their global / skill / item statistics (n, N_STATS)."""
    g = np.maximum(g, 0.0)
    sk = np.maximum(sk, 0.0)
    it = np.maximum(it, 0.0)
    p_g = (g[:, SS] + 0.5) / (g[:, SN] + 1.0)
    mu_g = (g[:, STS] + math.log(DEFAULT_TIME_MEDIAN_S)) / (g[:, STN] + 1.0)
    p_s = np.where(has_sk, (sk[:, SS] + REF_K_SKILL * p_g) / (sk[:, SN] + REF_K_SKILL), p_g)
    mu_s = np.where(has_sk, (sk[:, STS] + REF_K_SKILL * mu_g) / (sk[:, STN] + REF_K_SKILL), mu_g)
    p_i = np.where(has_it, (it[:, SS] + REF_K_ITEM * p_s) / (it[:, SN] + REF_K_ITEM), p_s)
    mu_i = np.where(has_it, (it[:, STS] + REF_K_ITEM * mu_s) / (it[:, STN] + REF_K_ITEM), mu_s)
    return p_i, mu_i


class PopulationRefs:
    """Item, skill and global statistics ``[n, successes, timed n, sum log t]``."""

    def __init__(self) -> None:
        self.item_index: dict[str, int] = {}
        self.item_stats = np.zeros((8, N_STATS))
        self.skill_index: dict[str, int] = {}
        self.skill_stats = np.zeros((8, N_STATS))
        self.global_stats = np.zeros(N_STATS)

    @classmethod
    def from_rows(cls, items: np.ndarray, skills: np.ndarray, stats: np.ndarray) -> PopulationRefs:
        """Statistics of rows (``skills`` may hold None: such rows count for no skill)."""
        refs = cls()
        icode, all_items = pd.factorize(items)
        scode, all_skills = pd.factorize(skills, use_na_sentinel=True)
        refs.item_index = {str(v): k for k, v in enumerate(all_items.tolist())}
        refs.skill_index = {str(v): k for k, v in enumerate(all_skills.tolist())}
        refs.item_stats = with_capacity(grouped_sums(icode, stats, len(all_items)))
        refs.skill_stats = with_capacity(grouped_sums(scode, stats, len(all_skills)))
        refs.global_stats = stats.sum(axis=0)
        return refs

    @property
    def p_global(self) -> float:
        """The population success rate (shrunk towards 0.5 by one pseudo-attempt)."""
        g = self.global_stats
        return float((g[SS] + 0.5) / (g[SN] + 1.0))

    @property
    def mu_global(self) -> float:
        """The population mean log time (shrunk towards one minute by one pseudo-attempt)."""
        g = self.global_stats
        return float((g[STS] + math.log(DEFAULT_TIME_MEDIAN_S)) / (g[STN] + 1.0))

    def references(
        self,
        items: np.ndarray,
        skills: np.ndarray,
        own_global: np.ndarray,
        own_skill: np.ndarray,
        own_item: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Leave-user-out (p_ref, mu_ref): the statistics minus the user's own ``own_*``."""
        ii = lookup(self.item_index, items)
        ss = lookup(self.skill_index, skills)
        has_it, has_sk = ii >= 0, ss >= 0
        it = np.where(has_it[:, None], self.item_stats[np.maximum(ii, 0)], 0.0) - own_item
        sk = np.where(has_sk[:, None], self.skill_stats[np.maximum(ss, 0)], 0.0) - own_skill
        g = self.global_stats[None, :] - own_global
        return shrunk_references(g, sk, has_sk, it, has_it)

    def reference_one(
        self,
        item: str,
        skill: str | None,
        own: tuple[Sequence[float], Sequence[float], Sequence[float]],
    ) -> tuple[float, float]:
        """``references`` of one row in floats: ``own`` holds the user's own statistics at
        the global, skill and item levels (``own_stats`` rows)."""
        it_i = self.item_index.get(item, -1)
        sk_i = self.skill_index.get(skill, -1) if skill is not None else -1
        g = [max(a - b, 0.0) for a, b in zip(self.global_stats.tolist(), own[0], strict=True)]
        p = (g[SS] + 0.5) / (g[SN] + 1.0)
        mu = (g[STS] + math.log(DEFAULT_TIME_MEDIAN_S)) / (g[STN] + 1.0)
        levels = (
            (sk_i, self.skill_stats, REF_K_SKILL, own[1]),
            (it_i, self.item_stats, REF_K_ITEM, own[2]),
        )
        for row, table, k, mine in levels:
            if row >= 0:
                x = [max(a - b, 0.0) for a, b in zip(table[row].tolist(), mine, strict=True)]
                p = (x[SS] + k * p) / (x[SN] + k)
                mu = (x[STS] + k * mu) / (x[STN] + k)
        return p, mu

    def add(self, item: str, skill: str | None, stats: np.ndarray) -> None:
        """Add one attempt's statistics (new items and skills get a row)."""
        self.global_stats += stats
        i = self._row("item", item)
        self.item_stats[i] += stats
        if skill is not None:
            s = self._row("skill", skill)
            self.skill_stats[s] += stats

    def _row(self, level: str, key: str) -> int:
        index: dict[str, int] = getattr(self, f"{level}_index")
        row = index.get(key)
        if row is None:
            row = len(index)
            index[key] = row
            table: np.ndarray = getattr(self, f"{level}_stats")
            if row >= len(table):
                grown = np.zeros((2 * len(table), N_STATS))
                grown[: len(table)] = table
                setattr(self, f"{level}_stats", grown)
        return row

    # -- persistence --------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        return {
            "ref_item_ids": list(self.item_index),
            "ref_item_stats": self.item_stats[: len(self.item_index)].copy(),
            "ref_skill_ids": list(self.skill_index),
            "ref_skill_stats": self.skill_stats[: len(self.skill_index)].copy(),
            "ref_global_stats": self.global_stats.copy(),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> PopulationRefs:
        refs = cls()
        for level in ("item", "skill"):
            ids = [str(v) for v in state[f"ref_{level}_ids"]]
            stats = np.asarray(state[f"ref_{level}_stats"], dtype=float).reshape(-1, N_STATS)
            if len(set(ids)) != len(ids) or len(stats) != len(ids):
                raise ValueError(f"reference {level} ids and statistics do not match")
            if not np.isfinite(stats).all():
                raise ValueError(f"non-finite reference {level} statistics")
            setattr(refs, f"{level}_index", {v: k for k, v in enumerate(ids)})
            setattr(refs, f"{level}_stats", with_capacity(stats))
        g = np.asarray(state["ref_global_stats"], dtype=float)
        if g.shape != (N_STATS,) or not np.isfinite(g).all():
            raise ValueError("invalid reference global statistics")
        refs.global_stats = g
        return refs
