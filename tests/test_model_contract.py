"""The model contract (docs/ARCHITECTURE.md), checked against every registered learner model.

One battery, parametrised over ``smartstudy.models.MODEL_CLASSES``: a new model joins the
registry and gets every check here for free. ``FAST_PARAMS`` holds per-model
hyperparameters that keep these tests quick (few epochs, few restarts, ...).

The data are synthetic (seeded): person ability and item difficulty drive correctness,
person speed and item time intensity drive log-normal response times, and users are split
into a training group and a test group of unseen users.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import pytest

from smartstudy.data.schema import InteractionsError
from smartstudy.models import MODEL_CLASSES, ArtifactError, LearnerModel, NotFittedError

# Per-model hyperparameters for speed; models not listed use their defaults.
FAST_PARAMS: dict[str, dict[str, Any]] = {
    "baseline": {},
    "bkt": {"n_restarts": 2},
    "neural": {"epochs": 8, "batch_size": 128, "hidden": 8, "time_hidden": 8, "d_item": 4},
}

MODEL_NAMES = sorted(MODEL_CLASSES)
PRED_TIME_COLUMNS = ("time_median_s", "time_p10_s", "time_p90_s")
# Predictions that must not change are compared this tightly: bit-identical for NumPy code,
# and still tight enough for models whose batched float arithmetic may differ in the last
# bits when other rows change.
RTOL, ATOL = 1e-9, 1e-12

N_USERS, N_ITEMS, N_SKILLS, N_TRAIN_USERS = 80, 25, 4, 60


def _make_interactions(seed: int = 20240611) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    theta = rng.normal(0.0, 1.0, N_USERS)  # ability
    tau = rng.normal(0.0, 0.3, N_USERS)  # speed (log-seconds faster than average)
    b = rng.normal(0.0, 1.0, N_ITEMS)  # difficulty
    beta = rng.normal(np.log(45.0), 0.4, N_ITEMS)  # time intensity
    skill_of_item = np.arange(N_ITEMS) % N_SKILLS
    rows = []
    for u in range(N_USERS):
        for step, i in enumerate(rng.permutation(N_ITEMS)):
            p = 1.0 / (1.0 + np.exp(-(theta[u] - b[i])))
            rt = float(np.exp(rng.normal(beta[i] - tau[u], 0.5)))
            rows.append(
                {
                    "user_id": f"u{u:03d}",
                    "item_id": f"i{i:02d}",
                    "skill_id": f"s{skill_of_item[i]}",
                    "correct": int(rng.random() < p),
                    "rt_seconds": round(rt, 1) if rng.random() > 0.05 else np.nan,
                    "order": float(step),
                }
            )
    return pd.DataFrame(rows)


INTERACTIONS = _make_interactions()
_TRAIN_USERS = {f"u{u:03d}" for u in range(N_TRAIN_USERS)}
TRAIN = INTERACTIONS[INTERACTIONS["user_id"].isin(_TRAIN_USERS)].reset_index(drop=True)
# A non-trivial index (not 0..n-1) so that index alignment is really tested.
TEST = INTERACTIONS[~INTERACTIONS["user_id"].isin(_TRAIN_USERS)].copy()
TEST.index = pd.Index(1000 + 3 * np.arange(len(TEST)), name="attempt")


def _new(name: str) -> LearnerModel:
    return MODEL_CLASSES[name](**FAST_PARAMS.get(name, {}))


_FITTED: dict[str, LearnerModel] = {}


def _fitted(name: str) -> LearnerModel:
    """A model fitted on TRAIN, shared read-only between tests (predict must not mutate)."""
    if name not in _FITTED:
        _FITTED[name] = _new(name).fit(TRAIN)
    return _FITTED[name]


def _expected_columns(model: LearnerModel) -> list[str]:
    return ["p_correct", *PRED_TIME_COLUMNS] if model.predicts_time else ["p_correct"]


def _assert_rows_equal(a: pd.DataFrame, b: pd.DataFrame, rows: pd.Index, what: str) -> None:
    if len(rows) == 0:
        return
    np.testing.assert_allclose(
        a.loc[rows].to_numpy(dtype=float),
        b.loc[rows].to_numpy(dtype=float),
        rtol=RTOL,
        atol=ATOL,
        err_msg=what,
    )


def _state_snapshot(model: LearnerModel) -> tuple[str, dict[str, bytes]]:
    state = model._get_state()
    arrays = {k: np.ascontiguousarray(v).tobytes() for k, v in state.items() if _is_array(v)}
    plain = {k: v for k, v in state.items() if not _is_array(v)}
    return json.dumps(plain, sort_keys=True, default=str), arrays


def _is_array(value: Any) -> bool:
    return isinstance(value, np.ndarray)


def _state_size(model: LearnerModel) -> int:
    """Number of stored numbers / ids in the learned state (grows with users, items, ...)."""

    def count(value: Any) -> int:
        if isinstance(value, np.ndarray):
            return int(value.size)
        if isinstance(value, Mapping):
            return sum(count(v) for v in value.values()) + len(value)
        if isinstance(value, list | tuple):
            return sum(count(v) for v in value)
        return 1

    return count(model._get_state())


def _test_user_rows(user: str) -> pd.DataFrame:
    return TEST[TEST["user_id"] == user].sort_values("order")


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


pytestmark = pytest.mark.parametrize("name", MODEL_NAMES)


# -- API shape ---------------------------------------------------------------------------
def test_fit_returns_self(name: str) -> None:
    model = _new(name)
    assert model.fit(TRAIN) is model


def test_init_does_no_work_and_params_round_trip(name: str) -> None:
    model = _new(name)
    params = model.get_params()
    assert set(vars(model)) == set(params), "__init__ must only store its hyperparameters"
    assert not [k for k in vars(model) if k.endswith("_")], "no learned state before fit"
    clone = type(model)(**params)
    assert clone.get_params() == params
    json.dumps(params)  # hyperparameters travel in the artifact's JSON

    model.fit(TRAIN)
    learned = [k for k in vars(model) if k not in params]
    assert learned, "fit must store learned state"
    # scikit-learn's convention: public learned state ends in "_"; private caches start with it.
    public = [k for k in learned if not k.startswith("_")]
    assert all(k.endswith("_") for k in public), f"learned attributes must end in _: {public}"
    assert model.get_params() == params, "fit must not change hyperparameters"


def test_name_and_registry(name: str) -> None:
    cls = MODEL_CLASSES[name]
    assert issubclass(cls, LearnerModel)
    assert cls.name == name


def test_predict_shape_and_index(name: str) -> None:
    model = _fitted(name)
    pred = model.predict(TEST)
    assert isinstance(pred, pd.DataFrame)
    assert len(pred) == len(TEST)
    assert pred.index.equals(TEST.index)
    assert list(pred.columns) == _expected_columns(model)


def test_probabilities_and_times_are_valid(name: str) -> None:
    model = _fitted(name)
    pred = model.predict(TEST)
    p = pred["p_correct"].to_numpy()
    assert np.isfinite(p).all()
    assert ((p >= 0.0) & (p <= 1.0)).all()
    if model.predicts_time:
        med, lo, hi = (pred[c].to_numpy() for c in ("time_median_s", "time_p10_s", "time_p90_s"))
        assert np.isfinite(np.c_[med, lo, hi]).all()
        assert (lo > 0).all()
        assert (lo <= med).all() and (med <= hi).all()
        assert (lo < hi).all(), "an 80% interval of a continuous time has positive width"


def test_predictions_are_informative(name: str) -> None:
    # A model that returns a constant passes every other check: it must not pass this one.
    # Ability and difficulty are strong here, so per-row probabilities must vary.
    pred = _fitted(name).predict(TEST)
    assert pred["p_correct"].std() > 0.02


def test_cold_start(name: str) -> None:
    model = _fitted(name)
    known_item = TRAIN["item_id"].iloc[0]
    known_skill = TRAIN["skill_id"].iloc[0]
    frame = pd.DataFrame(
        {
            "user_id": ["new-user", "new-user", "new-user", TRAIN["user_id"].iloc[0], "other"],
            "item_id": [known_item, "new-item", "new-item-2", "new-item-3", known_item],
            "skill_id": [known_skill, known_skill, None, "new-skill", None],
            "correct": [1, 0, np.nan, 1, np.nan],
            "rt_seconds": [30.0, np.nan, np.nan, 12.0, np.nan],
            "order": [0, 1, 2, 0, 0],
        }
    )
    pred = model.predict(frame)
    assert np.isfinite(pred.to_numpy()).all()
    assert pred["p_correct"].between(0, 1).all()
    one = model.predict_one("never-seen", "never-seen-item", "never-seen-skill")
    assert set(one) == set(_expected_columns(model))
    assert all(np.isfinite(v) for v in one.values())


# -- one-step-ahead ------------------------------------------------------------------------
@pytest.mark.parametrize("position", [0, 3, 11, 24])
def test_no_peeking(name: str, position: int) -> None:
    """Changing one row's outcome and time leaves its own and all earlier predictions alone."""
    model = _fitted(name)
    user = TEST["user_id"].iloc[0]
    rows = _test_user_rows(user)
    target = rows.index[position]
    changed = TEST.copy()
    changed.loc[target, "correct"] = 1 - changed.loc[target, "correct"]
    changed.loc[target, "rt_seconds"] = 7.0 * np.nan_to_num(
        changed.loc[target, "rt_seconds"], nan=20.0
    )

    before, after = model.predict(TEST), model.predict(changed)
    upto = rows.index[: position + 1]
    _assert_rows_equal(before, after, upto, "a row's own or earlier prediction saw its outcome")
    others = TEST.index[TEST["user_id"] != user]
    _assert_rows_equal(before, after, others, "another user's prediction changed")


@pytest.mark.parametrize("which", [0, (N_USERS - N_TRAIN_USERS) // 2, -1])
def test_no_cross_user_leak(name: str, which: int) -> None:
    """Changing every outcome of one user (first, middle, last by id) moves nobody else."""
    model = _fitted(name)
    user = sorted(TEST["user_id"].unique())[which]
    mine = TEST["user_id"] == user
    changed = TEST.copy()
    changed.loc[mine, "correct"] = 1 - changed.loc[mine, "correct"]
    changed.loc[mine, "rt_seconds"] = changed.loc[mine, "rt_seconds"] * 10.0
    before, after = model.predict(TEST), model.predict(changed)
    _assert_rows_equal(before, after, TEST.index[~mine], "predict leaked between users")


def test_predict_does_not_mutate(name: str) -> None:
    model = _fitted(name)
    snapshot = _state_snapshot(model)
    params = model.get_params()
    first = model.predict(TEST)
    second = model.predict(TEST)
    pd.testing.assert_frame_equal(first, second, check_exact=True)
    assert _state_snapshot(model) == snapshot, "predict changed the learned state"
    assert model.get_params() == params


def test_missing_outcome_is_predicted_and_teaches_nothing(name: str) -> None:
    model = _fitted(name)
    user = TEST["user_id"].iloc[0]
    rows = _test_user_rows(user)
    target = rows.index[5]
    asked = TEST.copy()
    asked.loc[target, "correct"] = np.nan  # a question not answered yet; its time stays
    without = TEST.drop(index=target)

    pred_asked = model.predict(asked)
    pred_without = model.predict(without)
    pred_full = model.predict(TEST)
    assert np.isfinite(pred_asked.loc[target].to_numpy()).all()
    # Its own prediction never used its outcome, so it is the same as with the outcome known.
    _assert_rows_equal(pred_asked, pred_full, pd.Index([target]), "NaN row's prediction")
    # And every other row is predicted as if the row were not there at all.
    _assert_rows_equal(pred_asked, pred_without, without.index, "a NaN outcome taught something")


def test_order_column_is_respected(name: str) -> None:
    model = _fitted(name)
    shuffled = TEST.sample(frac=1.0, random_state=7)
    assert not shuffled.index.equals(TEST.index)
    pred = model.predict(TEST)
    pred_shuffled = model.predict(shuffled)
    assert pred_shuffled.index.equals(shuffled.index)
    _assert_rows_equal(pred, pred_shuffled, TEST.index, "predictions depend on row order")


# -- online updates --------------------------------------------------------------------------
def test_update_changes_prediction_with_constant_state(name: str) -> None:
    model = _new(name).fit(TRAIN)
    user = TRAIN["user_id"].iloc[0]
    first = TRAIN[TRAIN["user_id"] == user].iloc[0]
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
    items = TRAIN["item_id"].unique()
    for k in range(300):
        model.update({**row, "item_id": items[k % len(items)], "correct": k % 2})
    assert _state_size(model) == size, "state grows with a user's history: update is not O(1)"
    assert np.isfinite(list(model.predict_one(user, item, skill).values())).all()


def test_update_rejects_bad_rows(name: str) -> None:
    model = _new(name).fit(TRAIN)
    good = {"user_id": "u", "item_id": TRAIN["item_id"].iloc[0], "correct": 1}
    with pytest.raises(ValueError, match="correct"):
        model.update({**good, "correct": "yes"})
    with pytest.raises(ValueError, match="correct"):
        model.update({k: v for k, v in good.items() if k != "correct"})
    with pytest.raises(ValueError, match="user_id"):
        model.update({**good, "user_id": None})
    if model.predicts_time:
        with pytest.raises(ValueError, match="rt_seconds"):
            model.update({**good, "rt_seconds": -3.0})


# -- persistence -----------------------------------------------------------------------------
def test_save_load_round_trip(name: str, tmp_path: Any) -> None:
    model = _fitted(name)
    path = tmp_path / f"{name}.model"
    model.save(path)
    loaded = type(model).load(path)
    assert loaded.get_params() == model.get_params()
    pd.testing.assert_frame_equal(loaded.predict(TEST), model.predict(TEST), check_exact=True)
    assert loaded.predict_one("nobody", "nothing") == model.predict_one("nobody", "nothing")


def test_loaded_model_keeps_learning_like_the_original(name: str) -> None:
    model = _new(name).fit(TRAIN)
    loaded = type(model).from_bytes(model.to_bytes())
    row = {"user_id": "late", "item_id": "late-item", "skill_id": "s1", "correct": 1}
    model.update(row)
    loaded.update(row)
    assert loaded.predict_one("late", "late-item", "s1") == model.predict_one(
        "late", "late-item", "s1"
    )


def test_from_bytes_rejects_garbage(name: str) -> None:
    cls = MODEL_CLASSES[name]
    blob = _fitted(name).to_bytes()
    for bad in (b"", b"not a model at all", blob[: len(blob) // 2], blob[:-20]):
        with pytest.raises(ArtifactError):
            cls.from_bytes(bad)


def test_artifacts_do_not_load_as_another_class(name: str, tmp_path: Any) -> None:
    cls = MODEL_CLASSES[name]
    blob = _fitted(name).to_bytes()
    others: list[type[LearnerModel]] = [_Impostor] + [
        c for c in MODEL_CLASSES.values() if c is not cls
    ]
    for other in others:
        with pytest.raises(ArtifactError):
            other.from_bytes(blob)
    with pytest.raises(ArtifactError):
        cls.from_bytes(_Impostor().fit(TRAIN).to_bytes())
    with pytest.raises(ArtifactError):
        cls.load(tmp_path / "missing.model")


def test_deterministic(name: str) -> None:
    a = _new(name).fit(TRAIN).predict(TEST)
    b = _new(name).fit(TRAIN).predict(TEST)
    pd.testing.assert_frame_equal(a, b, check_exact=True)


# -- errors ------------------------------------------------------------------------------------
def test_not_fitted(name: str) -> None:
    model = _new(name)
    with pytest.raises(NotFittedError):
        model.predict(TEST)
    with pytest.raises(NotFittedError):
        model.predict_one("u", "i")
    with pytest.raises(NotFittedError):
        model.to_bytes()


@pytest.mark.parametrize(
    ("column", "corrupt"),
    [
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
            lambda df: df.assign(rt_seconds=df["rt_seconds"].where(df.index != df.index[4], -5.0)),
        ),
        (
            "order",
            lambda df: df.assign(
                order=df["order"].astype(object).where(df.index != df.index[1], "soon")
            ),
        ),
    ],
)
def test_bad_input_names_the_column(name: str, column: str, corrupt: Any) -> None:
    with pytest.raises(InteractionsError, match=column):
        _new(name).fit(corrupt(TRAIN))
    with pytest.raises(InteractionsError, match=column):
        _fitted(name).predict(corrupt(TEST))
    assert issubclass(InteractionsError, ValueError)


# -- robust learning (issue 10) --------------------------------------------------------------
ABSURD_SECONDS = (1e-300, 86_400.0)


def absurd_time_shifts(
    make: Any, train: pd.DataFrame, victim: str, item: str, skill: str, seconds: float
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


@pytest.mark.parametrize("seconds", ABSURD_SECONDS)
def test_absurd_times_of_one_student_barely_move_another(name: str, seconds: float) -> None:
    victim = TRAIN["user_id"].iloc[0]
    first = TRAIN[TRAIN["user_id"] == victim].iloc[0]
    shifts = absurd_time_shifts(
        lambda: _new(name), TRAIN, victim, first["item_id"], first["skill_id"], seconds
    )
    for how, shift in shifts.items():
        assert abs(shift) < 0.05, f"{how}: the other student's median moved by {shift:.1%}"
