"""LNIRT: joint accuracy and response-time model (van der Linden 2007) with online personalisation.

``model`` holds the :class:`LNIRT` learner model (online posterior updates, predictive
distributions, parameter validation), ``fit`` the estimators (marginal MAP by EM, Gibbs
sampling) and ``topic`` the per-topic wrapper :class:`TopicLNIRT` that the app serves.
"""

from smartstudy.models.lnirt.fit import DegenerateFitError
from smartstudy.models.lnirt.model import (
    LNIRT,
    accuracy_update,
    check_lnirt_parameters,
    predictive_moments,
    time_update,
)
from smartstudy.models.lnirt.topic import TopicLNIRT

__all__ = [
    "LNIRT",
    "DegenerateFitError",
    "TopicLNIRT",
    "accuracy_update",
    "check_lnirt_parameters",
    "predictive_moments",
    "time_update",
]
