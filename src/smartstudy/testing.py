"""The learner-model contract as a library: ``check_learner_model(factory)``.

Every learner model of SmartStudy implements one contract (docs/ARCHITECTURE.md, "The model
contract"; ``smartstudy.models.base``). This module checks a model against it, the way
scikit-learn's ``check_estimator`` checks an estimator, so that a researcher's own model can be
tested exactly like the built-in ones, with pytest or without::

    from smartstudy.testing import check_learner_model
    check_learner_model(lambda: MyModel(alpha=0.1))  # raises ContractError on any failure

``factory`` builds a fresh, unfitted model each time it is called. Each check is a function of a
:class:`ContractCase` (the factory, the data and the tolerances; it fits the model once and
shares it between the read-only checks). ``CHECKS`` lists them by name; ``run_check`` runs one.
In a pytest module, ``parametrize_with_checks`` makes one test of each (model, check) pair, as
scikit-learn's decorator of that name does (see tests/test_model_contract.py)::

    @parametrize_with_checks({"mine": lambda: MyModel(alpha=0.1)})
    def test_contract(case, check):
        check(case)

What is checked: the API shape (``fit`` returns ``self``, ``__init__`` only stores
hyperparameters, learned attributes end in ``_``), predictions aligned with the input's index,
probabilities in [0, 1], times positive with ordered 80% intervals, cold start (unknown users and
items get predictions; a model may decline a *skill* it was not fitted on with
``CannotPredictError``), one-step-ahead prediction without peeking at a row's own outcome and
without leaks between users, ``predict`` changing nothing, missing outcomes teaching nothing,
``order`` respected, batch ``predict`` equal to the ``predict_one``/``update`` loop, O(1)
``update`` that rejects bad rows, ``learn_many`` equal to the ``update`` loop, ``fit``
leaving its input unchanged and resetting all learned state, save/load round trips that
refuse garbage and other classes' files, determinism, errors that name the bad column, and
robustness of one student's absurd times.

The default data (:func:`contract_data`) are synthetic and seeded: person ability and item
difficulty drive correctness, person speed and item time intensity drive log-normal response
times, and the users are split into a training group and a test group of unseen users.
"""

from __future__ import annotations

import io
import json
import tempfile
import warnings
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from smartstudy.data.schema import InteractionsError, InteractionsWarning
from smartstudy.models.base import (
    PREDICTION_COLUMNS,
    ArtifactError,
    CannotPredictError,
    LearnerModel,
    NotFittedError,
)

__all__ = [
    "CHECKS",
    "ContractCase",
    "ContractData",
    "ContractError",
    "check_learner_model",
    "contract_data",
    "parametrize_with_checks",
    "run_check",
]

ModelFactory = Callable[[], LearnerModel]

#: Seconds of one student's absurd completions that must barely move another's prediction.
ABSURD_SECONDS: tuple[float, ...] = (1e-300, 86_400.0)
#: Largest relative move of another student's predicted median time that absurd times may cause.
ABSURD_MAX_SHIFT = 0.05


class ContractError(AssertionError):
    """One or more contract checks failed; ``failures`` maps each check's name to its message."""

    def __init__(self, failures: Mapping[str, str]) -> None:
        self.failures = dict(failures)
        lines = [f"{len(self.failures)} contract check(s) failed:"]
        lines += [f"- {name}: {message}" for name, message in self.failures.items()]
        super().__init__("\n".join(lines))


# -- data -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ContractData:
    """Interactions to check a model on: ``train`` to fit, ``test`` of users unseen in
    ``train`` (with a non-trivial index, so that index alignment is really tested)."""

    train: pd.DataFrame
    test: pd.DataFrame


def contract_data(
    seed: int = 20240611,
    n_users: int = 80,
    n_items: int = 25,
    n_skills: int = 4,
    n_train_users: int = 60,
) -> ContractData:
    """Synthetic interactions: every user answers every item once, in a random order.

    Correctness follows a Rasch model (ability ``theta``, difficulty ``b``); log times follow
    ``beta_i - tau_p`` plus noise of sd 0.5; 5% of the times are missing; item ``i`` belongs to
    skill ``i % n_skills``. The first ``n_train_users`` users form ``train``.
    """
    rng = np.random.default_rng(seed)
    theta = rng.normal(0.0, 1.0, n_users)  # ability
    tau = rng.normal(0.0, 0.3, n_users)  # speed (log-seconds faster than average)
    b = rng.normal(0.0, 1.0, n_items)  # difficulty
    beta = rng.normal(np.log(45.0), 0.4, n_items)  # time intensity
    rows = []
    for u in range(n_users):
        for step, i in enumerate(rng.permutation(n_items)):
            p = 1.0 / (1.0 + np.exp(-(theta[u] - b[i])))
            rt = float(np.exp(rng.normal(beta[i] - tau[u], 0.5)))
            rows.append(
                {
                    "user_id": f"u{u:03d}",
                    "item_id": f"i{i:02d}",
                    "skill_id": f"s{i % n_skills}",
                    "correct": int(rng.random() < p),
                    "rt_seconds": round(rt, 1) if rng.random() > 0.05 else np.nan,
                    "order": float(step),
                }
            )
    frame = pd.DataFrame(rows)
    train_users = {f"u{u:03d}" for u in range(n_train_users)}
    in_train = frame["user_id"].isin(train_users)
    train = frame[in_train].reset_index(drop=True)
    test = frame[~in_train].copy()
    test.index = pd.Index(1000 + 3 * np.arange(len(test)), name="attempt")
    return ContractData(train=train, test=test)


# -- the case every check runs on -------------------------------------------------------------
@dataclass
class ContractCase:
    """A model factory with the data and tolerances its checks use.

    ``rtol``/``atol`` bound differences between predictions that must not change (e.g. an
    earlier row's when a later outcome changes): bit-identical for NumPy code, still tight
    for batched float arithmetic. ``loop_rtol``/``loop_atol`` bound the difference between a
    batch ``predict`` and the ``predict_one``/``update`` loop, which may take another path
    through the arithmetic. ``other_classes`` are model classes whose artifacts this model
    must refuse to load (a trivial class is always added).
    """

    factory: ModelFactory
    data: ContractData = field(default_factory=contract_data)
    rtol: float = 1e-9
    atol: float = 1e-12
    loop_rtol: float = 1e-6
    loop_atol: float = 1e-9
    other_classes: tuple[type[LearnerModel], ...] = ()
    _fitted: LearnerModel | None = field(default=None, init=False, repr=False)

    @property
    def train(self) -> pd.DataFrame:
        return self.data.train

    @property
    def test(self) -> pd.DataFrame:
        return self.data.test

    def new(self) -> LearnerModel:
        """A fresh, unfitted model from the factory."""
        model = self.factory()
        if not isinstance(model, LearnerModel):
            raise TypeError(f"the factory returned a {type(model).__name__}, not a LearnerModel")
        return model

    def fitted(self) -> LearnerModel:
        """A model fitted on ``train``, shared read-only between checks (predict must not
        mutate it, which one check verifies)."""
        if self._fitted is None:
            self._fitted = self.new().fit(self.train)
        return self._fitted

    def copy_of_fitted(self) -> LearnerModel:
        """An independent copy of ``fitted()`` (through its artifact) to update freely."""
        model = self.fitted()
        return type(model).from_bytes(model.to_bytes())

    def assert_rows_equal(
        self, a: pd.DataFrame, b: pd.DataFrame, rows: pd.Index, what: str
    ) -> None:
        """``a`` and ``b`` agree on ``rows`` within ``rtol``/``atol``."""
        if len(rows) == 0:
            return
        np.testing.assert_allclose(
            a.loc[rows].to_numpy(dtype=float),
            b.loc[rows].to_numpy(dtype=float),
            rtol=self.rtol,
            atol=self.atol,
            err_msg=what,
        )

    def user_rows(self, user: Any) -> pd.DataFrame:
        """The test rows of ``user`` in ``order``."""
        return self.test[self.test["user_id"] == user].sort_values("order", kind="stable")


def _expected_columns(model: LearnerModel) -> list[str]:
    return list(PREDICTION_COLUMNS) if model.predicts_time else ["p_correct"]


def _state_snapshot(model: LearnerModel) -> tuple[str, dict[str, bytes]]:
    state = model._get_state()
    arrays = {
        k: np.ascontiguousarray(v).tobytes() for k, v in state.items() if isinstance(v, np.ndarray)
    }
    plain = {k: v for k, v in state.items() if not isinstance(v, np.ndarray)}
    return json.dumps(plain, sort_keys=True, default=str), arrays


def _state_size(model: LearnerModel) -> int:
    """Number of stored numbers / ids in the learned state (grows with users, items, ...)."""
    return _count(model._get_state())


def _count(value: Any) -> int:
    if isinstance(value, np.ndarray):
        if value.dtype == np.uint8 and value[:2].tobytes() == b"PK":
            return _artifact_count(value.tobytes())
        return int(value.size)
    if isinstance(value, Mapping):
        return sum(_count(v) for v in value.values()) + len(value)
    if isinstance(value, list | tuple):
        return sum(_count(v) for v in value)
    return 1


def _artifact_count(blob: bytes) -> int:
    """``_count`` of the state inside a nested model artifact (a model made of models, such
    as one per topic, stores each as ``to_bytes``), whose compressed length says nothing."""
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        meta = json.loads(zf.read("meta.json"))
        with np.load(io.BytesIO(zf.read("arrays.npz")), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    return _count(meta["state"]) + _count(arrays)


def _predict_one_or_none(
    model: LearnerModel, user: Any, item: Any, skill: Any = None
) -> dict[str, float] | None:
    """``predict_one``, or None where the model declines (``CannotPredictError``)."""
    try:
        return model.predict_one(user, item, skill)
    except CannotPredictError:
        return None


def _attempt(row: Mapping[str, Any]) -> dict[str, Any]:
    """An ``update`` row from a frame row (no ``order``; NaN times stay NaN)."""
    return {k: row[k] for k in ("user_id", "item_id", "skill_id", "correct", "rt_seconds")}


class _Impostor(LearnerModel):
    """A second, trivial model class: artifacts must never load across classes."""

    name = "impostor"

    def __init__(self, smoothing: float = 0.01) -> None:
        self.smoothing = smoothing

    def fit(self, df: pd.DataFrame) -> _Impostor:
        self.rate_ = float(df["correct"].mean())
        self.fitted_ = True
        return self

    def _predict_validated(self, data: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"p_correct": np.full(len(data), self.rate_)}, index=data.index)

    def update(self, row: Mapping[str, Any]) -> None:
        self.rate_ += self.smoothing * (float(row["correct"]) - self.rate_)

    def _get_state(self) -> dict[str, Any]:
        return {"rate": self.rate_}

    def _set_state(self, state: dict[str, Any]) -> None:
        self.rate_ = float(state["rate"])


# -- API shape --------------------------------------------------------------------------------
def check_fit_returns_self(case: ContractCase) -> None:
    model = case.new()
    assert model.fit(case.train) is model, "fit must return self"


def check_init_does_no_work_and_params_round_trip(case: ContractCase) -> None:
    model = case.new()
    params = model.get_params()
    assert set(vars(model)) == set(params), "__init__ must only store its hyperparameters"
    assert not [k for k in vars(model) if k.endswith("_")], "no learned state before fit"
    clone = type(model)(**params)
    assert clone.get_params() == params, "a clone from get_params() has other params"
    json.dumps(params)  # hyperparameters travel in the artifact's JSON
    model.fit(case.train)
    learned = [k for k in vars(model) if k not in params]
    assert learned, "fit must store learned state"
    # scikit-learn's convention: public learned state ends in "_"; private caches start with it.
    public = [k for k in learned if not k.startswith("_")]
    assert all(k.endswith("_") for k in public), f"learned attributes must end in _: {public}"
    assert model.get_params() == params, "fit must not change hyperparameters"


def check_name_and_flags(case: ContractCase) -> None:
    cls = type(case.new())
    assert isinstance(cls.name, str) and cls.name, "a model class needs a non-empty name"
    assert isinstance(cls.predicts_time, bool), "predicts_time must be a bool"


def check_predict_shape_and_index(case: ContractCase) -> None:
    model = case.fitted()
    pred = model.predict(case.test)
    assert isinstance(pred, pd.DataFrame), f"predict returned a {type(pred).__name__}"
    assert len(pred) == len(case.test), "predict must return one row per input row"
    assert pred.index.equals(case.test.index), "predict must keep the input's index"
    assert list(pred.columns) == _expected_columns(model), f"columns {list(pred.columns)}"


def check_probabilities_and_times_are_valid(case: ContractCase) -> None:
    model = case.fitted()
    pred = model.predict(case.test)
    p = pred["p_correct"].to_numpy()
    assert np.isfinite(p).all(), "p_correct must be finite"
    assert ((p >= 0.0) & (p <= 1.0)).all(), "p_correct must lie in [0, 1]"
    if model.predicts_time:
        med, lo, hi = (pred[c].to_numpy() for c in PREDICTION_COLUMNS[1:])
        assert np.isfinite(np.c_[med, lo, hi]).all(), "times must be finite"
        assert (lo > 0).all(), "times must be positive"
        assert (lo <= med).all() and (med <= hi).all(), "p10 <= median <= p90 must hold"
        assert (lo < hi).all(), "an 80% interval of a continuous time has positive width"


def check_predictions_are_informative(case: ContractCase) -> None:
    # A model that returns a constant passes every other check: it must not pass this one.
    # Ability and difficulty are strong in the default data, so probabilities must vary.
    pred = case.fitted().predict(case.test)
    assert pred["p_correct"].std() > 0.02, "p_correct barely varies: the model ignores its input"


def check_cold_start(case: ContractCase) -> None:
    """Unknown users and items get finite predictions, never an exception; only a skill
    the model was not fitted on may be declined with ``CannotPredictError``."""
    model = case.fitted()
    train = case.train
    known_item, known_skill = train["item_id"].iloc[0], train["skill_id"].iloc[0]
    known = pd.DataFrame(
        {
            "user_id": ["new-user", "new-user", train["user_id"].iloc[0]],
            "item_id": [known_item, "new-item", known_item],
            "skill_id": [known_skill, known_skill, known_skill],
            "correct": [1, np.nan, 0],
            "rt_seconds": [30.0, np.nan, 12.0],
            "order": [0, 1, 0],
        }
    )
    pred = model.predict(known)
    assert np.isfinite(pred.to_numpy()).all(), "cold-start predictions must be finite"
    assert pred["p_correct"].between(0, 1).all()
    unknown_skill = known.assign(
        item_id=["new-item-2", "new-item-3", known_item], skill_id=[None, "new-skill", None]
    )
    for k in range(len(unknown_skill)):
        try:
            row = model.predict(unknown_skill.iloc[[k]])
        except CannotPredictError:
            continue
        assert np.isfinite(row.to_numpy()).all(), "cold-start predictions must be finite"
    for skill in (known_skill, "never-seen-skill"):
        one = _predict_one_or_none(model, "never-seen", "never-seen-item", skill)
        assert one is not None or skill != known_skill, "declined a skill it was fitted on"
        if one is not None:
            assert set(one) == set(_expected_columns(model)), f"predict_one keys {sorted(one)}"
            assert all(np.isfinite(v) for v in one.values()), "predict_one must be finite"


# -- one-step-ahead ---------------------------------------------------------------------------
def check_no_peeking(case: ContractCase) -> None:
    """Changing one row's outcome and time leaves its own and all earlier predictions alone."""
    model = case.fitted()
    test = case.test
    user = test["user_id"].iloc[0]
    rows = case.user_rows(user)
    before = model.predict(test)
    for position in sorted({0, min(3, len(rows) - 1), len(rows) // 2, len(rows) - 1}):
        target = rows.index[position]
        changed = test.copy()
        changed.loc[target, "correct"] = 1 - changed.loc[target, "correct"]
        changed.loc[target, "rt_seconds"] = 7.0 * np.nan_to_num(
            changed.loc[target, "rt_seconds"], nan=20.0
        )
        after = model.predict(changed)
        upto = rows.index[: position + 1]
        what = f"row {position} of a user: its own or an earlier prediction saw its outcome"
        case.assert_rows_equal(before, after, upto, what)
        others = test.index[test["user_id"] != user]
        case.assert_rows_equal(before, after, others, "another user's prediction changed")


def check_no_cross_user_leak(case: ContractCase) -> None:
    """Changing every outcome of one user (first, middle, last by id) moves nobody else."""
    model = case.fitted()
    test = case.test
    users = sorted(test["user_id"].unique())
    before = model.predict(test)
    for user in {users[0], users[len(users) // 2], users[-1]}:
        mine = test["user_id"] == user
        changed = test.copy()
        changed.loc[mine, "correct"] = 1 - changed.loc[mine, "correct"]
        changed.loc[mine, "rt_seconds"] = changed.loc[mine, "rt_seconds"] * 10.0
        after = model.predict(changed)
        case.assert_rows_equal(before, after, test.index[~mine], "predict leaked between users")


def check_predict_does_not_mutate(case: ContractCase) -> None:
    model = case.fitted()
    snapshot = _state_snapshot(model)
    params = model.get_params()
    first = model.predict(case.test)
    second = model.predict(case.test)
    pd.testing.assert_frame_equal(first, second, check_exact=True)
    assert _state_snapshot(model) == snapshot, "predict changed the learned state"
    assert model.get_params() == params, "predict changed the hyperparameters"


def check_missing_outcome_is_predicted_and_teaches_nothing(case: ContractCase) -> None:
    model = case.fitted()
    test = case.test
    rows = case.user_rows(test["user_id"].iloc[0])
    target = rows.index[min(5, len(rows) - 1)]
    asked = test.copy()
    asked.loc[target, "correct"] = np.nan  # a question not answered yet; its time stays
    without = test.drop(index=target)
    pred_asked = model.predict(asked)
    assert np.isfinite(pred_asked.loc[target].to_numpy()).all(), "a NaN outcome's prediction"
    # Its own prediction never used its outcome, so it is the same as with the outcome known.
    pred_full = model.predict(test)
    case.assert_rows_equal(pred_asked, pred_full, pd.Index([target]), "NaN row's prediction")
    # And every other row is predicted as if the row were not there at all.
    pred_without = model.predict(without)
    case.assert_rows_equal(pred_asked, pred_without, without.index, "a NaN outcome taught")


def check_order_column_is_respected(case: ContractCase) -> None:
    model = case.fitted()
    shuffled = case.test.sample(frac=1.0, random_state=7)
    pred = model.predict(case.test)
    pred_shuffled = model.predict(shuffled)
    assert pred_shuffled.index.equals(shuffled.index), "predict must keep a shuffled index"
    case.assert_rows_equal(pred, pred_shuffled, case.test.index, "predictions follow row order")


def check_predict_matches_online_loop(case: ContractCase) -> None:
    """A batch ``predict`` of a user's rows equals predicting each with ``predict_one`` and
    then learning it with ``update``: the service's loop and the evaluation agree."""
    batch_model = case.fitted()
    users = sorted(case.test["user_id"].unique())
    for user in (users[0], users[-1]):
        # One copy per user: ``update`` may teach shared (population) state, which a batch
        # ``predict`` keeps fixed so that users cannot leak into each other's predictions.
        online = case.copy_of_fitted()
        rows = case.user_rows(user)
        batch = batch_model.predict(rows)
        for index, row in rows.iterrows():
            one = online.predict_one(row["user_id"], row["item_id"], row["skill_id"])
            np.testing.assert_allclose(
                [one[c] for c in batch.columns],
                batch.loc[index].to_numpy(dtype=float),
                rtol=case.loop_rtol,
                atol=case.loop_atol,
                err_msg=f"predict_one/update loop differs from predict at row {index!r}",
            )
            online.update(_attempt(row))


# -- online updates ---------------------------------------------------------------------------
def check_update_changes_prediction_with_constant_state(case: ContractCase) -> None:
    model = case.copy_of_fitted()
    train = case.train
    user = train["user_id"].iloc[0]
    first = train[train["user_id"] == user].iloc[0]
    item, skill = first["item_id"], first["skill_id"]
    row = {"user_id": user, "item_id": item, "skill_id": skill, "correct": 0, "rt_seconds": 300.0}
    before = model.predict_one(user, item, skill)
    model.update(row)
    after = model.predict_one(user, item, skill)
    assert after != before, "update must change the next prediction for that user"
    # O(1): once the user and item exist, more history must not grow the state.
    for _ in range(5):
        model.update(row)
    size = _state_size(model)
    items = train["item_id"].unique()
    for k in range(300):
        model.update({**row, "item_id": items[k % len(items)], "correct": k % 2})
    assert _state_size(model) == size, "state grows with a user's history: update is not O(1)"
    assert np.isfinite(list(model.predict_one(user, item, skill).values())).all()


def check_learn_many_matches_update_loop(case: ContractCase) -> None:
    """``learn_many`` leaves the state that ``update`` row by row leaves: every next
    prediction agrees, for new users and known ones, with rows in a mixed order."""
    rows = pd.concat([case.test, case.train.iloc[:200]]).sample(frac=1.0, random_state=5)
    one_by_one, at_once = case.copy_of_fitted(), case.copy_of_fitted()
    for _, row in rows.iterrows():
        one_by_one.update(_attempt(row))
    at_once.learn_many(rows[["user_id", "item_id", "skill_id", "correct", "rt_seconds"]])
    probes = rows[["user_id", "item_id", "skill_id"]].drop_duplicates().head(200)
    for user, item, skill in probes.itertuples(index=False):
        mine, theirs = (
            at_once.predict_one(user, item, skill),
            one_by_one.predict_one(user, item, skill),
        )
        for key, value in theirs.items():
            np.testing.assert_allclose(
                mine[key],
                value,
                rtol=case.loop_rtol,
                atol=case.loop_atol,
                err_msg=f"learn_many and the update loop disagree on {key} of {user}, {item}",
            )


def _expect_error(call: Callable[[], object], error: type[Exception], name: str, what: str) -> None:
    """``call`` raises ``error`` naming ``name`` (``what`` is the call, for the message)."""
    try:
        call()
    except error as exc:
        assert name in str(exc), f"{what}: the error does not name `{name}`: {exc}"
    else:
        raise AssertionError(f"{what} accepted a bad `{name}`")


def _expect_value_error(update: Callable[[], None], field_name: str) -> None:
    _expect_error(update, ValueError, field_name, "update of a row")


def check_update_rejects_bad_rows(case: ContractCase) -> None:
    model = case.copy_of_fitted()
    good = {"user_id": "u", "item_id": case.train["item_id"].iloc[0], "correct": 1}
    _expect_value_error(lambda: model.update({**good, "correct": "yes"}), "correct")
    missing = {k: v for k, v in good.items() if k != "correct"}
    _expect_value_error(lambda: model.update(missing), "correct")
    _expect_value_error(lambda: model.update({**good, "user_id": None}), "user_id")
    if model.predicts_time:
        _expect_value_error(lambda: model.update({**good, "rt_seconds": "slow"}), "rt_seconds")


# -- fitting ----------------------------------------------------------------------------------
def check_fit_leaves_input_unchanged(case: ContractCase) -> None:
    train = case.train.sample(frac=1.0, random_state=3)  # an unsorted frame, as users pass
    before = train.copy(deep=True)
    case.new().fit(train)
    pd.testing.assert_frame_equal(train, before, check_exact=True, obj="fit's input")


def check_refit_resets_state(case: ContractCase) -> None:
    """``fit`` replaces all learned state: fitting on A, learning online, then fitting on B
    predicts like a model fitted on B alone. A has the same user and item ids with other
    outcomes and times, so state kept from A would show."""
    other = case.train.assign(
        correct=1 - case.train["correct"], rt_seconds=case.train["rt_seconds"] * 3.0
    )
    refit = case.new().fit(other)
    refit.update(_attempt(case.test.iloc[0]))
    refit.fit(case.train)
    fresh = case.new().fit(case.train)
    for frame in (case.test, case.train):  # new users, and users that A taught something
        what = "a model refitted on B predicts unlike one fitted on B alone"
        case.assert_rows_equal(refit.predict(frame), fresh.predict(frame), frame.index, what)


def check_deterministic(case: ContractCase) -> None:
    a = case.new().fit(case.train).predict(case.test)
    b = case.new().fit(case.train).predict(case.test)
    pd.testing.assert_frame_equal(a, b, check_exact=True)


# -- persistence ------------------------------------------------------------------------------
def check_save_load_round_trip(case: ContractCase) -> None:
    model = case.fitted()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.smartstudy"
        model.save(path)
        loaded = type(model).load(path)
    assert loaded.get_params() == model.get_params(), "loaded hyperparameters differ"
    pd.testing.assert_frame_equal(loaded.predict(case.test), model.predict(case.test))
    for args in (("nobody", "nothing"), ("nobody", "nothing", case.train["skill_id"].iloc[0])):
        assert _predict_one_or_none(loaded, *args) == _predict_one_or_none(model, *args)


def check_loaded_model_keeps_learning_like_the_original(case: ContractCase) -> None:
    model = case.copy_of_fitted()
    loaded = type(model).from_bytes(model.to_bytes())
    skill = case.train["skill_id"].iloc[-1]
    row = {"user_id": "late", "item_id": "late-item", "skill_id": skill, "correct": 1}
    model.update(row)
    loaded.update(row)
    assert loaded.predict_one("late", "late-item", skill) == model.predict_one(
        "late", "late-item", skill
    ), "a loaded model learns differently from the original"


def _expect_artifact_error(load: Callable[[], Any], what: str) -> None:
    try:
        load()
    except ArtifactError:
        return
    raise AssertionError(f"{what} did not raise ArtifactError")


def check_from_bytes_rejects_garbage(case: ContractCase) -> None:
    cls = type(case.fitted())
    blob = case.fitted().to_bytes()
    for bad in (b"", b"not a model at all", blob[: len(blob) // 2], blob[:-20]):
        _expect_artifact_error(lambda bad=bad: cls.from_bytes(bad), f"{len(bad)} damaged bytes")


def check_artifacts_do_not_load_as_another_class(case: ContractCase) -> None:
    cls = type(case.fitted())
    blob = case.fitted().to_bytes()
    for other in (_Impostor, *(c for c in case.other_classes if c is not cls)):
        _expect_artifact_error(lambda other=other: other.from_bytes(blob), other.__name__)
    impostor = _Impostor().fit(case.train).to_bytes()
    _expect_artifact_error(lambda: cls.from_bytes(impostor), "another class's artifact")
    with tempfile.TemporaryDirectory() as tmp:
        missing = Path(tmp) / "missing.model"
        _expect_artifact_error(lambda: cls.load(missing), "a missing file")


# -- errors -----------------------------------------------------------------------------------
def check_not_fitted(case: ContractCase) -> None:
    model = case.new()
    for call in (
        lambda: model.predict(case.test),
        lambda: model.predict_one("u", "i"),
        lambda: model.to_bytes(),
    ):
        try:
            call()
        except NotFittedError:
            continue
        raise AssertionError("an unfitted model must raise NotFittedError")


_CORRUPTIONS: tuple[tuple[str, Callable[[pd.DataFrame], pd.DataFrame]], ...] = (
    ("correct", lambda df: df.drop(columns="correct")),
    ("item_id", lambda df: df.drop(columns="item_id")),
    (
        "correct",
        lambda df: df.assign(
            correct=df["correct"].astype(object).where(df.index != df.index[3], "yes")
        ),
    ),
    ("correct", lambda df: df.assign(correct=df["correct"].where(df.index != df.index[2], 2))),
    (
        "rt_seconds",
        lambda df: df.assign(
            rt_seconds=df["rt_seconds"].astype(object).where(df.index != df.index[4], "slow")
        ),
    ),
    (
        "order",
        lambda df: df.assign(
            order=df["order"].astype(object).where(df.index != df.index[1], "soon")
        ),
    ),
)


def check_bad_input_names_the_column(case: ContractCase) -> None:
    for column, corrupt in _CORRUPTIONS:
        for what, call in (
            ("fit", lambda corrupt=corrupt: case.new().fit(corrupt(case.train))),
            ("predict", lambda corrupt=corrupt: case.fitted().predict(corrupt(case.test))),
        ):
            _expect_error(call, InteractionsError, column, f"{what} of a frame")


#: Times that are numbers but not durations: read as missing, with a warning.
_UNUSABLE_SECONDS: tuple[float, ...] = (0.0, -5.0, float("inf"))


def _warns_of_unusable_times(call: Callable[[], Any], what: str) -> Any:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = call()
    said = [w for w in caught if issubclass(w.category, InteractionsWarning)]
    assert said, f"{what}: an unusable time was read without an InteractionsWarning"
    assert all("rt_seconds" in str(w.message) for w in said), f"{what}: {said[0].message}"
    return out


def check_unusable_times_are_read_as_missing(case: ContractCase) -> None:
    """A time of zero, a negative or an infinite one (a logging artefact, common in real
    logs) is read as missing, with an ``InteractionsWarning``: ``fit``, ``predict`` and
    ``update`` then behave exactly as with NaN there, and the rest of the frame is used.
    Text where a time should be is still refused (``bad_input_names_the_column``)."""
    train, test = case.train.copy(), case.test.copy()
    bad_train, nan_train = train.copy(), train.copy()
    bad_test, nan_test = test.copy(), test.copy()
    for k, seconds in enumerate(_UNUSABLE_SECONDS):
        for bad, nan, rows in ((bad_train, nan_train, train), (bad_test, nan_test, test)):
            label = rows.index[3 + 5 * k]
            bad.loc[label, "rt_seconds"] = seconds
            nan.loc[label, "rt_seconds"] = np.nan
    model = _warns_of_unusable_times(lambda: case.new().fit(bad_train), "fit")
    reference = case.new().fit(nan_train)
    case.assert_rows_equal(
        reference.predict(nan_test),
        _warns_of_unusable_times(lambda: model.predict(bad_test), "predict"),
        test.index,
        "unusable times were not read as missing",
    )
    row = _attempt(test.iloc[0])
    online, missing = case.copy_of_fitted(), case.copy_of_fitted()
    if online.predicts_time:  # a model without times may ignore an update's time
        _warns_of_unusable_times(lambda: online.update({**row, "rt_seconds": 0.0}), "update")
    else:
        online.update({**row, "rt_seconds": 0.0})
    missing.update({**row, "rt_seconds": np.nan})
    ask = (row["user_id"], row["item_id"], row["skill_id"])
    assert _predict_one_or_none(online, *ask) == _predict_one_or_none(missing, *ask), (
        "update learnt from a zero time"
    )


# -- robust learning (issue 10) ---------------------------------------------------------------
def absurd_time_shifts(
    make: ModelFactory, train: pd.DataFrame, victim: str, item: str, skill: str, seconds: float
) -> dict[str, float]:
    """How much ten completions in ``seconds`` by one new student move ``victim``'s predicted
    median for ``item``, through the public contract only (0.0 for a model without times).

    ``online``: after ``update`` with those rows, against the prediction before. ``refit``: a
    model fitted on ``train`` plus those rows, against one fitted on ``train`` plus the same
    rows with an ordinary time (the item's median), so that what is measured is the effect of
    the absurd times, not the refit's own variation (a network's training changes a little
    with any new student).
    """
    ordinary = float(train.loc[train["item_id"] == item, "rt_seconds"].median())

    def rows(rt: float) -> pd.DataFrame:
        return pd.DataFrame(
            {"user_id": "absurd-student", "item_id": item, "skill_id": skill, "correct": 1}
            | {"rt_seconds": rt, "order": float(k)}
            for k in range(10)
        )

    model = make().fit(train)
    before = model.predict_one(victim, item, skill)
    for row in rows(seconds).drop(columns="order").to_dict("records"):
        model.update(row)
    online = model.predict_one(victim, item, skill)
    refits = [
        make().fit(pd.concat([train, rows(rt)], ignore_index=True)).predict_one(victim, item, skill)
        for rt in (seconds, ordinary)
    ]
    if not model.predicts_time:
        assert np.isfinite([online["p_correct"], refits[0]["p_correct"]]).all()
        return {"online": 0.0, "refit": 0.0}
    return {
        "online": online["time_median_s"] / before["time_median_s"] - 1.0,
        "refit": refits[0]["time_median_s"] / refits[1]["time_median_s"] - 1.0,
    }


def check_absurd_times_of_one_student_barely_move_another(case: ContractCase) -> None:
    victim = case.train["user_id"].iloc[0]
    first = case.train[case.train["user_id"] == victim].iloc[0]
    for seconds in ABSURD_SECONDS:
        shifts = absurd_time_shifts(
            case.new, case.train, victim, first["item_id"], first["skill_id"], seconds
        )
        for how, shift in shifts.items():
            assert abs(shift) < ABSURD_MAX_SHIFT, (
                f"{how}, times of {seconds:g} s: the other student's median moved by {shift:.1%}"
            )


#: Every check by name, in the order ``check_learner_model`` runs them.
CHECKS: dict[str, Callable[[ContractCase], None]] = {
    fn.__name__.removeprefix("check_"): fn
    for fn in (
        check_fit_returns_self,
        check_init_does_no_work_and_params_round_trip,
        check_name_and_flags,
        check_predict_shape_and_index,
        check_probabilities_and_times_are_valid,
        check_predictions_are_informative,
        check_cold_start,
        check_no_peeking,
        check_no_cross_user_leak,
        check_predict_does_not_mutate,
        check_missing_outcome_is_predicted_and_teaches_nothing,
        check_order_column_is_respected,
        check_predict_matches_online_loop,
        check_update_changes_prediction_with_constant_state,
        check_update_rejects_bad_rows,
        check_learn_many_matches_update_loop,
        check_fit_leaves_input_unchanged,
        check_refit_resets_state,
        check_deterministic,
        check_save_load_round_trip,
        check_loaded_model_keeps_learning_like_the_original,
        check_from_bytes_rejects_garbage,
        check_artifacts_do_not_load_as_another_class,
        check_not_fitted,
        check_bad_input_names_the_column,
        check_unusable_times_are_read_as_missing,
        check_absurd_times_of_one_student_barely_move_another,
    )
}


def run_check(case: ContractCase, name: str) -> None:
    """Run the check ``name`` of ``CHECKS`` on ``case``; raises ``AssertionError`` (or the
    model's own exception) when the model breaks the contract."""
    if name not in CHECKS:
        raise KeyError(f"no contract check {name!r}; known: {', '.join(CHECKS)}")
    CHECKS[name](case)


def _refuse_unknown_checks(skip: tuple[str, ...]) -> None:
    unknown = sorted(set(skip) - set(CHECKS))
    if unknown:
        raise KeyError(f"unknown contract check(s) to skip: {', '.join(unknown)}")


def check_learner_model(
    factory: ModelFactory,
    data: ContractData | None = None,
    *,
    skip: tuple[str, ...] = (),
    other_classes: tuple[type[LearnerModel], ...] = (),
    rtol: float = 1e-9,
    atol: float = 1e-12,
    loop_rtol: float = 1e-6,
    loop_atol: float = 1e-9,
) -> list[str]:
    """Check the model that ``factory`` builds against the whole contract.

    ``factory`` returns a fresh, unfitted model on each call (e.g. ``lambda: BKT(seed=1)``).
    ``data`` defaults to :func:`contract_data`; ``skip`` names checks of ``CHECKS`` not to
    run; ``other_classes`` are classes whose artifacts must not load as this model's; the
    tolerances are those of :class:`ContractCase`. Every check runs, even after a failure.
    Returns the names of the checks run; raises :class:`ContractError` naming every failed
    check with its message.
    """
    _refuse_unknown_checks(skip)
    case = ContractCase(
        factory,
        data if data is not None else contract_data(),
        rtol=rtol,
        atol=atol,
        loop_rtol=loop_rtol,
        loop_atol=loop_atol,
        other_classes=other_classes,
    )
    ran: list[str] = []
    failures: dict[str, str] = {}
    for name, check in CHECKS.items():
        if name in skip:
            continue
        ran.append(name)
        try:
            check(case)
        except Exception as exc:  # a model's own crash is a failed check too
            failures[name] = f"{type(exc).__name__}: {exc}"
    if failures:
        raise ContractError(failures)
    return ran


def parametrize_with_checks(
    factories: Mapping[str, ModelFactory | ContractCase] | Sequence[ModelFactory | ContractCase],
    *,
    data: ContractData | None = None,
    skip: tuple[str, ...] = (),
    other_classes: tuple[type[LearnerModel], ...] = (),
) -> Any:
    """A ``pytest.mark.parametrize`` over every (model, check) pair, for a test taking
    ``case`` (a :class:`ContractCase`) and ``check`` (a function of ``CHECKS``) that calls
    ``check(case)``; each pair's id is ``"<name>-<check>"``, e.g. ``"bkt-no_peeking"``.

    ``factories`` maps a name to a model factory, or is a sequence of factories named by the
    class of the model each builds (with its position appended where two build one class).
    A :class:`ContractCase` may stand for a factory, to give that model data or tolerances of
    its own; a factory gets a case on ``data`` (default :func:`contract_data`) with
    ``other_classes``. All checks of one model share its case, so the model is fitted once.
    ``skip`` names checks of ``CHECKS`` to leave out.

    pytest is imported here, not with this module, so ``check_learner_model`` works without it.
    """
    import pytest

    _refuse_unknown_checks(skip)
    named = list(factories.items()) if isinstance(factories, Mapping) else _named(factories)
    shared = data if data is not None else contract_data()
    pairs, ids = [], []
    for name, given in named:
        case = (
            given
            if isinstance(given, ContractCase)
            else ContractCase(given, shared, other_classes=other_classes)
        )
        for check_name, check in CHECKS.items():
            if check_name not in skip:
                pairs.append((case, check))
                ids.append(f"{name}-{check_name}")
    return pytest.mark.parametrize(("case", "check"), pairs, ids=ids)


def _named(
    factories: Sequence[ModelFactory | ContractCase],
) -> list[tuple[str, ModelFactory | ContractCase]]:
    """Each factory named by the class of the model it builds (``__init__`` only stores
    hyperparameters, so building one to ask is cheap), with its position in ``factories``
    appended where two build the same class."""
    names = [type(f.new() if isinstance(f, ContractCase) else f()).__name__ for f in factories]
    return [
        (f"{name}{i}" if names.count(name) > 1 else name, factory)
        for i, (name, factory) in enumerate(zip(names, factories, strict=True))
    ]
