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
per answer, whatever the number of skills.

The spread ``skill_sd`` is learned by ``LNIRT.fit`` from a one-step-ahead replay of training
persons (0 where a single ability explains the skills; 0 with fewer than two skills, where
``delta`` cannot be told apart from theta, such as the service's per-topic LNIRT).
"""

from __future__ import annotations

import numpy as np

# A state: the persons' means and variances of delta (persons x skills) and each row's
# skill column (-1: the row's item has no skill the fit knows, and delta plays no part).
SkillState = tuple[np.ndarray, np.ndarray, np.ndarray]


def skill_shift(state: SkillState, g: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, ...]:
    """The skill part of each row's probit argument: the mean and variance of
    ``delta[g, s(row)]`` (0 and 0 for a row without a skill)."""
    mean, var, skill = state
    s = skill[rows]
    has = s >= 0
    col = np.where(has, s, 0)
    return np.where(has, mean[g, col], 0.0), np.where(has, var[g, col], 0.0)


def skill_update(
    state: SkillState, g: np.ndarray, rows: np.ndarray, score: np.ndarray, curvature: np.ndarray
) -> None:
    """Move ``delta[g, s(row)]`` in place by one assumed-density step of the row's probit, whose
    log evidence has derivatives ``score`` and ``curvature`` in its argument (``probit_step``).
    ``g`` holds each person at most once. The curvature is kept above ``-1 / Var(delta)``, so
    that an answer never makes delta less certain and its variance stays positive."""
    mean, var, skill = state
    s = skill[rows]
    has = s >= 0
    g, s, score, curvature = g[has], s[has], score[has], curvature[has]
    k = var[g, s]
    safe = np.where(k > 0, k, 1.0)
    curvature = np.where(k > 0, np.clip(curvature, -(1.0 - 1e-12) / safe, 0.0), 0.0)
    mean[g, s] += score * k
    var[g, s] += curvature * k * k


class SkillPart:
    """Every person's skill abilities: the spread ``sd`` of their population, each fitted
    item's skill column (``item_skill``, -1 for none) and, per person and skill, the posterior
    mean and variance of ``delta`` in buffers that grow by doubling (rows past the persons hold
    the prior). ``sd`` 0 or no skills: no skill part (``active`` False)."""

    def __init__(self, sd: float, item_skill: np.ndarray, n_skills: int, capacity: int) -> None:
        self.sd = float(sd)
        self.item_skill = np.asarray(item_skill, dtype=np.int64)
        self.n_skills = int(n_skills) if self.sd > 0 else 0
        self.mean = np.zeros((capacity, self.n_skills))
        self.var = np.full((capacity, self.n_skills), self.sd * self.sd)

    @property
    def active(self) -> bool:
        return self.n_skills > 0

    def grow(self, capacity: int) -> None:
        """Make room for ``capacity`` persons (new rows hold the prior)."""
        old = len(self.mean)
        mean = np.zeros((capacity, self.n_skills))
        var = np.full((capacity, self.n_skills), self.sd * self.sd)
        mean[:old], var[:old] = self.mean, self.var
        self.mean, self.var = mean, var

    def of(self, stored: np.ndarray, skill: np.ndarray) -> SkillState:
        """Copies of the posteriors of stored persons (index < 0: the prior), with the rows'
        skill columns ``skill``."""
        mean = np.zeros((len(stored), self.n_skills))
        var = np.full((len(stored), self.n_skills), self.sd * self.sd)
        has = stored >= 0
        mean[has], var[has] = self.mean[stored[has]], self.var[stored[has]]
        return mean, var, np.asarray(skill, dtype=np.int64)

    def state(self, size: int) -> dict[str, object]:
        """The part as artifact values."""
        return {
            "skill_sd_": self.sd,
            "item_skill_": self.item_skill.tolist(),
            "person_skill_mean_": self.mean[:size].copy(),
            "person_skill_var_": self.var[:size].copy(),
        }

    @classmethod
    def from_state(
        cls, state: dict, n_items: int, n_skills: int, n_persons: int, capacity: int
    ) -> SkillPart:
        """The part stored by ``state`` (none when the artifact predates it). Raises
        ``ValueError`` for values of the wrong shape, range or finiteness."""
        if "skill_sd_" not in state:
            return cls(0.0, np.full(n_items, -1), n_skills, capacity)
        try:
            sd = float(state["skill_sd_"])
            item_skill = np.asarray(state["item_skill_"], dtype=np.int64)
            part = cls(sd, item_skill, n_skills, capacity)
            k = part.n_skills
            mean = np.asarray(state["person_skill_mean_"], dtype=float).reshape(n_persons, k)
            var = np.asarray(state["person_skill_var_"], dtype=float).reshape(n_persons, k)
        except (KeyError, ValueError, TypeError) as exc:
            raise ValueError(f"LNIRT state has invalid skill abilities: {exc}") from exc
        ok = (
            np.isfinite(sd)
            and sd >= 0
            and item_skill.shape == (n_items,)
            and np.all((item_skill >= -1) & (item_skill < max(n_skills, 1)))
            and np.all(np.isfinite(mean))
            and np.all(np.isfinite(var) & (var > 0))
        )
        if not ok:
            raise ValueError("LNIRT state has invalid skill abilities")
        part.mean[:n_persons], part.var[:n_persons] = mean, var
        return part
