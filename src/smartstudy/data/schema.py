"""The interactions schema shared by every loader, model and evaluation.

One row per attempt: ``user_id, item_id, correct (0/1), order`` plus the optional
``skill_id`` and ``rt_seconds``. In the app an item is a (topic, difficulty) pair and the
skill is the topic; in public data sets an item is a question and the skill its concept.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

REQUIRED_COLUMNS: tuple[str, ...] = ("user_id", "item_id", "correct", "order")
OPTIONAL_COLUMNS: tuple[str, ...] = ("skill_id", "rt_seconds")
INTERACTION_COLUMNS: tuple[str, ...] = (
    "user_id",
    "item_id",
    "skill_id",
    "correct",
    "rt_seconds",
    "order",
)


class InteractionsError(ValueError):
    """Raised when a DataFrame does not follow the interactions schema."""


class InteractionsWarning(UserWarning):
    """Issued when a value is read as missing instead of refused: a response time that is a
    number but not a positive finite number of seconds (see ``usable_seconds``)."""


# Why such a time is read as missing rather than refused, in every warning that says so.
_UNUSABLE_TIME = (
    "a duration of zero or less, or an infinite one, is a logging artefact (the R package "
    "LNIRT reads a zero time as missing), and the attempt's outcome is still good"
)


def _first_bad(df: pd.DataFrame, mask: np.ndarray, column: str) -> str:
    pos = int(np.flatnonzero(mask)[0])
    label = df.index[pos]
    value = df[column].iloc[pos]
    if isinstance(value, np.generic):  # 0.0, not np.float64(0.0)
        value = value.item()
    return f"{value!r} in row {label} (position {pos})"


def validate_interactions(
    df: pd.DataFrame,
    *,
    allow_missing_outcome: bool = False,
    require_time: bool = False,
) -> pd.DataFrame:
    """Check ``df`` against the interactions schema and return a normalised copy.

    The copy keeps the index of ``df``; ids become strings, ``correct`` becomes float
    (0.0 / 1.0, or NaN where the outcome is unknown and ``allow_missing_outcome``),
    ``rt_seconds`` float (NaN = missing) and ``order`` float. Errors name the column,
    the offending value and its row.
    """
    if not isinstance(df, pd.DataFrame):
        raise InteractionsError(f"expected a pandas DataFrame, got {type(df).__name__}")
    _check_columns(df, require_time)
    out = pd.DataFrame(index=df.index)
    _copy_ids(df, out)
    out["correct"] = _outcomes(df, allow_missing_outcome)
    out["rt_seconds"] = _response_times(df) if "rt_seconds" in df.columns else np.nan
    out["order"] = _order(df)
    return out


def _check_columns(df: pd.DataFrame, require_time: bool) -> None:
    """Raise if a required column (or ``rt_seconds`` when ``require_time``) is missing."""
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if require_time and "rt_seconds" not in df.columns:
        missing.append("rt_seconds")
    if missing:
        raise InteractionsError(
            f"missing column(s) {', '.join(f'`{c}`' for c in missing)}; "
            f"expected {', '.join(INTERACTION_COLUMNS)}"
        )


def _copy_ids(df: pd.DataFrame, out: pd.DataFrame) -> None:
    """``user_id`` and ``item_id`` (never missing) and ``skill_id`` (None where missing or
    absent) into ``out`` as strings."""
    for col in ("user_id", "item_id"):
        values = df[col]
        bad = values.isna().to_numpy()
        if bad.any():
            raise InteractionsError(f"column `{col}` has a missing id: {_first_bad(df, bad, col)}")
        out[col] = _id_strings(values)
    if "skill_id" in df.columns:
        skill = df["skill_id"]
        strings = _id_strings(skill)
        out["skill_id"] = strings.astype(object).where(skill.notna().to_numpy(), None)
    else:
        out["skill_id"] = None


def _outcomes(df: pd.DataFrame, allow_missing_outcome: bool) -> pd.Series:
    """``correct`` as 0.0 / 1.0 (NaN where missing, if ``allow_missing_outcome``)."""
    correct = pd.to_numeric(df["correct"], errors="coerce")
    raw_missing = df["correct"].isna().to_numpy()
    not_numeric = correct.isna().to_numpy() & ~raw_missing
    if not_numeric.any():
        raise InteractionsError(
            "expected column `correct` with values 0/1, got "
            + _first_bad(df, not_numeric, "correct")
        )
    not_binary = ~correct.isna().to_numpy() & ~np.isin(correct.to_numpy(), (0, 1))
    if not_binary.any():
        raise InteractionsError(
            "expected column `correct` with values 0/1, got "
            + _first_bad(df, not_binary, "correct")
        )
    if raw_missing.any() and not allow_missing_outcome:
        raise InteractionsError(
            f"column `correct` has a missing outcome: {_first_bad(df, raw_missing, 'correct')}"
        )
    return correct.astype(float)


def _response_times(df: pd.DataFrame) -> np.ndarray:
    """``rt_seconds`` as positive finite floats, NaN where missing.

    A column that is not numeric is refused. A number that is not a usable duration (zero,
    negative or infinite) is read as missing, with an ``InteractionsWarning`` that counts
    them and names the first: real logs hold such times (credential_form1 has 109 zeros),
    and refusing the whole frame would throw its outcomes away with them."""
    rt = pd.to_numeric(df["rt_seconds"], errors="coerce")
    not_numeric = rt.isna().to_numpy() & ~df["rt_seconds"].isna().to_numpy()
    if not_numeric.any():
        raise InteractionsError(
            "expected column `rt_seconds` with positive numbers, got "
            + _first_bad(df, not_numeric, "rt_seconds")
        )
    arr = rt.to_numpy(dtype=float)
    unusable = ~np.isnan(arr) & np.isnan(usable_times(arr))
    if unusable.any():
        warnings.warn(
            f"column `rt_seconds`: {int(unusable.sum())} time(s) that are not positive finite "
            f"seconds are read as missing, the first {_first_bad(df, unusable, 'rt_seconds')}; "
            + _UNUSABLE_TIME,
            InteractionsWarning,
            stacklevel=4,
        )
        arr = np.where(unusable, np.nan, arr)
    return arr


def usable_times(seconds: np.ndarray) -> np.ndarray:
    """``seconds`` with every value that is not a positive finite duration set to NaN."""
    with np.errstate(invalid="ignore"):
        return np.where(np.isfinite(seconds) & (seconds > 0), seconds, np.nan)


def usable_seconds(value: Any, where: str = "update() row") -> float:
    """One attempt's ``rt_seconds`` as positive finite seconds, NaN where it is missing.

    Text or another non-number raises ``ValueError`` naming ``rt_seconds``; a number that
    is zero, negative or infinite is read as missing with an ``InteractionsWarning``, as
    ``validate_interactions`` reads a frame's times."""
    if is_missing(value):
        return math.nan
    rt = math.nan
    if not isinstance(value, str | bytes | bool | np.bool_):
        with contextlib.suppress(TypeError, ValueError, OverflowError):
            rt = float(value)
    if math.isnan(rt):
        raise ValueError(
            f"{where} needs `rt_seconds` as positive seconds or missing, got {value!r}"
        )
    if not (math.isfinite(rt) and rt > 0):
        warnings.warn(
            f"{where}: `rt_seconds` {value!r} is not a positive finite number of seconds and "
            f"is read as missing; " + _UNUSABLE_TIME,
            InteractionsWarning,
            stacklevel=3,
        )
        return math.nan
    return rt


def _order(df: pd.DataFrame) -> pd.Series:
    """``order`` as finite floats: numbers, datetimes, or text that is all ISO 8601 times
    (``2012-09-01 10:05:00``, as a log's time stamps are often read), as seconds."""
    raw = df["order"]
    order = pd.to_numeric(raw, errors="coerce")
    if order.isna().all() and len(raw) and _is_text(raw):
        stamps = pd.to_datetime(raw, errors="coerce", utc=True, format="ISO8601")
        if stamps.notna().any():  # a text that is not a time is named below
            order = (stamps - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
    bad = ~np.isfinite(order.to_numpy(dtype=float, na_value=np.nan))
    if bad.any():
        raise InteractionsError(
            "expected column `order` with finite numbers or ISO 8601 times, got "
            + _first_bad(df, bad, "order")
        )
    return order.astype(float)


def _is_text(values: pd.Series) -> bool:
    return values.dtype == object or pd.api.types.is_string_dtype(values.dtype)


def id_string(value: object) -> str:
    """The canonical text of one id: whole-number floats lose their ``.0``."""
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _id_strings(values: pd.Series) -> pd.Series:
    # A numeric id column with a gap becomes float; "1.0" and "1" must be the same id.
    if pd.api.types.is_float_dtype(values.dtype):
        return values.map(lambda v: v if pd.isna(v) else id_string(v)).astype(object)
    return values.astype(str)


def sort_for_sequences(df: pd.DataFrame) -> np.ndarray:
    """Positions of ``df`` rows sorted by user, then ``order``, ties kept in row order."""
    keys = pd.DataFrame(
        {"u": df["user_id"].to_numpy(), "o": df["order"].to_numpy(), "p": np.arange(len(df))}
    )
    return keys.sort_values(["u", "o", "p"], kind="stable")["p"].to_numpy()


def is_missing(value: Any) -> bool:
    """None, NaN, ``pd.NA`` or ``NaT`` (as ``validate_interactions`` reads them)."""
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # containers: not a missing scalar
        return False


def parse_attempt(row: Mapping[str, Any]) -> tuple[str, str, str | None, float, float]:
    """(user, item, skill or None, correct 0/1, rt seconds or NaN) of one ``update`` row.

    Ids become strings as in ``validate_interactions``; a bad field raises ``ValueError``
    naming it.
    """
    if not isinstance(row, Mapping):
        raise ValueError(f"update() expects a mapping with user_id, item_id, correct; got {row!r}")
    ids = []
    for field in ("user_id", "item_id"):
        value = row.get(field)
        if is_missing(value):
            raise ValueError(f"update() row needs `{field}`, got {value!r}")
        ids.append(id_string(value))
    skill_raw = row.get("skill_id")
    skill = None if is_missing(skill_raw) else id_string(skill_raw)

    correct = row.get("correct")
    y = math.nan
    if not isinstance(correct, str | bytes) and not is_missing(correct):
        with contextlib.suppress(TypeError, ValueError):  # reported just below
            y = float(correct)
    if y not in (0.0, 1.0):
        raise ValueError(f"update() row needs `correct` with value 0 or 1, got {correct!r}")

    rt = usable_seconds(row.get("rt_seconds"))
    return ids[0], ids[1], skill, y, rt
