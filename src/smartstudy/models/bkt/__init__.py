"""Bayesian Knowledge Tracing (Corbett & Anderson 1995, UMUAI 4): per-concept mastery.

``core`` holds the scalar math (prediction, Bayes update, learning transition, validation and
degeneracy rules), ``em`` the vectorised Baum-Welch fitting (Baum et al. 1970) and ``model``
the :class:`BKT` learner model of the SmartStudy contract.
"""

from smartstudy.models.bkt.core import (
    DEFAULT_PARAMS,
    BKTParams,
    check_degeneracy,
    clamp_probability,
    learning_transition,
    posterior_given_correct,
    posterior_given_wrong,
    predict_correct,
    update_mastery,
    validate_params,
)
from smartstudy.models.bkt.em import DEFAULT_BOUNDS, EMResult, fit_em, fit_em_batch
from smartstudy.models.bkt.model import BKT

__all__ = [
    "BKT",
    "DEFAULT_BOUNDS",
    "DEFAULT_PARAMS",
    "BKTParams",
    "EMResult",
    "check_degeneracy",
    "clamp_probability",
    "fit_em",
    "fit_em_batch",
    "learning_transition",
    "posterior_given_correct",
    "posterior_given_wrong",
    "predict_correct",
    "update_mastery",
    "validate_params",
]
