"""A check shared by the models' tests of ``learn_many``."""

from __future__ import annotations

import pandas as pd
import pytest

from smartstudy.models.base import LearnerModel


def refused_alike(
    model: LearnerModel, rows: pd.DataFrame, match: str
) -> tuple[LearnerModel, LearnerModel]:
    """Two copies of ``model``: one given ``rows`` by ``learn_many``, one row by row by
    ``update``. Both must refuse a row of ``rows`` with the same message (matching
    ``match``); returns them, (at once, one by one), for the caller to compare their states
    (the rows before the refused one learnt)."""
    at_once, one_by_one = (type(model).from_bytes(model.to_bytes()) for _ in range(2))
    with pytest.raises(ValueError, match=match) as refused:
        at_once.learn_many(rows)
    with pytest.raises(ValueError) as expected:
        for row in rows.to_dict("records"):
            one_by_one.update(row)
    assert str(refused.value) == str(expected.value)
    return at_once, one_by_one
