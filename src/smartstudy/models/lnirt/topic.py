"""LNIRT as the app uses it: one ``LNIRT`` per topic, items = difficulty levels.

In the app an item is a (topic, difficulty) pair and the skill is the topic. The original
system kept one LNIRT per topic with shared difficulty-level parameters trained on all users
and a personal (theta, tau) per user (seed 000); ``TopicLNIRT`` does the same on top of the
contract-tested ``LNIRT``. A topic with too little data, or whose fit is degenerate, has no
LNIRT: predictions for it raise ``CannotPredictError`` and a prediction chain falls back.
A topic whose rows have no response time gets an accuracy-only LNIRT (``times_fitted_`` is
False, listed in ``accuracy_only_``): it learns and scores person fit, but predictions for the
topic raise ``CannotPredictError`` like a topic without an LNIRT, because the app serves times
with every prediction and a chain then falls back to a model that has them.

Person fit (``person_fit``) scores every (user, topic) person with its topic's LNIRT and, by
default, combines a user's topics exactly: the lZ statistics of the times and their degrees of
freedom add over topics (independent chi-squares under the model), the response lz is
recomputed from the summed ``l0 - E l0`` and ``Var l0``, the mean time residual is over all
the user's timed rows; ``theta``/``tau`` are the mean over the user's topics (a summary only:
each topic has its own scale).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Self

import numpy as np
import pandas as pd

from smartstudy.data.schema import id_string, parse_attempt, validate_interactions
from smartstudy.models.base import (
    PREDICTION_COLUMNS,
    CannotPredictError,
    LearnerModel,
    plain_attempts,
)
from smartstudy.models.baseline import fast_path_ids
from smartstudy.models.lnirt.fit import DegenerateFitError
from smartstudy.models.lnirt.model import LNIRT
from smartstudy.models.lnirt.personfit import (
    PERSON_FIT_SUMS,
    NothingToScoreError,
    check_level,
    summarise_person_fit,
)

log = logging.getLogger(__name__)


class TopicLNIRT(LearnerModel):
    """One ``LNIRT`` per skill (topic); persons are (user, topic) pairs.

    Parameters
    ----------
    min_rows:
        Fewest rows a topic needs for its own LNIRT; smaller topics are skipped (listed in
        ``skipped_`` with the reason) and cannot be predicted.
    min_repeats:
        Fewest repeated timed answers (a person's second or later timed answer in the topic)
        a topic with times needs. Only they show how much a person's times vary around
        their own speed; with fewer, the fit can put all the spread into the persons' speeds
        and state times to within a few percent (in the mars_ib replay a topic fitted on 11
        persons with one or two answers each got a residual log-time sd of 0.008 and then
        predicted medians of years; on simulated topics with a true sd of 0.5, about 6
        repeats gave fitted sds down to 0.05, 10 to 16 repeats none below 0.08). Such a
        topic is skipped like a small one.
    lnirt_params:
        Hyperparameters of every topic's ``LNIRT`` (None: its defaults), except that a
        topic's LNIRT does not recalibrate its chances (``learn_calibration``) unless these
        ask for it: the service calibrates every family on held-out students itself, and
        a topic's items are its few difficulty levels, each seen by many persons.
    """

    name = "lnirt"
    predicts_time = True

    def __init__(
        self,
        min_rows: int = 10,
        lnirt_params: dict[str, Any] | None = None,
        min_repeats: int = 10,
    ) -> None:
        self.min_rows = min_rows
        self.lnirt_params = lnirt_params
        self.min_repeats = min_repeats

    def warm_start(self, previous: LearnerModel) -> bool:
        """Each topic of ``previous`` (a fitted ``TopicLNIRT`` with the same settings) hands
        its searched values to this model's LNIRT of that topic (``LNIRT.warm_start``); a
        topic new since then searches for its own. ``searched_rows`` stays that of the fit
        that searched."""
        if not isinstance(previous, TopicLNIRT) or not getattr(previous, "fitted_", False):
            return False
        if previous.get_params() != self.get_params() or previous.searched_rows() is None:
            return False
        self._warm = (dict(previous.models_), previous.searched_rows())
        return True

    def searched_rows(self) -> int | None:
        return getattr(self, "searched_rows_", None)

    def fit(self, df: pd.DataFrame) -> Self:
        data = validate_interactions(df)
        warm, searched = self.__dict__.pop("_warm", ({}, len(data)))
        models: dict[str, LNIRT] = {}
        skipped: dict[str, str] = {}
        skills = data["skill_id"].fillna(data["item_id"])
        for skill, rows in data.groupby(skills, sort=True):
            if len(rows) < self.min_rows:
                skipped[str(skill)] = f"{len(rows)} rows, fewer than {self.min_rows}"
                continue
            timed = rows["user_id"][rows["rt_seconds"].notna() & (rows["rt_seconds"] > 0)]
            repeats = len(timed) - timed.nunique()
            if len(timed) and repeats < self.min_repeats:
                skipped[str(skill)] = (
                    f"{repeats} repeated timed answers, fewer than {self.min_repeats}: the "
                    "spread of a person's own times cannot be told from their speed yet"
                )
                continue
            try:
                model = LNIRT(**{"learn_calibration": False, **(self.lnirt_params or {})})
                if str(skill) in warm:
                    model.warm_start(warm[str(skill)])
                models[str(skill)] = model.fit(rows)
            except DegenerateFitError as exc:
                log.warning("LNIRT for topic %s not used: %s", skill, exc)
                skipped[str(skill)] = f"degenerate fit: {exc}"
        self.models_ = models
        self.skipped_ = skipped
        self.searched_rows_ = int(searched)
        self.fitted_ = True
        return self

    @property
    def accuracy_only_(self) -> list[str]:
        """Topics whose LNIRT was fitted without any response time (no predictions served)."""
        return sorted(k for k, m in self.models_.items() if not m.times_fitted_)

    def _serving(self, topic: str) -> LNIRT:
        """The topic's LNIRT, or ``CannotPredictError`` when it has none or no times."""
        model = self.models_.get(topic)
        if model is None:
            raise CannotPredictError(f"no LNIRT fitted for topic(s) {topic}")
        if not model.times_fitted_:
            raise CannotPredictError(
                f"the LNIRT of topic {topic} was fitted without response times: it predicts "
                "no times"
            )
        return model

    def _predict_validated(self, data: pd.DataFrame) -> pd.DataFrame:
        skills = data["skill_id"].fillna(data["item_id"])
        unknown = sorted(set(skills) - set(self.models_))
        if unknown:
            raise CannotPredictError(f"no LNIRT fitted for topic(s) {', '.join(unknown)}")
        out = pd.DataFrame(index=data.index, columns=list(PREDICTION_COLUMNS)).astype(float)
        for skill, rows in data.groupby(skills, sort=False):
            out.loc[rows.index] = self._serving(skill)._predict_validated(rows).to_numpy()
        return out

    def predict_one(self, user_id: Any, item_id: Any, skill_id: Any = None) -> dict[str, float]:
        """The topic's ``LNIRT.predict_one`` (the topic is ``skill_id``, else ``item_id``):
        the same numbers and errors as ``predict`` on the one-row frame, without a DataFrame
        (ids it cannot read as ``validate_interactions`` does, and subclasses that change
        ``predict``, go through the DataFrame path)."""
        self._check_fitted()
        ids = fast_path_ids(self, TopicLNIRT, user_id, item_id, skill_id)
        if ids is None:
            return super().predict_one(user_id, item_id, skill_id)
        user, item, skill = ids
        topic = item if skill is None else skill
        return self._serving(topic).predict_one(user, item, skill)

    def update(self, row: Mapping[str, Any]) -> None:
        """The topic's ``LNIRT.update``; a row is checked even when its topic has no LNIRT."""
        self._check_fitted()
        _user, item, skill, _y, _rt = parse_attempt(row)  # a bad row fails whatever its topic
        model = self.models_.get(item if skill is None else skill)
        if model is None:
            return  # a topic without an LNIRT yet: the next training includes this row
        model.update(row)

    def learn_many(self, rows: pd.DataFrame) -> None:
        """``update`` with each row in turn: each topic's LNIRT learns its rows in one pass
        (``LNIRT.learn_many``); topics do not share persons' states, so the order between
        them does not matter. Rows of a topic without an LNIRT teach nothing, as in
        ``update``."""
        self._check_fitted()
        plain = plain_attempts(rows)
        if plain is None:
            super().learn_many(rows)
            return
        items, skills = plain[1], plain[2]  # a row's topic: its skill, else its item
        topics = items
        if skills is not None:
            topics = np.array([i if s is None else s for i, s in zip(items, skills, strict=True)])
        for topic, positions in pd.Series(np.arange(len(topics))).groupby(topics, sort=False):
            model = self.models_.get(topic)
            if model is not None:
                where = positions.to_numpy()
                model.learn_attempts(*(None if part is None else part[where] for part in plain))

    def person_state(self, user_id: Any, skill_id: Any) -> dict[str, Any]:
        """The user's (theta, tau) posterior for one topic (see ``LNIRT.person_state``)."""
        model = self.models_.get(id_string(skill_id))
        if model is None:
            raise CannotPredictError(f"no LNIRT fitted for topic {skill_id}")
        return model.person_state(user_id)

    def person_fit(
        self, df: pd.DataFrame, level: float = 0.05, by_topic: bool = False
    ) -> pd.DataFrame:
        """Person-fit statistics (see ``LNIRT.person_fit``) of every user in ``df``.

        Each row is scored by its topic's LNIRT (rows of topics without one, or of items it
        was not fitted on, are left out). ``by_topic=True`` returns one row per (user, topic)
        with columns ``user_id``, ``skill_id`` and the statistics; the default returns one row
        per user with the topics combined as the module docstring says. Raises
        ``personfit.NothingToScoreError`` (a ``ValueError``) when no row can be scored.
        """
        self._check_fitted()
        level = check_level(level)
        data = validate_interactions(df, allow_missing_outcome=True)
        skills = data["skill_id"].fillna(data["item_id"])
        frames = []
        for skill, rows in data.groupby(skills, sort=True):
            model = self.models_.get(str(skill))
            if model is None:
                continue
            frame = model.person_fit_parts(rows).frame()
            frame.insert(1, "skill_id", str(skill))
            frames.append(frame)
        if not frames or sum(len(f) for f in frames) == 0:
            raise NothingToScoreError(
                f"person_fit found no row of a topic and item with a fitted LNIRT "
                f"({len(df)} rows given; topics fitted: {len(self.models_)})"
            )
        parts = pd.concat(frames, ignore_index=True)
        if by_topic:
            return summarise_person_fit(parts, ["user_id", "skill_id"], level)
        grouped = parts.groupby("user_id", sort=True)
        per_user = grouped[list(PERSON_FIT_SUMS)].sum()
        per_user[["theta", "tau"]] = grouped[["theta", "tau"]].mean()
        return summarise_person_fit(per_user.reset_index(), ["user_id"], level)

    def _get_state(self) -> dict[str, Any]:
        skills = sorted(self.models_)
        state: dict[str, Any] = {"skills": skills, "skipped": self.skipped_}
        if self.searched_rows() is not None:
            state["searched_rows"] = self.searched_rows()
        for i, skill in enumerate(skills):
            state[f"model_{i}"] = np.frombuffer(self.models_[skill].to_bytes(), dtype=np.uint8)
        return state

    def _set_state(self, state: dict[str, Any]) -> None:
        self.models_ = {
            skill: LNIRT.from_bytes(state[f"model_{i}"].tobytes())
            for i, skill in enumerate(state["skills"])
        }
        self.skipped_ = dict(state["skipped"])
        # Artifacts written before warm starts do not say: their next fit searches.
        searched = state.get("searched_rows")
        if searched is not None:
            if isinstance(searched, bool) or not isinstance(searched, int) or searched < 0:
                raise ValueError(f"TopicLNIRT state has an invalid searched_rows: {searched!r}")
            self.searched_rows_ = searched
