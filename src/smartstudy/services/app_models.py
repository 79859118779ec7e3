"""Model families as the app trains them: the baseline's and the neural model's factories,
and the neural model's data threshold.

The per-topic LNIRT that the app serves is ``smartstudy.models.lnirt.TopicLNIRT``.
"""

from __future__ import annotations

from smartstudy.models.base import LearnerModel
from smartstudy.models.baseline import Baseline

#: Between a topic and a difficulty in an item's id (``predictor.item_key``).
ITEM_LEVEL_SEP = ":"

#: The neural network learns nothing useful from fewer completed tasks than this; until
#: then the chain answers with LNIRT or the baseline.
NEURAL_MIN_ROWS = 50


def app_neural() -> LearnerModel:
    """The neural model as the app trains it (PyTorch is imported on first use)."""
    from smartstudy.models.neural import NeuralPredictor

    return NeuralPredictor()


def app_baseline() -> LearnerModel:
    """Baseline as the app trains it: a difficulty means the same in every topic, so an
    item (a topic and a difficulty) with little data is shrunk towards its topic at its
    difficulty (``Baseline``'s levels, read from the item's id)."""
    return Baseline(item_level_sep=ITEM_LEVEL_SEP)
