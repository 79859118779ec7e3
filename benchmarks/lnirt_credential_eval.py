"""LNIRT on credential_form1: one-step-ahead accuracy and time predictions for new persons.

Protocol: the scored items of the credentialing exam distributed with the R package LNIRT
(Cizek & Wollack 2016; Fox, Klotzke & Klein Entink), persons split 80/20 by a seed, LNIRT
(van der Linden 2007, Psychometrika 72(3)) fitted on the 80%, then every held-out person is
predicted one step ahead in item order: each prediction uses the fitted items and the
person's earlier responses, never the response itself. Two references are printed next to it:
the contract's ``Baseline`` and a per-item reference (mean correctness and mean log time, its
80% interval from the item's sd of log time).

Targets (issue 15, acceptance 2): AUC >= 0.745, RMSE of log time <= 0.505, 80% interval
coverage in [0.78, 0.82], each on every split seed (a target met on one seed only is not met).
The summary gives mean +- sd over the seeds and the seeds on which each target holds.

    .venv/bin/python benchmarks/lnirt_credential_eval.py [--seeds 0 1 2 3 4] [--json]
    .venv/bin/python benchmarks/lnirt_credential_eval.py --time-model normal  # lognormal
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import pandas as pd

from smartstudy.data.loaders import load_dataset
from smartstudy.eval.metrics import auc, interval_coverage, rmse_log_time
from smartstudy.eval.protocol import split_by_student
from smartstudy.models.base import Z80
from smartstudy.models.baseline import Baseline
from smartstudy.models.lnirt import LNIRT

METRICS = ("auc", "rmse_log_time", "coverage80")


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


def meets(metrics: dict[str, float]) -> dict[str, bool]:
    """Which targets of issue 15, acceptance 2 the metrics meet."""
    return {
        "auc": metrics["auc"] >= 0.745,
        "rmse_log_time": metrics["rmse_log_time"] <= 0.505,
        "coverage80": 0.78 <= metrics["coverage80"] <= 0.82,
    }


def run(seed: int, test_fraction: float, df: pd.DataFrame, time_model: str) -> dict:
    train, test = split_by_student(df, test_fraction=test_fraction, seed=seed)
    start = time.perf_counter()
    model = LNIRT(time_model=time_model).fit(train)
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
        "time_df": model.time_df_,
        "drift": [float(v) for v in model.drift_],
        "lnirt": _scores(test, pred),
        "baseline": _scores(test, Baseline().fit(train).predict(test)),
        "reference": _scores(test, reference_predictions(train, test)),
    }


def _print_seed(res: dict) -> None:
    nu = "normal" if res["time_df"] is None else f"{res['time_df']:.1f}"
    print(
        f"\nseed {res['seed']}: {res['n_test_persons']} test persons ({res['n_test_rows']} rows), "
        f"fit {res['fit_seconds']:.2f} s ({res['em_iterations']} EM iterations), "
        f"predict {res['predict_seconds']:.2f} s, rho {res['rho']:+.3f}, "
        f"sd(tau) {res['sd_tau']:.3f}, nu {nu}, drift {res['drift']}"
    )
    print(f"  {'model':<10} {'AUC':>7} {'RMSE log t':>11} {'cover 80%':>10}")
    for name in ("lnirt", "baseline", "reference"):
        m = res[name]
        print(f"  {name:<10} {m['auc']:7.4f} {m['rmse_log_time']:11.4f} {m['coverage80']:10.4f}")


def _print_summary(results: list[dict]) -> None:
    print(f"\nover {len(results)} seed(s): mean +- sd")
    for name in ("lnirt", "baseline"):
        cells = []
        for metric in METRICS:
            values = [r[name][metric] for r in results]
            sd = statistics.stdev(values) if len(values) > 1 else 0.0
            cells.append(f"{metric} {statistics.mean(values):.4f} +- {sd:.4f}")
        print(f"  {name:<10} " + ", ".join(cells))
    fits = [r["fit_seconds"] for r in results]
    print(f"  LNIRT fit seconds: median {statistics.median(fits):.2f}")
    for metric in METRICS:
        ok = [r["seed"] for r in results if meets(r["lnirt"])[metric]]
        verdict = "met" if len(ok) == len(results) else "NOT met"
        print(f"  target {metric}: {verdict} (holds on seeds {ok})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="split seeds, e.g. 0 1"
    )
    parser.add_argument("--test-fraction", type=float, default=0.2)
    parser.add_argument("--time-model", choices=["t", "normal"], default="t")
    parser.add_argument("--json", action="store_true", help="print one JSON object per seed")
    args = parser.parse_args()
    df = load_dataset("credential_form1")
    print(f"credential_form1: {len(df)} scored responses, {df['user_id'].nunique()} persons")
    print("targets: AUC >= 0.745, RMSE(log t) <= 0.505, 80% coverage in [0.78, 0.82] per seed")
    results = []
    for seed in args.seeds:
        res = run(seed, args.test_fraction, df, args.time_model)
        results.append(res)
        if args.json:
            print(json.dumps(res))
        else:
            _print_seed(res)
    _print_summary(results)


if __name__ == "__main__":
    main()
