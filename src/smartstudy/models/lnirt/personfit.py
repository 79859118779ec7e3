"""Person-fit statistics of LNIRT: is a student's pattern of times and answers plausible?

Two statistics per person, both computed from the fitted item parameters (pure NumPy/SciPy):

- **Response times**, the ``lZ`` statistic of J.-P. Fox & S. Marianti (2017), "Person-fit
  statistics for joint models for accuracy and speed", Journal of Educational Measurement
  54(2), 243-262, as in the R package LNIRT::

      lZ_p = sum_k (alpha_k (log T_pk - (beta_k - tau_p)))^2

  the sum of the person's squared standardised log-time residuals. Under the model each term is
  a squared standard normal. LNIRT averages the statistic over posterior draws of ``tau_p``;
  here ``tau_p`` is plugged in at its precision-weighted (maximum-likelihood) estimate from the
  same times, ``sum alpha_k^2 (beta_k - log T_pk) / sum alpha_k^2``, which makes ``lZ_p``
  exactly chi-square with ``K_p - 1`` degrees of freedom for ``K_p`` timed items (one degree is
  spent on the speed). The upper-tail p-value flags a pattern, so a level of 0.05 flags 5% of
  persons who follow the model. ``lZ`` does not say in which direction a person deviated (the
  estimated speed absorbs a uniform shift), so the direction comes from residuals against the
  person's *typical* speed, the median of ``beta_k - log T_pk``: a few rapid guesses leave the
  median alone and give a clearly negative mean residual ("rapid"), a few very slow answers a
  positive one ("slow").
- **Responses**, the standardised log-likelihood ``lz`` of Drasgow, Levine & Williams (1985),
  "Appropriateness measurement with polychotomous item response models and standardized
  indices", British Journal of Mathematical and Statistical Psychology 38, 67-86::

      l0 = sum_k y_k log P_k + (1 - y_k) log(1 - P_k)
      lz = (l0 - E l0) / sqrt(Var l0),  P_k = Phi(a_k (theta_p - b_k))

  with ``E l0 = sum P log P + (1 - P) log(1 - P)`` and
  ``Var l0 = sum P (1 - P) log(P / (1 - P))^2``, at the person's posterior-mean ability. This is
  the classical (frequentist) ``lz``, not LNIRT's Bayesian version; large negative values mean
  answers that the person's ability does not explain (e.g. wrong on easy items, right on hard
  ones). With an estimated ability it is somewhat conservative (Snijders 2001), so the normal
  lower tail flags a little less than its nominal level.

Sums over responses are kept separately (``PersonFitParts``), so that the statistics of one
person seen by several models (one LNIRT per topic) combine exactly: chi-square statistics and
their degrees of freedom add, and so do ``l0 - E l0`` and ``Var l0``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import log_ndtr

__all__ = [
    "PERSON_FIT_COLUMNS",
    "PERSON_FIT_KINDS",
    "PERSON_FIT_SUMS",
    "NothingToScoreError",
    "PersonFitParts",
    "check_level",
    "person_fit_parts",
    "summarise_person_fit",
]

#: Columns of a person-fit table, after the person's id column(s).
PERSON_FIT_COLUMNS: tuple[str, ...] = (
    "n",
    "n_time",
    "theta",
    "tau",
    "lz_time",
    "df_time",
    "p_time",
    "mean_resid",
    "lz_resp",
    "p_resp",
    "flag_time",
    "flag_resp",
    "kind",
)
#: Values of ``kind``: the time pattern first (it is the more specific finding), then answers.
PERSON_FIT_KINDS: tuple[str, ...] = ("rapid", "slow", "erratic responses", "")
#: Sums per person that the statistics are made of; they add across models of one person.
PERSON_FIT_SUMS: tuple[str, ...] = (
    "n",
    "n_time",
    "lz_time",
    "df_time",
    "resid_sum",
    "n_resp",
    "resp_dev",
    "resp_var",
)


class NothingToScoreError(ValueError):
    """``person_fit`` was given no row that a fitted model can score."""


@dataclass
class PersonFitParts:
    """Additive per-person sums (see the module docstring), one row per person in ``ids``.

    ``theta``/``tau`` are the posterior means of the person (not additive; a combination of
    several models reports their mean).
    """

    ids: pd.DataFrame
    sums: pd.DataFrame
    theta: np.ndarray
    tau: np.ndarray

    def frame(self) -> pd.DataFrame:
        """ids, sums, theta and tau side by side."""
        out = pd.concat([self.ids.reset_index(drop=True), self.sums.reset_index(drop=True)], axis=1)
        out["theta"] = self.theta
        out["tau"] = self.tau
        return out


def check_level(level: float) -> float:
    """``level`` as a float in (0, 1), or a ``ValueError`` naming it."""
    ok = isinstance(level, int | float) and not isinstance(level, bool) and 0.0 < level < 1.0
    if not ok:
        raise ValueError(f"level must be a probability in (0, 1), got {level!r}")
    return float(level)


def _time_sums(
    person: np.ndarray, log_t: np.ndarray, alpha: np.ndarray, beta: np.ndarray, n_persons: int
) -> dict[str, np.ndarray]:
    """lZ with the maximum-likelihood speed, its degrees of freedom and the residuals against
    the median speed, for the timed rows given (``person`` are codes in ``[0, n_persons)``)."""
    w = alpha * alpha
    prec = np.bincount(person, weights=w, minlength=n_persons)
    n_time = np.bincount(person, minlength=n_persons).astype(float)
    speed = beta - log_t  # each row's own estimate of tau
    safe = np.where(prec > 0, prec, 1.0)
    tau_ml = np.bincount(person, weights=w * speed, minlength=n_persons) / safe
    z = alpha * (log_t - (beta - tau_ml[person]))
    lz = np.bincount(person, weights=z * z, minlength=n_persons)
    typical = pd.Series(speed).groupby(person).median()
    tau_med = np.zeros(n_persons)
    tau_med[typical.index.to_numpy()] = typical.to_numpy()
    resid = alpha * (log_t - (beta - tau_med[person]))
    return {
        "n_time": n_time,
        "lz_time": lz,
        "df_time": np.maximum(n_time - 1.0, 0.0),
        "resid_sum": np.bincount(person, weights=resid, minlength=n_persons),
    }


def _response_sums(
    person: np.ndarray,
    correct: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    theta: np.ndarray,
    n_persons: int,
) -> dict[str, np.ndarray]:
    """``l0 - E l0`` and ``Var l0`` of the answered rows given (Drasgow et al. 1985)."""
    eta = a * (theta[person] - b)
    log_p, log_q = log_ndtr(eta), log_ndtr(-eta)
    p, q = np.exp(log_p), np.exp(log_q)
    dev = correct * log_p + (1.0 - correct) * log_q - (p * log_p + q * log_q)
    var = p * q * (log_p - log_q) ** 2
    return {
        "n_resp": np.bincount(person, minlength=n_persons).astype(float),
        "resp_dev": np.bincount(person, weights=dev, minlength=n_persons),
        "resp_var": np.bincount(person, weights=var, minlength=n_persons),
    }


def person_fit_parts(
    ids: pd.DataFrame,
    person: np.ndarray,
    correct: np.ndarray,
    log_t: np.ndarray,
    items: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    theta: np.ndarray,
    tau: np.ndarray,
) -> PersonFitParts:
    """The additive sums of every person in ``ids`` from their rows.

    ``person`` codes each row's person (index into ``ids``); ``correct`` is 0/1 or NaN (not
    answered), ``log_t`` the log seconds or NaN (no time); ``items`` are the rows' item
    parameters ``(a, b, alpha, beta)``; ``theta``/``tau`` the persons' posterior means.
    """
    n_persons = len(ids)
    a, b, alpha, beta = items
    answered = np.isfinite(correct)
    timed = np.isfinite(log_t)
    sums: dict[str, np.ndarray] = {
        "n": np.bincount(person[answered | timed], minlength=n_persons).astype(float)
    }
    sums.update(_time_sums(person[timed], log_t[timed], alpha[timed], beta[timed], n_persons))
    sums.update(
        _response_sums(
            person[answered], correct[answered], a[answered], b[answered], theta, n_persons
        )
    )
    return PersonFitParts(
        ids=ids.reset_index(drop=True),
        sums=pd.DataFrame({k: sums[k] for k in PERSON_FIT_SUMS}),
        theta=np.asarray(theta, dtype=float),
        tau=np.asarray(tau, dtype=float),
    )


def summarise_person_fit(
    frame: pd.DataFrame, id_columns: list[str], level: float = 0.05
) -> pd.DataFrame:
    """The person-fit table from a frame of ``id_columns``, the additive sums and theta/tau.

    ``lz_time`` is NaN (and not flagged) for a person with fewer than two timed rows, ``lz_resp``
    for one whose answers carry no information (none, or all at probabilities 0 or 1).
    ``flag_time``: ``p_time < level``; ``flag_resp``: ``p_resp < level`` (lower tail of ``lz``).
    """
    level = check_level(level)
    df_time = frame["df_time"].to_numpy(dtype=float)
    lz_time = np.where(df_time > 0, frame["lz_time"].to_numpy(dtype=float), np.nan)
    p_time = np.where(df_time > 0, stats.chi2.sf(lz_time, np.maximum(df_time, 1.0)), np.nan)
    n_time = frame["n_time"].to_numpy(dtype=float)
    mean_resid = np.where(
        n_time > 0, frame["resid_sum"].to_numpy(dtype=float) / np.maximum(n_time, 1.0), np.nan
    )
    var = frame["resp_var"].to_numpy(dtype=float)
    informative = var > 1e-12
    lz_resp = np.where(
        informative,
        frame["resp_dev"].to_numpy(dtype=float) / np.sqrt(np.where(informative, var, 1.0)),
        np.nan,
    )
    p_resp = stats.norm.cdf(lz_resp)
    flag_time = np.nan_to_num(p_time, nan=1.0) < level
    flag_resp = np.nan_to_num(p_resp, nan=1.0) < level
    kind = np.where(
        flag_time,
        np.where(mean_resid < 0, "rapid", "slow"),
        np.where(flag_resp, "erratic responses", ""),
    )
    out = frame[id_columns].reset_index(drop=True).copy()
    out["n"] = frame["n"].to_numpy(dtype=np.int64)
    out["n_time"] = n_time.astype(np.int64)
    out["theta"] = frame["theta"].to_numpy(dtype=float)
    out["tau"] = frame["tau"].to_numpy(dtype=float)
    out["lz_time"] = lz_time
    out["df_time"] = df_time.astype(np.int64)
    out["p_time"] = p_time
    out["mean_resid"] = mean_resid
    out["lz_resp"] = lz_resp
    out["p_resp"] = p_resp
    out["flag_time"] = flag_time
    out["flag_resp"] = flag_resp
    out["kind"] = kind.astype(object)
    return out
