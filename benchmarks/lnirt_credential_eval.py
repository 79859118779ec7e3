"""LNIRT on credential_form1: one-step-ahead accuracy and time predictions for new persons.

Protocol: the scored items of the credentialing exam distributed with the R package LNIRT
(Cizek & Wollack 2016; Fox, Klotzke & Klein Entink), persons split 80/20 by a seed, LNIRT
(van der Linden 2007, Psychometrika 72(3)) fitted on the 80%, then every held-out person is
predicted one step ahead in item order: each prediction uses the fitted items and the
person's earlier responses, never the response itself. A simple reference is printed next to
it: per-item mean correctness and per-item mean log time (its 80% interval from the item's
sd of log time).

    .venv/bin/python benchmarks/lnirt_credential_eval.py [--seeds 0 1 2] [--json]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pandas as pd

from smartstudy.data.loaders import load_dataset
from smartstudy.eval.metrics import auc, interval_coverage, rmse_log_time
from smartstudy.eval.protocol import split_by_student
from smartstudy.models.base import Z80
from smartstudy.models.lnirt import LNIRT

TARGETS = {"auc": (">=", 0.735), "rmse_log_time": ("<=", 0.510), "coverage80": ("in", 0.77, 0.83)}


def _scores(test: pd.DataFrame, pred: pd.DataFrame) -> dict[str, float]:
    return {
        "auc": auc(test["correct"], pred["p_correct"]),
        "rmse_log_time": rmse_log_time(test["rt_seconds"], pred["time_median_s"]),
        "coverage80": interval_coverage(test["rt_seconds"], pred["time_p10_s"], pred["time_p90_s"]),
    }


def reference_predictions(train: pd.DataFrame, test: pd.DataFrame) -> pd.DataFrame:
    """Per-item mean correctness and lognormal time from per-item mean and sd of log time."""
    log_t = np.log(train["rt_seconds"])
    by_item = pd.DataFrame(
        {
            "p": train.groupby("item_id")["correct"].mean(),
            "mu": log_t.groupby(train["item_id"]).mean(),
            "sd": log_t.groupby(train["item_id"]).std(),
        }
    )
    rows = by_item.reindex(test["item_id"])
    p = rows["p"].fillna(train["correct"].mean()).to_numpy()
    mu = rows["mu"].fillna(log_t.mean()).to_numpy()
    sd = rows["sd"].fillna(log_t.std()).to_numpy()
    return pd.DataFrame(
        {
            "p_correct": p,
            "time_median_s": np.exp(mu),
            "time_p10_s": np.exp(mu - Z80 * sd),
            "time_p90_s": np.exp(mu + Z80 * sd),
        },
        index=test.index,
    )


def _passes(metrics: dict[str, float]) -> bool:
    ok = metrics["auc"] >= 0.735 and metrics["rmse_log_time"] <= 0.510
    return ok and 0.77 <= metrics["coverage80"] <= 0.83


def run(seed: int, test_fraction: float, df: pd.DataFrame) -> dict:
    train, test = split_by_student(df, test_fraction=test_fraction, seed=seed)
    start = time.perf_counter()
    model = LNIRT().fit(train)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    pred = model.predict(test)
    predict_s = time.perf_counter() - start
    return {
        "seed": seed,
        "n_train_rows": len(train),
        "n_test_rows": len(test),
        "n_test_persons": int(test["user_id"].nunique()),
        "fit_seconds": fit_s,
        "predict_seconds": predict_s,
        "em_iterations": model.n_iter_,
        "rho": model.rho_,
        "sd_tau": float(np.sqrt(model.sigma_P_[1, 1])),
        "lnirt": _scores(test, pred),
        "reference": _scores(test, reference_predictions(train, test)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="split seeds, e.g. 0 1")
    parser.add_argument("--test-fraction", type=float, default=0.2)
    parser.add_argument("--json", action="store_true", help="print one JSON object per seed")
    args = parser.parse_args()
    df = load_dataset("credential_form1")
    print(f"credential_form1: {len(df)} scored responses, {df['user_id'].nunique()} persons")
    print("targets: AUC >= 0.735, RMSE(log t) <= 0.510, 80% coverage in [0.77, 0.83]")
    for seed in args.seeds:
        res = run(seed, args.test_fraction, df)
        if args.json:
            print(json.dumps(res))
            continue
        print(
            f"\nseed {seed}: {res['n_test_persons']} test persons ({res['n_test_rows']} rows), "
            f"fit {res['fit_seconds']:.2f} s ({res['em_iterations']} EM iterations), "
            f"predict {res['predict_seconds']:.2f} s, rho {res['rho']:+.3f}, "
            f"sd(tau) {res['sd_tau']:.3f}"
        )
        print(f"  {'model':<10} {'AUC':>7} {'RMSE log t':>11} {'cover 80%':>10}")
        for name in ("lnirt", "reference"):
            m = res[name]
            print(
                f"  {name:<10} {m['auc']:7.4f} {m['rmse_log_time']:11.4f} {m['coverage80']:10.4f}"
            )
        print(f"  LNIRT meets the targets: {_passes(res['lnirt'])}")


if __name__ == "__main__":
    main()
