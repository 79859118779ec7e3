"""Result containers of an evaluation run: one ``ModelResult`` per model, one ``EvaluationReport``.

``to_dict`` gives plain JSON (NaN and "not applicable" become ``None``; metrics rounded to
4 decimals, seconds to 3) for the CLI's ``--json`` output and the admin pages; ``to_table``
gives a Rich table for the terminal.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from rich.table import Table

NOT_APPLICABLE = "—"
_METRIC_DECIMALS = 4
_SECONDS_DECIMALS = 3


def _round(value: float | None, decimals: int) -> float | None:
    if value is None:
        return None
    value = float(value)
    if not math.isfinite(value):
        return None
    return round(value, decimals)


def _fmt(value: float | None, decimals: int) -> str:
    rounded = _round(value, decimals)
    return NOT_APPLICABLE if rounded is None else f"{rounded:.{decimals}f}"


def _json_safe(value: Any) -> Any:
    """Hyperparameters as JSON: numbers, strings, bools, lists and dicts; anything else as repr."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    item = getattr(value, "item", None)  # NumPy scalars
    if callable(item):
        try:
            return _json_safe(item())
        except (TypeError, ValueError):
            pass
    return repr(value)


@dataclass
class ModelResult:
    """Held-out quality and cost of one model on one split.

    Time fields are ``None`` when the model does not predict time or the test rows carry
    no response times.
    """

    name: str
    model_class: str
    auc: float
    accuracy: float
    log_loss: float
    rmse: float
    ece: float
    n_predictions: int
    fit_seconds: float
    predict_seconds: float
    mae_seconds: float | None = None
    rmse_log_time: float | None = None
    coverage80: float | None = None
    n_time_predictions: int = 0
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def has_time_metrics(self) -> bool:
        """Whether the time columns were measured."""
        return self.mae_seconds is not None

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable summary."""
        m = _METRIC_DECIMALS
        return {
            "name": self.name,
            "model_class": self.model_class,
            "auc": _round(self.auc, m),
            "accuracy": _round(self.accuracy, m),
            "log_loss": _round(self.log_loss, m),
            "rmse": _round(self.rmse, m),
            "ece": _round(self.ece, m),
            "n_predictions": int(self.n_predictions),
            "mae_seconds": _round(self.mae_seconds, _SECONDS_DECIMALS),
            "rmse_log_time": _round(self.rmse_log_time, m),
            "coverage80": _round(self.coverage80, m),
            "n_time_predictions": int(self.n_time_predictions),
            "fit_seconds": _round(self.fit_seconds, _SECONDS_DECIMALS),
            "predict_seconds": _round(self.predict_seconds, _SECONDS_DECIMALS),
            "params": _json_safe(self.params),
        }


TABLE_COLUMNS: tuple[str, ...] = (
    "Model",
    "AUC",
    "ACC",
    "LogLoss",
    "RMSE",
    "ECE",
    "MAE s",
    "RMSE log t",
    "Cov80",
    "fit s",
    "predict s",
)


@dataclass
class EvaluationReport:
    """Every model's result on one data set under one protocol, with the split's sizes."""

    dataset: str
    protocol: str
    n_train_rows: int
    n_train_users: int
    n_test_rows: int
    n_test_users: int
    results: list[ModelResult] = field(default_factory=list)
    seed: int | None = None

    def result(self, name: str) -> ModelResult:
        """The result of the model evaluated under ``name``."""
        for res in self.results:
            if res.name == name:
                return res
        known = ", ".join(r.name for r in self.results) or "none"
        raise KeyError(f"no result for model {name!r}; evaluated: {known}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable summary (``json.dumps(..., allow_nan=False)`` accepts it)."""
        return {
            "dataset": self.dataset,
            "protocol": self.protocol,
            "seed": self.seed,
            "train": {"rows": int(self.n_train_rows), "users": int(self.n_train_users)},
            "test": {"rows": int(self.n_test_rows), "users": int(self.n_test_users)},
            "results": [r.to_dict() for r in self.results],
        }

    def to_table(self) -> Table:
        """A Rich table, one row per model; "—" where a metric does not apply."""
        table = Table(
            title=f"{self.dataset}: {self.protocol}",
            caption=(
                f"train {self.n_train_rows:,} rows / {self.n_train_users:,} users; "
                f"test {self.n_test_rows:,} rows / {self.n_test_users:,} users"
            ),
        )
        for i, col in enumerate(TABLE_COLUMNS):
            table.add_column(col, justify="left" if i == 0 else "right")
        m = _METRIC_DECIMALS
        for r in self.results:
            table.add_row(
                r.name,
                _fmt(r.auc, m),
                _fmt(r.accuracy, m),
                _fmt(r.log_loss, m),
                _fmt(r.rmse, m),
                _fmt(r.ece, m),
                _fmt(r.mae_seconds, 2),
                _fmt(r.rmse_log_time, m),
                _fmt(r.coverage80, m),
                _fmt(r.fit_seconds, 2),
                _fmt(r.predict_seconds, 2),
            )
        return table


__all__ = ["NOT_APPLICABLE", "TABLE_COLUMNS", "EvaluationReport", "ModelResult"]
