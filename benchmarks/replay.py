"""Replay evaluation on every shared data set with times, as one Markdown table.

Runs ``services.replay.run_replay`` (what ``smartstudy evaluate --replay DATASET`` runs) on
cognitive_tutor, mars_ib and credential_form1: each data set is streamed through the service
path (tasks created with their prediction stored, then completed; trainings triggered by the
completion counter and run inline through the server's job function), once for the served
chain and once per family alone, each on a fresh scratch database, and scored against a
prequential reference, the running mean of the (topic, difficulty) cell. Prints the table
for the README and the acceptance checks of issue 10 for the served chain:

- log loss at least 0.01 below the reference, and within 0.002 of the best family alone
  (a family alone is scored on the tasks it answered, so this compares on all tasks only
  where it answered all of them, as "baseline" always does);
- ECE at most 0.03, 80% coverage within [0.77, 0.83], swing p95 at most 0.12. Beside the ECE
  it prints the ECE that a calibrated model would show on the same predictions (sampling
  noise alone, ``eval.metrics.calibrated_ece``): on 1,500 tasks that is about 0.025.

    .venv/bin/python benchmarks/replay.py [--learners 100] [--max-attempts 30]
        [--retrain-every 100] [--seed 0] [--history 0] [--datasets mars_ib ...] [--json]

With ``--history N``, each configuration starts from a system already in use: N other
learners of the data set (capped like the streamed ones) have completed their tasks and the
models are trained on them before the first streamed task.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from smartstudy.services import replay

COLUMNS = ("log_loss", "auc", "ece", "rmse_log_time", "coverage80")


def checks(result: dict[str, Any]) -> dict[str, bool]:
    """Issue 10's acceptance checks for the served chain of one replay."""
    configs = result["configurations"]
    served = configs[replay.SERVED]["all"]
    complete = [
        c["all"]["log_loss"]
        for name, c in configs.items()
        if name.endswith(" alone") and c["share"] == 1.0 and c["all"]["log_loss"] is not None
    ]
    best = min(complete) if complete else float("inf")
    return {
        "log loss <= reference - 0.01": served["log_loss"]
        <= configs[replay.REFERENCE]["all"]["log_loss"] - 0.01,
        "log loss <= best family alone + 0.002": served["log_loss"] <= best + 0.002,
        "ECE <= 0.03": served["ece"] <= 0.03,
        "0.77 <= coverage <= 0.83": 0.77 <= served["coverage80"] <= 0.83,
        "swing p95 <= 0.12": configs[replay.SERVED]["swing_p95"] <= 0.12,
    }


def markdown(results: list[dict[str, Any]]) -> str:
    head = "| data set | configuration | tasks | log loss | AUC | ECE | RMSE log t | cov. 80% | "
    head += "swing p95 | swing max |\n|---|---|---|---|---|---|---|---|---|---|"
    lines = [head]
    for result in results:
        for name, c in result["configurations"].items():
            m = c["all"]
            cells = [_fmt(m[k]) for k in COLUMNS] + [_fmt(c["swing_p95"]), _fmt(c["swing_max"])]
            tasks = f"{m['n']}" if c["share"] == 1.0 else f"{m['n']} ({c['share']:.0%})"
            lines.append(f"| {result['dataset']} | {name} | {tasks} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--learners", type=int, default=100)
    parser.add_argument("--max-attempts", type=int, default=replay.DEFAULT_MAX_ATTEMPTS)
    parser.add_argument("--retrain-every", type=int, default=replay.DEFAULT_RETRAIN_EVERY)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--history",
        type=int,
        default=0,
        help="other learners whose tasks are completed and trained on before the stream",
    )
    parser.add_argument("--datasets", nargs="+", default=list(replay.REPLAY_DATASETS))
    parser.add_argument("--json", action="store_true", help="print JSON instead of Markdown")
    args = parser.parse_args()
    results = []
    for name in args.datasets:
        started = time.perf_counter()
        report = replay.run_replay(
            replay.replay_data(name),
            name,
            learners=args.learners,
            seed=args.seed,
            max_attempts=args.max_attempts,
            retrain_every=args.retrain_every,
            history=args.history,
        )
        result = report.to_dict()
        result["wall_seconds"] = round(time.perf_counter() - started, 1)
        result["checks"] = checks(result)
        results.append(result)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(markdown(results))
    for result in results:
        print(
            f"\n{result['dataset']}: {result['learners']} learners, {result['attempts']} tasks "
            f"(at most {result['max_attempts_per_learner']} each), after "
            f"{result['history_attempts']} tasks of {result['history_learners']} earlier "
            f"learners, retraining every "
            f"{result['retrain_every']} completions, {result['wall_seconds']} s"
        )
        served = result["configurations"][replay.SERVED]["all"]
        for check, ok in result["checks"].items():
            extra = ""
            if check.startswith("ECE"):
                extra = (
                    f" (ECE {served['ece']:.3f}; a calibrated model's on these tasks: "
                    f"{served['ece_calibrated']:.3f}, p95 {served['ece_calibrated_p95']:.3f})"
                )
            print(f"  {'pass' if ok else 'FAIL'}  {check}{extra}")


if __name__ == "__main__":
    main()
