"""Metrics, splitting protocols and evaluation reports for learner models."""

from smartstudy.eval.crossval import crossvalidate
from smartstudy.eval.metrics import (
    accuracy,
    auc,
    correctness_metrics,
    expected_calibration_error,
    interval_coverage,
    log_loss,
    mae_seconds,
    rmse,
    rmse_log_time,
    time_metrics,
)
from smartstudy.eval.protocol import (
    SPLIT_MODES,
    evaluate_model,
    run_evaluation,
    split_by_student,
    split_own,
)
from smartstudy.eval.report import EvaluationReport, ModelResult

__all__ = [
    "SPLIT_MODES",
    "EvaluationReport",
    "ModelResult",
    "accuracy",
    "auc",
    "correctness_metrics",
    "crossvalidate",
    "evaluate_model",
    "expected_calibration_error",
    "interval_coverage",
    "log_loss",
    "mae_seconds",
    "rmse",
    "rmse_log_time",
    "run_evaluation",
    "split_by_student",
    "split_own",
    "time_metrics",
]
