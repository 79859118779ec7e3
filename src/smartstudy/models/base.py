"""The one contract every learner model implements (see docs/ARCHITECTURE.md).

``fit(df)`` learns from an interactions DataFrame and returns ``self``; ``predict(df)`` is
one-step-ahead: each row's prediction uses everything fitted plus the *earlier* rows (by
``order``) of the same user in ``df``, never that row's own outcome; ``update(row)`` is the
constant-time online step used by the live service; ``save``/``load`` round-trip a fitted
model through a file that holds JSON and NumPy arrays only (no pickle, so a tampered file
cannot run code). Hyperparameters live in ``__init__``; learned state in attributes ending
in ``_`` (the scikit-learn convention).
"""

from __future__ import annotations

import inspect
import io
import json
import zipfile
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd

from smartstudy.data.schema import id_string, is_missing, validate_interactions

ARTIFACT_FORMAT = "smartstudy-model/1"
PREDICTION_COLUMNS: tuple[str, ...] = ("p_correct", "time_median_s", "time_p10_s", "time_p90_s")
# z-value of the 90th percentile of a standard normal: the 80% interval is median * exp(±z σ).
Z80 = 1.2815515655446004


class NotFittedError(RuntimeError):
    """Raised when a model is used before ``fit`` (or ``load``)."""


class ArtifactError(ValueError):
    """Raised when a saved model file is missing, corrupt or of another model."""


class CannotPredictError(LookupError):
    """A model has nothing to say about this request (e.g. a topic it was not fitted on).

    Not a failure of the model: a caller that chains models (the service's prediction chain)
    moves on to the next one. ``smartstudy.services.errors`` re-exports this class.
    """


class LearnerModel(ABC):
    """Base class of every learner model.

    Subclasses set ``name`` and ``predicts_time``, keep hyperparameters as ``__init__``
    keyword arguments stored under the same attribute names, and implement ``fit``,
    ``_predict_validated``, ``update``, ``_get_state`` and ``_set_state``.
    """

    name: ClassVar[str] = "model"
    predicts_time: ClassVar[bool] = False

    # -- hyperparameters -------------------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        """The ``__init__`` hyperparameters and their current values."""
        sig = inspect.signature(type(self).__init__)
        return {
            p: getattr(self, p)
            for p in sig.parameters
            if p != "self"
            and sig.parameters[p].kind
            not in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)
        }

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # -- learning and prediction -----------------------------------------------------
    @abstractmethod
    def fit(self, df: pd.DataFrame) -> Self:
        """Learn from an interactions DataFrame; return ``self``."""

    def predict(self, df: pd.DataFrame) -> pd.DataFrame:
        """One-step-ahead predictions aligned with the rows (and index) of ``df``.

        Rows whose ``correct`` is missing (NaN) are predicted but teach nothing, which is
        how the service asks about a task that has not been attempted yet.
        """
        self._check_fitted()
        data = validate_interactions(df, allow_missing_outcome=True)
        out = self._predict_validated(data)
        out.index = df.index
        return out

    @abstractmethod
    def _predict_validated(self, data: pd.DataFrame) -> pd.DataFrame:
        """``predict`` on data already checked by ``validate_interactions``."""

    @abstractmethod
    def update(self, row: Mapping[str, Any]) -> None:
        """Learn from one observed attempt in constant time (the live service's step)."""

    def learn_many(self, rows: pd.DataFrame) -> None:
        """``update`` with each row of ``rows`` in turn, in their order: the same state, and
        the same error for a row ``update`` refuses (the rows before it are learnt). A model
        may do it faster than row by row (LNIRT: all persons at once)."""
        for row in rows.to_dict("records"):
            self.update(row)

    def warm_start(self, previous: LearnerModel) -> bool:
        """Before ``fit``: take over the hyperparameters that ``previous`` (a fitted model
        of this family and these settings, fitted on most of the same data) chose by
        search, so that this fit does not search for them again. True when something was
        taken; the default takes nothing. ``searched_rows`` says how much data that search
        saw, so that the caller knows when to search again."""
        return False

    def searched_rows(self) -> int | None:
        """Training rows of the fit that last searched this model's hyperparameters (the
        fit itself, or the one ``warm_start`` took them from); None when it searches for
        none (the default) or does not know."""
        return None

    def predict_one(self, user_id: Any, item_id: Any, skill_id: Any = None) -> dict[str, float]:
        """Prediction for the user's next attempt at ``item_id``, from the current state."""
        frame = pd.DataFrame(
            {
                "user_id": [user_id],
                "item_id": [item_id],
                "skill_id": [skill_id],
                "correct": [np.nan],
                "order": [0.0],
            }
        )
        return {k: float(v) for k, v in self.predict(frame).iloc[0].items()}

    def _check_fitted(self) -> None:
        if not getattr(self, "fitted_", False):
            raise NotFittedError(f"{type(self).__name__} is not fitted: call fit() or load()")

    # -- persistence -----------------------------------------------------------------
    @abstractmethod
    def _get_state(self) -> dict[str, Any]:
        """Learned state: JSON-serialisable values and NumPy arrays, keyed by name."""

    @abstractmethod
    def _set_state(self, state: dict[str, Any]) -> None:
        """Restore what ``_get_state`` returned."""

    def to_bytes(self) -> bytes:
        """The fitted model as the bytes of a ``save`` file."""
        self._check_fitted()
        state = self._get_state()
        arrays = {k: v for k, v in state.items() if isinstance(v, np.ndarray)}
        plain = {k: v for k, v in state.items() if not isinstance(v, np.ndarray)}
        meta = {
            "format": ARTIFACT_FORMAT,
            "model": type(self).__name__,
            "params": self.get_params(),
            "state": plain,
        }
        buf = io.BytesIO()
        arr_buf = io.BytesIO()
        np.savez(arr_buf, **arrays)
        members = {
            "meta.json": json.dumps(meta, default=_json_default, sort_keys=True).encode(),
            "arrays.npz": arr_buf.getvalue(),
        }
        with zipfile.ZipFile(buf, "w") as zf:
            for member, data in members.items():
                # A fixed timestamp makes the bytes depend on the model alone.
                info = zipfile.ZipInfo(member, date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, data)
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, blob: bytes) -> Self:
        """Inverse of ``to_bytes``; raises ``ArtifactError`` on anything unexpected."""
        # A damaged file can fail in many ways (zip, zlib, npy, JSON); every one of them
        # means the same thing to the caller: this artifact cannot be used.
        try:
            with zipfile.ZipFile(io.BytesIO(blob)) as zf:
                meta = json.loads(zf.read("meta.json"))
                with np.load(io.BytesIO(zf.read("arrays.npz")), allow_pickle=False) as npz:
                    arrays = {k: npz[k] for k in npz.files}
        except Exception as exc:
            raise ArtifactError(f"not a readable {cls.__name__} artifact: {exc}") from exc
        if not isinstance(meta, dict):
            raise ArtifactError("corrupt artifact: meta.json is not an object")
        if meta.get("format") != ARTIFACT_FORMAT:
            raise ArtifactError(f"unknown artifact format {meta.get('format')!r}")
        if meta.get("model") != cls.__name__:
            raise ArtifactError(f"artifact holds a {meta.get('model')!r}, not a {cls.__name__}")
        try:
            model = cls(**meta["params"])
            model._set_state({**meta["state"], **arrays})
        except Exception as exc:
            raise ArtifactError(f"corrupt {cls.__name__} artifact: {exc}") from exc
        model.fitted_ = True
        return model

    def save(self, path: str | Path) -> None:
        """Write the fitted model to ``path`` (written whole, then moved into place)."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(self.to_bytes())
        tmp.replace(path)

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """Read a model written by ``save``."""
        path = Path(path)
        if not path.is_file():
            raise ArtifactError(f"no model file at {path}")
        return cls.from_bytes(path.read_bytes())


def log_normal_predictions(
    p: np.ndarray, mu: np.ndarray, sigma: np.ndarray, pos: np.ndarray, index: pd.Index
) -> pd.DataFrame:
    """The prediction columns from P(correct) and a log-normal time (mean ``mu`` and sd
    ``sigma`` of log seconds), computed in sorted order and put back at positions ``pos`` of
    a frame with ``index``."""
    cols = (p, np.exp(mu), np.exp(mu - Z80 * sigma), np.exp(mu + Z80 * sigma))
    out = {}
    for name, values in zip(PREDICTION_COLUMNS, cols, strict=True):
        placed = np.empty(len(index))
        placed[pos] = values
        out[name] = placed
    return pd.DataFrame(out, index=index)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot serialise {type(value).__name__}")


# -- robust learning from response times ------------------------------------------------------
# One plausibility rule for every model (issue 10, "robust learning"). The API accepts any time
# in (0, 24 h]; a practice task answered in under a second was not really worked on (a double
# click, a clock glitch), so such times are raised to the floor before they reach any model.
# Non-finite or non-positive times are treated as missing.
MIN_PLAUSIBLE_SECONDS = 1.0
#: Winsorisation band of a log time around its item's centre, in (robust) standard deviations.
#: 2.5 sd leaves ~99% of a log-normal item's times untouched and bounds what one absurd time
#: (1e-300 s or a whole day) can add to shared statistics to 2.5 sd.
ROBUST_Z = 2.5
#: Smallest spread (sd of log seconds) used for winsorising, so that an item whose few times
#: happen to be equal does not clip every new time to that value.
MIN_ROBUST_SPREAD = 0.25
#: A group (item, skill) needs this many times before its own median and MAD are trusted as
#: the centre and spread of the band; fewer fall back to the parent level.
MIN_ROBUST_ROWS = 5
#: How many of one user's timed attempts at one item enter shared (population) time
#: statistics. Later attempts still teach the user's own state; they just cannot make the item
#: look faster or slower to everyone else, so no single student can move another's predicted
#: time much. Public data sets rarely repeat an item, so this matters in the app, where an item
#: is a (topic, difficulty) cell. Correctness is not capped: an outcome is 0 or 1, so one row's
#: pull is already bounded, and a student who is most of an item's data must still move it.
POP_ATTEMPTS_PER_USER_ITEM = 1
# MAD of a normal sample times this is its standard deviation.
_MAD_TO_SD = 1.4826


def plausible_log_times(rt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """log(seconds) under the plausibility rule, and the mask of rows that have a time.

    Times below ``MIN_PLAUSIBLE_SECONDS`` count as that floor; NaN, infinite, zero or
    negative times count as missing (their log is 0 and the mask False).
    """
    rt = np.asarray(rt, dtype=float)
    has_t = np.isfinite(rt) & (rt > 0)
    return np.log(np.where(has_t, np.maximum(rt, MIN_PLAUSIBLE_SECONDS), 1.0)), has_t


def plain_attempts(
    rows: pd.DataFrame,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray, np.ndarray] | None:
    """(users, items, skills or None, correct, rt seconds) of ``rows`` as arrays, ids as
    ``update`` reads them, when every row is one ``update`` takes without a question: ids
    present, ``correct`` a number 0 or 1, ``rt_seconds`` (if any) missing or a positive
    finite number. None otherwise (``learn_many`` then goes row by row, for ``update``'s
    error). A missing skill is None in ``skills``."""
    if not {"user_id", "item_id", "correct"} <= set(rows.columns):
        return None
    ids = rows[["user_id", "item_id"]]
    if ids.isna().to_numpy().any() or not pd.api.types.is_numeric_dtype(rows["correct"]):
        return None
    correct = rows["correct"].to_numpy(dtype=float)
    if not np.isin(correct, (0.0, 1.0)).all():
        return None
    rt = np.full(len(rows), np.nan)
    if "rt_seconds" in rows.columns:
        if not pd.api.types.is_numeric_dtype(rows["rt_seconds"]):
            return None
        rt = rows["rt_seconds"].to_numpy(dtype=float)
        if not (np.isnan(rt) | (np.isfinite(rt) & (rt > 0))).all():
            return None
    users = np.array([id_string(u) for u in ids["user_id"]], dtype=object)
    items = np.array([id_string(i) for i in ids["item_id"]], dtype=object)
    skills = None
    if "skill_id" in rows.columns:
        names = [None if is_missing(s) else id_string(s) for s in rows["skill_id"]]
        skills = np.array(names, dtype=object)
    return users, items, skills, correct, rt


def winsorise(
    lt: np.ndarray, centre: np.ndarray, spread: np.ndarray, z: float = ROBUST_Z
) -> np.ndarray:
    """``lt`` clipped to ``centre ± z · max(spread, MIN_ROBUST_SPREAD)``."""
    half = z * np.maximum(spread, MIN_ROBUST_SPREAD)
    return np.clip(lt, centre - half, centre + half)


def winsorise_one(lt: float, centre: float, spread: float, z: float = ROBUST_Z) -> float:
    """``winsorise`` of one log time, in floats (a model's online update of one row)."""
    half = z * max(spread, MIN_ROBUST_SPREAD)
    return min(max(lt, centre - half), centre + half)


def robust_log_time_bounds(
    codes: np.ndarray,
    lt: np.ndarray,
    counted: np.ndarray,
    parent: tuple[np.ndarray, np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """Per-row (centre, spread) of log times: the median and 1.4826 · MAD of the row's group.

    ``codes`` are group codes of the timed rows (-1 = no group), ``lt`` their log times,
    ``counted`` the rows that estimate the groups' statistics (all rows still get their
    group's), and ``parent`` the (centre, spread) per row used where a group has fewer than
    ``MIN_ROBUST_ROWS`` counted times. A median cannot be dragged by a minority of absurd
    rows, unlike a mean.
    """
    centre, spread = np.array(parent[0], dtype=float), np.array(parent[1], dtype=float)
    est = counted & (codes >= 0)
    if not est.any():
        return centre, spread
    frame = pd.DataFrame({"g": codes[est], "lt": lt[est]})
    med = frame.groupby("g")["lt"].median()
    mad = (frame["lt"] - frame["g"].map(med)).abs().groupby(frame["g"]).median()
    count = frame.groupby("g").size()
    trusted = count.index[count.to_numpy() >= MIN_ROBUST_ROWS]
    hit = pd.Index(trusted).get_indexer(codes)
    use = hit >= 0
    centre[use] = med[trusted].to_numpy()[hit[use]]
    spread[use] = _MAD_TO_SD * mad[trusted].to_numpy()[hit[use]]
    return centre, spread


def robust_row_log_times(
    lt: np.ndarray,
    has_t: np.ndarray,
    levels: list[np.ndarray],
    counted: np.ndarray | None = None,
    z: float = ROBUST_Z,
) -> np.ndarray:
    """Log times winsorised against the most specific level with enough times.

    ``levels`` are per-row group codes from the broadest to the most specific (e.g. skill,
    then item); -1 means the row has no group at that level, and the broadest band is that of
    all times. Only the ``counted`` rows (default: all) estimate the bands, so that one user's
    many rows cannot drag an item's median or widen its MAD. Rows without a time are returned
    unchanged. This is the batch form of what ``update`` does online.
    """
    timed = np.flatnonzero(has_t)
    if len(timed) == 0:
        return lt.copy()
    sub = lt[timed]
    use = np.ones(len(timed), dtype=bool) if counted is None else counted[timed].astype(bool)
    if not use.any():
        use[:] = True
    med = float(np.median(sub[use]))
    centre = np.full(len(timed), med)
    spread = np.full(len(timed), _MAD_TO_SD * float(np.median(np.abs(sub[use] - med))))
    for codes in levels:
        centre, spread = robust_log_time_bounds(codes[timed], sub, use, (centre, spread))
    out = lt.copy()
    out[timed] = winsorise(sub, centre, spread, z)
    return out


def population_weights(users: np.ndarray, items: np.ndarray, has_t: np.ndarray) -> np.ndarray:
    """1.0 for a user's first ``POP_ATTEMPTS_PER_USER_ITEM`` timed attempts at an item (in row
    order), 0.0 for later ones and untimed rows: the weight of each row's time in shared
    (population) time statistics."""
    frame = pd.DataFrame({"u": users, "i": items, "t": has_t})
    rank = frame.groupby(["u", "i", "t"], sort=False).cumcount().to_numpy()
    return (has_t & (rank < POP_ATTEMPTS_PER_USER_ITEM)).astype(float)


def robust_seconds(data: pd.DataFrame, z: float = ROBUST_Z) -> np.ndarray:
    """``data["rt_seconds"]`` of a validated frame under the plausibility rule, winsorised
    against the median and MAD of its item (or skill, or all times when the item has fewer
    than ``MIN_ROBUST_ROWS``), estimated from each user's first timed attempts at an item
    (``population_weights``); missing times stay NaN. The batch step of a model's ``fit``."""
    lt, has_t = plausible_log_times(data["rt_seconds"].to_numpy(dtype=float))
    levels = [
        pd.factorize(data[col].to_numpy(dtype=object), use_na_sentinel=True)[0]
        for col in ("skill_id", "item_id")
    ]
    counted = population_weights(
        data["user_id"].to_numpy(dtype=object), data["item_id"].to_numpy(dtype=object), has_t
    )
    robust = robust_row_log_times(lt, has_t, levels, counted > 0, z)
    return np.where(has_t, np.exp(robust), np.nan)


def shared_time_rows(users: np.ndarray, items: np.ndarray, has_t: np.ndarray) -> np.ndarray:
    """Timed rows whose time may shape parameters shared by all users (a batch fit's item
    time parameters): a user's first ``POP_ATTEMPTS_PER_USER_ITEM`` timed attempts at an item,
    and every timed row of an item that fewer than ``MIN_ROBUST_ROWS`` users have timed (with
    no population to protect, one user's record is all there is to learn from)."""
    first = population_weights(users, items, has_t) > 0
    n_users = pd.Series(first.astype(int)).groupby(pd.Series(items)).transform("sum").to_numpy()
    return has_t & (first | (n_users < MIN_ROBUST_ROWS))


def population_seconds(data: pd.DataFrame, z: float = ROBUST_Z) -> np.ndarray:
    """``robust_seconds`` with the times outside ``shared_time_rows`` set to NaN: the times
    a fit of shared item parameters uses."""
    rt = robust_seconds(data, z)
    keep = shared_time_rows(
        data["user_id"].to_numpy(dtype=object),
        data["item_id"].to_numpy(dtype=object),
        ~np.isnan(rt),
    )
    return np.where(keep, rt, np.nan)
