"""Model families as the app trains them: the neural model's factory and its data threshold.

The per-topic LNIRT that the app serves is ``smartstudy.models.lnirt.TopicLNIRT``.
"""

from __future__ import annotations

from smartstudy.models.base import LearnerModel

#: The neural network learns nothing useful from fewer completed tasks than this; until
#: then the chain answers with LNIRT or the baseline.
NEURAL_MIN_ROWS = 50


def app_neural() -> LearnerModel:
    """The neural model as the app trains it (PyTorch is imported on first use)."""
    from smartstudy.models.neural import NeuralPredictor

    return NeuralPredictor()
