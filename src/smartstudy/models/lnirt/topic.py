"""LNIRT as the app uses it: one ``LNIRT`` per topic, items = difficulty levels.

In the app an item is a (topic, difficulty) pair and the skill is the topic. The original
system kept one LNIRT per topic with shared difficulty-level parameters trained on all users
and a personal (theta, tau) per user (seed 000); ``TopicLNIRT`` does the same on top of the
contract-tested ``LNIRT``. A topic with too little data, or whose fit is degenerate, has no
LNIRT: predictions for it raise ``CannotPredictError`` and a prediction chain falls back.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Self

import numpy as np
import pandas as pd

from smartstudy.data.schema import id_string, parse_attempt, validate_interactions
from smartstudy.models.base import PREDICTION_COLUMNS, CannotPredictError, LearnerModel
from smartstudy.models.baseline import fast_path_applies, one_row_ids
from smartstudy.models.lnirt.fit import DegenerateFitError
from smartstudy.models.lnirt.model import LNIRT

log = logging.getLogger(__name__)


class TopicLNIRT(LearnerModel):
    """One ``LNIRT`` per skill (topic); persons are (user, topic) pairs.

    Parameters
    ----------
    min_rows:
        Fewest rows a topic needs for its own LNIRT; smaller topics are skipped (listed in
        ``skipped_`` with the reason) and cannot be predicted.
    lnirt_params:
        Hyperparameters of every topic's ``LNIRT`` (None: its defaults).
    """

    name = "lnirt"
    predicts_time = True

    def __init__(self, min_rows: int = 10, lnirt_params: dict[str, Any] | None = None) -> None:
        self.min_rows = min_rows
        self.lnirt_params = lnirt_params

    def fit(self, df: pd.DataFrame) -> Self:
        data = validate_interactions(df)
        models: dict[str, LNIRT] = {}
        skipped: dict[str, str] = {}
        skills = data["skill_id"].fillna(data["item_id"])
        for skill, rows in data.groupby(skills, sort=True):
            if len(rows) < self.min_rows:
                skipped[str(skill)] = f"{len(rows)} rows, fewer than {self.min_rows}"
                continue
            try:
                models[str(skill)] = LNIRT(**(self.lnirt_params or {})).fit(rows)
            except DegenerateFitError as exc:
                log.warning("LNIRT for topic %s not used: %s", skill, exc)
                skipped[str(skill)] = f"degenerate fit: {exc}"
        self.models_ = models
        self.skipped_ = skipped
        self.fitted_ = True
        return self

    def _predict_validated(self, data: pd.DataFrame) -> pd.DataFrame:
        skills = data["skill_id"].fillna(data["item_id"])
        unknown = sorted(set(skills) - set(self.models_))
        if unknown:
            raise CannotPredictError(f"no LNIRT fitted for topic(s) {', '.join(unknown)}")
        out = pd.DataFrame(index=data.index, columns=list(PREDICTION_COLUMNS)).astype(float)
        for skill, rows in data.groupby(skills, sort=False):
            out.loc[rows.index] = self.models_[skill]._predict_validated(rows).to_numpy()
        return out

    def predict_one(self, user_id: Any, item_id: Any, skill_id: Any = None) -> dict[str, float]:
        """The topic's ``LNIRT.predict_one`` (the topic is ``skill_id``, else ``item_id``):
        the same numbers and errors as ``predict`` on the one-row frame, without a DataFrame
        (ids it cannot read as ``validate_interactions`` does, and subclasses that change
        ``predict``, go through the DataFrame path)."""
        self._check_fitted()
        ids = one_row_ids(user_id, item_id, skill_id)
        if ids is None or not fast_path_applies(self, TopicLNIRT):
            return super().predict_one(user_id, item_id, skill_id)
        user, item, skill = ids
        topic = item if skill is None else skill
        model = self.models_.get(topic)
        if model is None:
            raise CannotPredictError(f"no LNIRT fitted for topic(s) {topic}")
        return model.predict_one(user, item)

    def update(self, row: Mapping[str, Any]) -> None:
        """The topic's ``LNIRT.update``; a row is checked even when its topic has no LNIRT."""
        self._check_fitted()
        _user, item, skill, _y, _rt = parse_attempt(row)  # a bad row fails whatever its topic
        model = self.models_.get(item if skill is None else skill)
        if model is None:
            return  # a topic without an LNIRT yet: the next training includes this row
        model.update(row)

    def person_state(self, user_id: Any, skill_id: Any) -> dict[str, Any]:
        """The user's (theta, tau) posterior for one topic (see ``LNIRT.person_state``)."""
        model = self.models_.get(id_string(skill_id))
        if model is None:
            raise CannotPredictError(f"no LNIRT fitted for topic {skill_id}")
        return model.person_state(user_id)

    def _get_state(self) -> dict[str, Any]:
        skills = sorted(self.models_)
        state: dict[str, Any] = {"skills": skills, "skipped": self.skipped_}
        for i, skill in enumerate(skills):
            state[f"model_{i}"] = np.frombuffer(self.models_[skill].to_bytes(), dtype=np.uint8)
        return state

    def _set_state(self, state: dict[str, Any]) -> None:
        self.models_ = {
            skill: LNIRT.from_bytes(state[f"model_{i}"].tobytes())
            for i, skill in enumerate(state["skills"])
        }
        self.skipped_ = dict(state["skipped"])
