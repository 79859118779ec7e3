"""Skill abilities: how much better or worse a person does on one skill than their ability says.

LNIRT explains every answer of a person by one ability ``theta_p``. Real students are not
equally able on every skill of a course: one is good at fractions and weak at geometry. With a
single ability, answers on one skill move the predictions on every other skill as far as on
their own, and a student who starts a new skill is predicted with a confidence their record
elsewhere does not justify (on cognitive_tutor, 12 skills: the first answers on a skill new to
the student had a recalibration slope of 0.87, log loss 0.537 against Baseline's 0.529).

This module adds a skill-specific part to the probit, as in testlet (Bradlow, Wainer & Wang
1999, "A Bayesian random effects model for testlets", Psychometrika 64(2)) and bifactor
models (Gibbons & Hedeker 1992, Psychometrika 57(3))::

    P(right) = Phi(a_i (theta_p - b_i) + delta_{p, s(i)}),   delta_{p,s} ~ N(0, skill_sd^2)

where ``s(i)`` is item i's skill. ``delta`` has a Gaussian posterior per (person, skill),
updated online after every answer on that skill by the same assumed-density step as theta
(one probit in both, as the response factors of ``factors``): a correct answer raises both, a
wrong one lowers both, so the direction guarantee holds. Answers on other skills move theta
only. A person's ``delta`` of different skills never share an answer, so with a diagonal prior
their posterior stays diagonal: one mean and one variance per (person, skill), constant time
per answer, whatever the number of skills. Only the (person, skill) pairs that have answers
are stored (the others hold the prior), so memory grows with the data, not with persons times
skills.

The spread ``skill_sd`` is learned by ``LNIRT.fit`` from a one-step-ahead replay of training
persons (0 where a single ability explains the skills; 0 with fewer than two skills, where
``delta`` cannot be told apart from theta, such as the service's per-topic LNIRT).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass
class SkillState:
    """The skill abilities a batch of rows works on: one entry per (batch user, skill) pair
    of the rows, with its posterior ``mean`` and ``var``; ``row_pair`` is each row's pair (-1:
    the row's item has no skill the fit knows, and delta plays no part), ``pair_user`` and
    ``pair_skill`` the batch user and skill column of each pair."""

    mean: np.ndarray
    var: np.ndarray
    row_pair: np.ndarray
    pair_user: np.ndarray
    pair_skill: np.ndarray


def skill_shift(state: SkillState, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The skill part of each row's probit argument: the mean and variance of its (user,
    skill) ability (0 and 0 for a row without a skill)."""
    pair = state.row_pair[rows]
    has = pair >= 0
    at = np.where(has, pair, 0)
    return np.where(has, state.mean[at], 0.0), np.where(has, state.var[at], 0.0)


def skill_update(
    state: SkillState, rows: np.ndarray, score: np.ndarray, curvature: np.ndarray
) -> None:
    """Move each row's (user, skill) ability in place by one assumed-density step of the row's
    probit, whose log evidence has derivatives ``score`` and ``curvature`` in its argument
    (``probit_step``). ``rows`` holds each user at most once. The curvature is kept above ``-1 /
    Var(delta)``, so that an answer never makes delta less certain and its variance stays
    positive."""
    pair = state.row_pair[rows]
    has = pair >= 0
    pair, score, curvature = pair[has], score[has], curvature[has]
    k = state.var[pair]
    safe = np.where(k > 0, k, 1.0)
    curvature = np.where(k > 0, np.clip(curvature, -(1.0 - 1e-12) / safe, 0.0), 0.0)
    state.mean[pair] += score * k
    state.var[pair] += curvature * k * k


class SkillPart:
    """Every person's skill abilities: the spread ``sd`` of their population, each fitted
    item's skill column (``item_skill``, -1 for none) and the posterior mean and variance of
    ``delta`` of every (person, skill) pair with answers (the others hold the prior). ``sd`` 0
    or no skills: no skill part (``active`` False)."""

    def __init__(self, sd: float, item_skill: np.ndarray, n_skills: int) -> None:
        self.sd = float(sd)
        self.item_skill = np.asarray(item_skill, dtype=np.int64)
        self.n_skills = int(n_skills) if self.sd > 0 else 0
        self._index: dict[tuple[int, int], int] = {}
        self._pairs = np.zeros((16, 2), dtype=np.int64)
        self._values = np.zeros((16, 2))

    @property
    def active(self) -> bool:
        return self.n_skills > 0

    def of(self, stored: np.ndarray, group: np.ndarray, skills: np.ndarray) -> SkillState:
        """The state of a batch: rows of users ``group`` (indices into ``stored``, the users'
        stored persons, < 0 for one not stored) at skill columns ``skills``; each pair starts
        from its stored posterior, or the prior."""
        skills = np.asarray(skills, dtype=np.int64)
        has = skills >= 0
        row_pair = np.full(len(skills), -1, dtype=np.int64)
        if len(skills) == 1:  # one request: its pair, without factorizing
            keys = group[has] * self.n_skills + skills[has]
            row_pair[has] = 0
        else:
            codes, uniques = pd.factorize(group[has] * self.n_skills + skills[has])
            keys = np.asarray(uniques, dtype=np.int64)
            row_pair[has] = codes
        pair_user, pair_skill = keys // max(self.n_skills, 1), keys % max(self.n_skills, 1)
        mean, var = np.zeros(len(keys)), np.full(len(keys), self.sd * self.sd)
        if self._index:
            person = stored[pair_user]
            for j in np.flatnonzero(person >= 0):
                at = self._index.get((int(person[j]), int(pair_skill[j])))
                if at is not None:
                    mean[j], var[j] = self._values[at]
        return SkillState(mean, var, row_pair, pair_user, pair_skill)

    def keep(self, persons: np.ndarray, state: SkillState) -> None:
        """Store the pairs of ``state`` as the posteriors of persons ``persons`` (the stored
        person of each batch user; < 0: not stored)."""
        person = persons[state.pair_user]
        for j in np.flatnonzero(person >= 0):
            key = (int(person[j]), int(state.pair_skill[j]))
            at = self._index.get(key)
            if at is None:
                at = self._append(key)
            self._values[at] = state.mean[j], state.var[j]

    def _append(self, key: tuple[int, int]) -> int:
        at = len(self._index)
        if at == len(self._pairs):
            self._pairs = np.resize(self._pairs, (2 * at, 2))
            self._values = np.resize(self._values, (2 * at, 2))
        self._index[key] = at
        self._pairs[at] = key
        return at

    def table(self) -> tuple[np.ndarray, np.ndarray]:
        """The stored pairs ``(person, skill column)`` and their ``(mean, var)``."""
        n = len(self._index)
        return self._pairs[:n].copy(), self._values[:n].copy()

    def state(self) -> dict[str, object]:
        """The part as artifact values."""
        pairs, values = self.table()
        return {
            "skill_sd_": self.sd,
            "item_skill_": self.item_skill.tolist(),
            "person_skill_pairs_": pairs,
            "person_skill_values_": values,
        }

    @classmethod
    def from_state(cls, state: dict, n_items: int, n_skills: int, n_persons: int) -> SkillPart:
        """The part stored by ``state`` (none when the artifact predates it). Raises
        ``ValueError`` for values of the wrong shape, range or finiteness."""
        if "skill_sd_" not in state:
            return cls(0.0, np.full(n_items, -1), n_skills)
        try:
            sd = float(state["skill_sd_"])
            item_skill = np.asarray(state["item_skill_"], dtype=np.int64)
            pairs = np.asarray(state["person_skill_pairs_"], dtype=np.int64).reshape(-1, 2)
            values = np.asarray(state["person_skill_values_"], dtype=float).reshape(-1, 2)
        except (KeyError, ValueError, TypeError) as exc:
            raise ValueError(f"LNIRT state has invalid skill abilities: {exc}") from exc
        part = cls(sd, item_skill, n_skills)
        ok = (
            np.isfinite(sd)
            and sd >= 0
            and item_skill.shape == (n_items,)
            and np.all((item_skill >= -1) & (item_skill < max(n_skills, 1)))
            and len(pairs) == len(values)
            and (len(pairs) == 0 or part.active)
            and np.all((pairs[:, 0] >= 0) & (pairs[:, 0] < n_persons))
            and np.all((pairs[:, 1] >= 0) & (pairs[:, 1] < max(part.n_skills, 1)))
            and np.all(np.isfinite(values[:, 0]))
            and np.all(np.isfinite(values[:, 1]) & (values[:, 1] > 0))
        )
        if not ok:
            raise ValueError("LNIRT state has invalid skill abilities")
        for key, value in zip(map(tuple, pairs.tolist()), values, strict=True):
            if key in part._index:
                raise ValueError("LNIRT state has invalid skill abilities: a pair twice")
            at = part._append(key)  # may replace the buffers: index after
            part._values[at] = value
        return part
