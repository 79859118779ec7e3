"""LNIRT's EM with and without SQUAREM acceleration, on the shared data sets.

The reference is the plain EM (Bock & Aitkin 1981) that ``fit_em`` ran before: one E-step and
one M-step per iteration until no parameter moves by more than ``tol``. The accelerated EM
(``fit_em(accelerate=True)``, the default; Varadhan & Roland 2008, Scand. J. Statist. 35(2))
extrapolates along the path of EM steps. Both start from the same values on the same data:
the rows LNIRT's ``fit`` gives its EM (every row of the data set, times made robust as
``fit`` does), with LNIRT's default priors and Student-t times where the set has times.

Printed per data set: EM steps and seconds of each, the ratio of the seconds, the log posterior
each reached, and the largest difference between the two fits' item parameters (log a, b,
log alpha, beta) and persons' posterior means.

    .venv/bin/python benchmarks/lnirt_em_acceleration.py [--datasets cognitive_tutor,...]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from smartstudy.data.loaders import load_dataset
from smartstudy.data.schema import validate_interactions
from smartstudy.models.base import population_seconds
from smartstudy.models.lnirt import LNIRT
from smartstudy.models.lnirt.fit import LNIRTEstimate, fit_em, pack_responses
from smartstudy.models.lnirt.model import LNIRT_ROBUST_Z

DATASETS = ("cognitive_tutor", "mars_ib", "credential_form1", "assistments09")


def _largest_difference(x: LNIRTEstimate, y: LNIRTEstimate) -> tuple[float, float]:
    items = max(
        float(np.max(np.abs(np.log(x.a) - np.log(y.a)))),
        float(np.max(np.abs(x.b - y.b))),
        float(np.max(np.abs(np.log(x.alpha) - np.log(y.alpha)))),
        float(np.max(np.abs(x.beta - y.beta))),
    )
    return items, float(np.max(np.abs(x.person_mean - y.person_mean)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated names")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPU cores visible")
    print(
        f"{'data set':<18} {'rows':>8} {'items':>6} {'plain steps':>11} {'plain s':>8} "
        f"{'fast steps':>10} {'fast s':>7} {'speed-up':>8} {'objective plain / fast':>26} "
        f"{'max |d item|':>12} {'max |d person|':>14}"
    )
    model = LNIRT()
    for name in args.datasets.split(","):
        data = validate_interactions(load_dataset(name), allow_missing_outcome=True)
        data["rt_seconds"] = population_seconds(data, LNIRT_ROBUST_Z)
        packed = pack_responses(data)
        fits, seconds = {}, {}
        for accelerate in (False, True):
            start = time.perf_counter()
            fits[accelerate] = fit_em(
                packed,
                priors=model._priors(),
                max_iter=model.max_iter,
                tol=model.tol,
                student_t=model.time_model == "t",
                accelerate=accelerate,
            )
            seconds[accelerate] = time.perf_counter() - start
        plain, fast = fits[False], fits[True]
        items, persons = _largest_difference(plain, fast)
        print(
            f"{name:<18} {len(data):>8} {packed.n_items:>6} {plain.n_iter:>11} "
            f"{seconds[False]:>8.2f} {fast.n_iter:>10} {seconds[True]:>7.2f} "
            f"{seconds[False] / seconds[True]:>7.1f}x "
            f"{plain.objective:>12.1f} / {fast.objective:<11.1f} {items:>12.5f} {persons:>14.5f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
