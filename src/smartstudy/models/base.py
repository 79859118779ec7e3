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

from smartstudy.data.schema import validate_interactions

ARTIFACT_FORMAT = "smartstudy-model/1"
PREDICTION_COLUMNS: tuple[str, ...] = ("p_correct", "time_median_s", "time_p10_s", "time_p90_s")
# z-value of the 90th percentile of a standard normal: the 80% interval is median * exp(±z σ).
Z80 = 1.2815515655446004


class NotFittedError(RuntimeError):
    """Raised when a model is used before ``fit`` (or ``load``)."""


class ArtifactError(ValueError):
    """Raised when a saved model file is missing, corrupt or of another model."""


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
