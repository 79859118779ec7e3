"""NeuralPredictor: the embedding model ("V2") with monotone history features and a log-time head.

``predictor`` holds the :class:`NeuralPredictor` learner model, ``features`` the incremental
per-user history features, ``refs`` the leave-user-out population references, ``net`` the
network (PyTorch to train, NumPy to predict), ``strategies`` the remedies against one dominant
user and ``train`` the training loop. PyTorch is imported only when a model is fitted.
"""

from smartstudy.models.neural.predictor import NeuralPredictor
from smartstudy.models.neural.strategies import STRATEGIES

__all__ = ["STRATEGIES", "NeuralPredictor"]
