"""The model contract (docs/ARCHITECTURE.md), checked against every learner model family.

The battery itself is the library ``smartstudy.testing`` (``check_learner_model``); this module
runs each of its checks on each family as one parametrised test (``parametrize_with_checks``):
every model of
``smartstudy.models.MODEL_CLASSES`` and the per-topic ``TopicLNIRT`` the app serves. A new
model joins the registry and gets every check for free. ``FAST_PARAMS`` holds per-model
hyperparameters that keep these tests quick (few epochs, few restarts, ...).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import pytest

from smartstudy.models import MODEL_CLASSES, LearnerModel
from smartstudy.models.lnirt import TopicLNIRT
from smartstudy.testing import (
    CHECKS,
    ContractCase,
    ContractError,
    check_learner_model,
    contract_data,
    parametrize_with_checks,
    run_check,
)

# Per-model hyperparameters for speed; models not listed use their defaults.
FAST_PARAMS: dict[str, dict[str, Any]] = {
    "baseline": {},
    "bkt": {"n_restarts": 2},
    "neural": {"epochs": 8, "batch_size": 128, "hidden": 8, "time_hidden": 8, "d_item": 4},
}


def _factory(name: str) -> Callable[[], LearnerModel]:
    return lambda: MODEL_CLASSES[name](**FAST_PARAMS.get(name, {}))


FACTORIES: dict[str, Callable[[], LearnerModel]] = {
    **{name: _factory(name) for name in sorted(MODEL_CLASSES)},
    "topic_lnirt": TopicLNIRT,
}
# Relative tolerance of batch ``predict`` against the ``predict_one``/``update`` loop, where
# the library's default (1e-6) does not hold by design: Baseline's ``update`` also teaches the
# item, skill and global means that a batch ``predict`` keeps fixed (a user's own rows move
# them by about 0.1% on these data).
LOOP_RTOL: dict[str, float] = {"baseline": 5e-3}
DATA = contract_data()
ALL_CLASSES = (*MODEL_CLASSES.values(), TopicLNIRT)
# One case per family, shared by its checks (the fitted model is read-only to them).
CASES = {
    name: ContractCase(
        factory, DATA, other_classes=ALL_CLASSES, loop_rtol=LOOP_RTOL.get(name, 1e-6)
    )
    for name, factory in FACTORIES.items()
}


@parametrize_with_checks(CASES)
def test_contract(case: ContractCase, check: Callable[[ContractCase], None]) -> None:
    check(case)


@pytest.mark.parametrize("name", sorted(MODEL_CLASSES))
def test_registry_names_match(name: str) -> None:
    cls = MODEL_CLASSES[name]
    assert issubclass(cls, LearnerModel)
    assert cls.name == name


# -- the battery catches broken models ---------------------------------------------------------
class _Peeking(LearnerModel):
    """Predicts each row from the user's rate *including* that row's outcome; refuses
    nothing and never learns online: a model that should fail several checks."""

    name = "peeking"

    def __init__(self, prior: float = 0.5) -> None:
        self.prior = prior

    def fit(self, df: pd.DataFrame) -> _Peeking:
        self.rate_ = float(df["correct"].mean())
        self.fitted_ = True
        return self

    def _predict_validated(self, data: pd.DataFrame) -> pd.DataFrame:
        y = data["correct"].fillna(self.rate_)
        rate = y.groupby(data["user_id"]).transform("mean")
        return pd.DataFrame({"p_correct": rate.to_numpy(dtype=float)}, index=data.index)

    def update(self, row: Mapping[str, Any]) -> None:
        return None

    def _get_state(self) -> dict[str, Any]:
        return {"rate": self.rate_}

    def _set_state(self, state: dict[str, Any]) -> None:
        self.rate_ = float(state["rate"])


def test_check_learner_model_names_every_broken_check() -> None:
    with pytest.raises(ContractError) as caught:
        check_learner_model(
            _Peeking, DATA, skip=("absurd_times_of_one_student_barely_move_another",)
        )
    failed = caught.value.failures
    for name in (
        "no_peeking",
        "missing_outcome_is_predicted_and_teaches_nothing",
        "update_changes_prediction_with_constant_state",
        "update_rejects_bad_rows",
        "predict_matches_online_loop",
    ):
        assert name in failed, sorted(failed)
    assert "fit_returns_self" not in failed and "not_fitted" not in failed
    assert "no_peeking" in str(caught.value)


class _Sticky(_Peeking):
    """Honest one-step-ahead predictions, but ``fit`` adds to the previous fit's counts and
    changes the frame it is given: the checks of fitting must catch both."""

    def fit(self, df: pd.DataFrame) -> _Sticky:
        self.n_ = getattr(self, "n_", 0.0) + len(df)
        self.k_ = getattr(self, "k_", 0.0) + float(df["correct"].sum())
        self.rate_ = self.k_ / self.n_
        df["correct"] = df["correct"].astype(float)  # casts the caller's column in place
        self.fitted_ = True
        return self

    def _predict_validated(self, data: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"p_correct": np.full(len(data), self.rate_)}, index=data.index)


def test_fit_checks_catch_kept_state_and_a_changed_input() -> None:
    for name, message in (
        ("refit_resets_state", "refitted"),
        ("fit_leaves_input_unchanged", "fit's input"),
    ):
        case = ContractCase(_Sticky, contract_data())  # own data: its fit changes its input
        with pytest.raises(AssertionError, match=message):
            run_check(case, name)


def test_check_learner_model_runs_every_check_on_a_conforming_model() -> None:
    # The library entry point, as a researcher calls it without pytest.
    ran = check_learner_model(
        FACTORIES["baseline"], DATA, other_classes=ALL_CLASSES, loop_rtol=LOOP_RTOL["baseline"]
    )
    assert ran == list(CHECKS)


def test_unknown_check_names_are_refused() -> None:
    with pytest.raises(KeyError, match="no_such_check"):
        check_learner_model(_Peeking, DATA, skip=("no_such_check",))
    with pytest.raises(KeyError, match="no_such_check"):
        run_check(CASES["baseline"], "no_such_check")


# -- parametrize_with_checks -------------------------------------------------------------------
def _parametrize_args(mark: Any) -> tuple[Any, list[tuple[ContractCase, Any]], list[str]]:
    (names, pairs), kwargs = mark.args, mark.kwargs
    return names, list(pairs), list(kwargs["ids"])


def test_parametrize_with_checks_pairs_every_model_with_every_check() -> None:
    names, pairs, ids = _parametrize_args(parametrize_with_checks(CASES))
    assert names == ("case", "check")
    assert len(pairs) == len(CASES) * len(CHECKS) == len(ids)
    assert ids[0] == f"{next(iter(CASES))}-{next(iter(CHECKS))}"
    assert "bkt-no_peeking" in ids and "topic_lnirt-save_load_round_trip" in ids
    assert len(set(ids)) == len(ids)
    for (case, check), pair_id in zip(pairs, ids, strict=True):
        family, check_name = pair_id.split("-")
        assert case is CASES[family]  # given cases are used as they are, shared by the checks
        assert check is CHECKS[check_name]


def test_parametrize_with_checks_builds_one_shared_case_per_factory() -> None:
    _, pairs, ids = _parametrize_args(
        parametrize_with_checks(
            [_Peeking, lambda: _Peeking(prior=0.2), _Sticky],
            data=DATA,
            skip=("no_peeking",),
            other_classes=(TopicLNIRT,),
        )
    )
    per_model = len(CHECKS) - 1
    assert len(pairs) == 3 * per_model
    assert "_Peeking0-fit_returns_self" in ids and "_Peeking1-fit_returns_self" in ids
    assert "_Sticky-fit_returns_self" in ids
    assert not any(i.endswith("-no_peeking") for i in ids)
    cases = [case for case, _ in pairs]
    assert len({id(c) for c in cases}) == 3  # one case per model, shared by its checks
    assert all(c.data is DATA and c.other_classes == (TopicLNIRT,) for c in cases)
    assert cases[per_model].new().prior == 0.2
    with pytest.raises(KeyError, match="no_such_check"):
        parametrize_with_checks([_Peeking], skip=("no_such_check",))


def test_testing_imports_without_pytest() -> None:
    """pytest is a development dependency only: the library must import without it."""
    code = (
        "import sys\n"
        "sys.modules['pytest'] = None\n"  # makes `import pytest` fail
        "import smartstudy.testing as t\n"
        "assert 'pytest' not in [m for m in sys.modules if sys.modules[m] is not None]\n"
        "try:\n"
        "    t.parametrize_with_checks({})\n"
        "except ImportError:\n"
        "    print('no pytest')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "no pytest"
