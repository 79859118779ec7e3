"""Loaders that turn the public data sets in ``shared/datasets`` into interactions frames.

Every loader returns the columns of :data:`smartstudy.data.schema.INTERACTION_COLUMNS`
(``user_id, item_id, skill_id, correct, rt_seconds, order``) plus ``split`` where the
source publishes a train/test split, sorted by user and then ``order``. Ids are strings,
``correct`` is int 0/1, ``rt_seconds`` is float seconds with NaN for missing and ``order``
is an integer. The data sets (read each folder's README.md for provenance and licences):

- ``assistments09``: ASSISTments 2009-2010 skill builder (Feng, Heffernan & Koedinger
  2009) as preprocessed by Gervet et al. (2020), JEDM 12(3); no response times.
- ``assistments09_dkt``: the same data in the Deep Knowledge Tracing split and format
  (Piech et al. 2015, NeurIPS); skills only, no problem ids, no student ids.
- ``cognitive_tutor``: Carnegie Learning Cognitive Tutor steps from the KDD Cup 2010
  challenge data (Stamper et al. 2010), the ``ct.csv`` subset shipped with pyBKT examples.
- ``credential_form1``: the credentialing exam of Cizek & Wollack (2016), distributed
  with the R package LNIRT (Fox, Klotzke & Klein Entink).
- ``mars_ib``: the MaRs-IB calibration study (Zorowitz, Chierchia, Blakemore & Daw 2023,
  Behavior Research Methods, doi:10.3758/s13428-023-02067-8).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ENV_VAR = "SMARTSTUDY_DATASETS_DIR"
DATASETS: tuple[str, ...] = (
    "assistments09",
    "assistments09_dkt",
    "cognitive_tutor",
    "credential_form1",
    "mars_ib",
)
RESPONSES_FILE = "responses_long.csv"
# src/smartstudy/data/loaders.py -> parents[3] is the repository root of a source checkout.
_REPO_ROOT = Path(__file__).resolve().parents[3]


class DatasetNotFoundError(FileNotFoundError):
    """Raised when the data sets folder, a data set's folder or one of its files is missing."""


def _candidate_dirs() -> list[Path]:
    return [
        Path.cwd() / ".." / "shared" / "datasets",
        Path.cwd() / "shared" / "datasets",
        _REPO_ROOT / ".." / "shared" / "datasets",
    ]


def datasets_dir(root: str | os.PathLike[str] | None = None) -> Path:
    """The folder that holds one sub-folder per data set.

    ``root`` wins if given, then the environment variable ``SMARTSTUDY_DATASETS_DIR``;
    both are returned as given so that a wrong setting fails loudly instead of silently
    falling back. Otherwise the first existing of ``./../shared/datasets``,
    ``./shared/datasets`` (relative to the working directory) and ``shared/datasets``
    next to the repository of this source file.
    """
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    tried = _candidate_dirs()
    for path in tried:
        if path.is_dir():
            return path.resolve()
    listed = ", ".join(str(p) for p in tried)
    raise DatasetNotFoundError(
        f"no data sets folder found (tried {listed}); set {ENV_VAR} to the folder that "
        f"holds {', '.join(DATASETS)}"
    )


def _require_file(folder: Path, name: str, filename: str) -> Path:
    path = folder / name / filename
    if not path.is_file():
        why = "" if folder.is_dir() else f" (the data sets folder {folder} does not exist)"
        raise DatasetNotFoundError(
            f"data set {name!r}: file {path} not found{why}; set {ENV_VAR} to the folder "
            f"that holds the data sets or pass root="
        )
    return path


def _positive_or_nan(values: pd.Series) -> np.ndarray:
    # The schema needs positive times; a zero or negative duration is a logging artefact
    # (LNIRT's own data treat idur == 0 as missing), so it becomes missing, not 0 s.
    rt = values.to_numpy(dtype=float, na_value=np.nan)
    return np.where(rt > 0, rt, np.nan)


def _finish(
    user: pd.Series,
    item: pd.Series,
    skill: pd.Series | str,
    correct: pd.Series,
    rt: np.ndarray | float,
    order: pd.Series,
    split: pd.Series | None = None,
) -> pd.DataFrame:
    out = pd.DataFrame(
        {
            "user_id": user.astype(str).to_numpy(),
            "item_id": item.astype(str).to_numpy(),
            "skill_id": skill if isinstance(skill, str) else skill.astype(str).to_numpy(),
            "correct": correct.to_numpy(dtype=np.int64),
            "rt_seconds": rt,
            "order": order.to_numpy(dtype=np.int64),
        }
    )
    for col in ("user_id", "item_id", "skill_id"):
        out[col] = out[col].astype(str)
    out["rt_seconds"] = out["rt_seconds"].astype(float)
    if split is not None:
        out["split"] = split.astype(str).to_numpy()
    # Sort on the string user id, exactly as smartstudy.data.schema.sort_for_sequences does,
    # so a model that sorts its input sees the rows in the same order as the loader.
    out = out.sort_values(["user_id", "order"], kind="stable", ignore_index=True)
    return out


def _load_assistments09(folder: Path, name: str) -> pd.DataFrame:
    raw = pd.read_csv(
        _require_file(folder, name, RESPONSES_FILE),
        usecols=["user_id", "item_id", "skill_id", "correct", "split", "seq_index"],
        dtype={
            "user_id": str,
            "item_id": str,
            "skill_id": str,
            "correct": np.int8,
            "split": str,
            "seq_index": np.int64,
        },
    )
    # `timestamp` is always 0 in this preprocessing: there are no times, so rt stays NaN.
    return _finish(
        raw["user_id"],
        raw["item_id"],
        raw["skill_id"],
        raw["correct"],
        np.nan,
        raw["seq_index"],
        raw["split"],
    )


def _load_assistments09_dkt(folder: Path, name: str) -> pd.DataFrame:
    raw = pd.read_csv(
        _require_file(folder, name, RESPONSES_FILE),
        usecols=["sequence", "split", "seq_index", "skill", "correct"],
        dtype={
            "sequence": str,
            "split": str,
            "seq_index": np.int64,
            "skill": str,
            "correct": np.int8,
        },
    )
    # Piech's format has no problem ids, so the skill doubles as the item.
    return _finish(
        raw["sequence"],
        raw["skill"],
        raw["skill"],
        raw["correct"],
        np.nan,
        raw["seq_index"],
        raw["split"],
    )


def _load_cognitive_tutor(folder: Path, name: str) -> pd.DataFrame:
    raw = pd.read_csv(
        _require_file(folder, name, RESPONSES_FILE),
        usecols=["person", "skill", "item", "correct", "rt_seconds", "seq_index"],
        dtype={
            "person": str,
            "skill": str,
            "item": str,
            "correct": np.int8,
            "rt_seconds": np.float64,
            "seq_index": np.int64,
        },
    )
    return _finish(
        raw["person"],
        raw["item"],
        raw["skill"],
        raw["correct"],
        _positive_or_nan(raw["rt_seconds"]),
        raw["seq_index"],
    )


def _load_credential_form1(folder: Path, name: str, *, include_pilot: bool = False) -> pd.DataFrame:
    raw = pd.read_csv(
        _require_file(folder, name, RESPONSES_FILE),
        usecols=["person", "item", "correct", "rt_seconds", "is_pilot"],
        dtype={
            "person": str,
            "item": np.int64,
            "correct": np.int8,
            "rt_seconds": np.float64,
            "is_pilot": np.int8,
        },
    )
    if not include_pilot:
        # Pilot items (171-200) are unscored and each examinee saw only 10 of the 30.
        raw = raw[raw["is_pilot"] == 0]
    # There is no presentation order in the source; the item number is the protocol order.
    return _finish(
        raw["person"],
        raw["item"],
        "credential",
        raw["correct"],
        _positive_or_nan(raw["rt_seconds"]),
        raw["item"],
    )


_TIMEOUT_MODES = ("incorrect", "drop")


def _load_mars_ib(
    folder: Path, name: str, *, exclude_rejected: bool = True, timeouts: str = "incorrect"
) -> pd.DataFrame:
    if timeouts not in _TIMEOUT_MODES:
        raise ValueError(f"timeouts must be one of {', '.join(_TIMEOUT_MODES)}, got {timeouts!r}")
    raw = pd.read_csv(
        _require_file(folder, name, RESPONSES_FILE),
        usecols=[
            "person",
            "seq_index",
            "item",
            "item_template",
            "correct",
            "rt_seconds",
            "person_rejected_by_authors",
        ],
        dtype={
            "person": str,
            "seq_index": np.int64,
            "item": str,
            "item_template": str,
            "correct": np.float64,
            "rt_seconds": np.float64,
            "person_rejected_by_authors": np.int64,
        },
    )
    if exclude_rejected:
        raw = raw[raw["person_rejected_by_authors"] == 0]
    timed_out = raw["correct"].isna()
    if timeouts == "drop":
        raw = raw[~timed_out]
        correct = raw["correct"]
    else:
        # No answer within the 30 s window is scored as wrong, as the MaRs-IB authors do.
        # Its time stays NaN: the true time is only known to exceed 30 s (censored).
        correct = raw["correct"].fillna(0.0)
    return _finish(
        raw["person"],
        raw["item"],
        raw["item_template"],
        correct,
        _positive_or_nan(raw["rt_seconds"]),
        raw["seq_index"],
    )


_LOADERS: dict[str, Callable[..., pd.DataFrame]] = {
    "assistments09": _load_assistments09,
    "assistments09_dkt": _load_assistments09_dkt,
    "cognitive_tutor": _load_cognitive_tutor,
    "credential_form1": _load_credential_form1,
    "mars_ib": _load_mars_ib,
}

_OPTIONS: dict[str, tuple[str, ...]] = {
    "credential_form1": ("include_pilot",),
    "mars_ib": ("exclude_rejected", "timeouts"),
}


def load_dataset(
    name: str, root: str | os.PathLike[str] | None = None, **options: Any
) -> pd.DataFrame:
    """Load one of :data:`DATASETS` as an interactions DataFrame.

    Options: ``credential_form1`` takes ``include_pilot=False``; ``mars_ib`` takes
    ``exclude_rejected=True`` (drop persons flagged by the authors' screening) and
    ``timeouts="incorrect"`` (a missing response counts as 0) or ``"drop"``. The returned
    frame carries ``attrs["dataset"] = name``. Raises ``ValueError`` for an unknown name or
    option and :class:`DatasetNotFoundError` naming the missing folder or file.
    """
    if name not in _LOADERS:
        raise ValueError(f"unknown data set {name!r}; valid names: {', '.join(DATASETS)}")
    unknown = sorted(set(options) - set(_OPTIONS.get(name, ())))
    if unknown:
        valid = ", ".join(_OPTIONS.get(name, ())) or "none"
        raise ValueError(f"data set {name!r} has no option(s) {unknown}; valid options: {valid}")
    df = _LOADERS[name](datasets_dir(root), name, **options)
    df.attrs["dataset"] = name
    return df


__all__ = [
    "DATASETS",
    "ENV_VAR",
    "DatasetNotFoundError",
    "datasets_dir",
    "load_dataset",
]
