"""Learner models: pure NumPy/SciPy/PyTorch code, no database and no web."""

from smartstudy.models.base import (
    ArtifactError,
    CannotPredictError,
    LearnerModel,
    NotFittedError,
)
from smartstudy.models.baseline import Baseline
from smartstudy.models.bkt import BKT
from smartstudy.models.lnirt import LNIRT, DegenerateFitError
from smartstudy.models.neural import NeuralPredictor

# Every model by its ``name``: the contract tests, the trainer and the serving chain iterate
# over this, so a new model joins here once it passes tests/test_model_contract.py.
MODEL_CLASSES: dict[str, type[LearnerModel]] = {
    "baseline": Baseline,
    "lnirt": LNIRT,
    "bkt": BKT,
    "neural": NeuralPredictor,
}

__all__ = [
    "BKT",
    "LNIRT",
    "MODEL_CLASSES",
    "ArtifactError",
    "Baseline",
    "CannotPredictError",
    "DegenerateFitError",
    "LearnerModel",
    "NeuralPredictor",
    "NotFittedError",
]
