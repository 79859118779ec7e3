"""NeuralPredictor's log-time head on data with response times, against Baseline and LNIRT.

Protocol: ``cognitive_tutor`` (KDD Cup 2010 Cognitive Tutor steps, Stamper et al. 2010) and
``mars_ib`` (Zorowitz et al. 2023), students split 80/20 by a seed, every model fitted on the
80 % and the held-out students predicted one step ahead. Reported: RMSE of log time (of the
predicted median), the coverage of the predicted 80 % interval and AUC. Targets: RMSE below
Baseline's, coverage within [0.77, 0.83].

    .venv/bin/python benchmarks/neural_time_eval.py [--datasets NAME ...] [--seeds 0 1] [--json]
"""

from __future__ import annotations

import argparse
import json

from smartstudy.data.loaders import load_dataset
from smartstudy.eval.protocol import evaluate_model, split_by_student
from smartstudy.models import LNIRT, Baseline, NeuralPredictor

COVERAGE_RANGE = (0.77, 0.83)


def run(dataset: str, seed: int) -> dict:
    df = load_dataset(dataset)
    train, test = split_by_student(df, test_fraction=0.2, seed=seed)
    out: dict = {"dataset": dataset, "seed": seed, "n_train": len(train), "n_test": len(test)}
    for name, model in (
        ("baseline", Baseline()),
        ("lnirt", LNIRT()),
        ("neural", NeuralPredictor()),
    ):
        r = evaluate_model(model, train, test, name=name)
        out[name] = {
            "auc": r.auc,
            "rmse_log_time": r.rmse_log_time,
            "coverage80": r.coverage80,
            "fit_seconds": r.fit_seconds,
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["cognitive_tutor", "mars_ib"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="split seeds")
    parser.add_argument("--json", action="store_true", help="print one JSON object per run")
    args = parser.parse_args()
    lo, hi = COVERAGE_RANGE
    for dataset in args.datasets:
        for seed in args.seeds:
            res = run(dataset, seed)
            if args.json:
                print(json.dumps(res))
                continue
            print(
                f"\n{dataset}, split seed {seed}: train {res['n_train']} rows, "
                f"test {res['n_test']} rows"
            )
            print(f"  {'model':<9} {'RMSE log t':>10} {'cover 80%':>10} {'AUC':>7} {'fit s':>7}")
            for name in ("baseline", "lnirt", "neural"):
                m = res[name]
                print(
                    f"  {name:<9} {m['rmse_log_time']:10.4f} {m['coverage80']:10.4f} "
                    f"{m['auc']:7.4f} {m['fit_seconds']:7.2f}"
                )
            n, b = res["neural"], res["baseline"]
            print(
                f"  neural - baseline RMSE log t: {n['rmse_log_time'] - b['rmse_log_time']:+.4f} "
                f"({'below' if n['rmse_log_time'] < b['rmse_log_time'] else 'NOT below'} "
                f"Baseline); coverage {n['coverage80']:.3f} "
                f"({'within' if lo <= n['coverage80'] <= hi else 'OUTSIDE'} [{lo}, {hi}])"
            )


if __name__ == "__main__":
    main()
