"""LNIRT: joint accuracy and response-time model (van der Linden 2007) with online personalisation.

``model`` holds the :class:`LNIRT` learner model (online posterior updates, predictive
distributions, parameter validation), ``fit`` the estimators (marginal MAP by EM, Gibbs
sampling), ``topic`` the per-topic wrapper :class:`TopicLNIRT` that the app serves and
``personfit`` the person-fit statistics (lZ of response times, lz of responses) behind
``LNIRT.person_fit`` and ``TopicLNIRT.person_fit``.
"""

from smartstudy.models.lnirt.fit import DegenerateFitError
from smartstudy.models.lnirt.model import (
    LNIRT,
    accuracy_update,
    check_lnirt_parameters,
    predictive_moments,
    time_update,
)
from smartstudy.models.lnirt.personfit import PERSON_FIT_COLUMNS, PERSON_FIT_KINDS
from smartstudy.models.lnirt.topic import TopicLNIRT

__all__ = [
    "LNIRT",
    "PERSON_FIT_COLUMNS",
    "PERSON_FIT_KINDS",
    "DegenerateFitError",
    "TopicLNIRT",
    "accuracy_update",
    "check_lnirt_parameters",
    "predictive_moments",
    "time_update",
]
