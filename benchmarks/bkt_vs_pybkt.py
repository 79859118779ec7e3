"""SmartStudy's BKT against pyBKT's C++ build on assistments09_dkt: fit time, fit, test AUC.

Both libraries fit standard BKT (one parameter set per skill, no forgetting, their default
convergence settings) with the same number of random restarts on the ``train`` sequences of
the Deep Knowledge Tracing split of ASSISTments 2009-2010 (each ``sequence`` is a learner),
then predict the ``test`` sequences one step ahead. Printed: fit times (each library's whole
``fit`` call, data preparation included, file reading excluded) and their ratio, the
training log-likelihood of each library's fitted parameters computed by the same exact
forward pass (and pyBKT's own reported value), and the test AUCs (same metric code).

pyBKT (Badrinath, Wang & Pardos 2021, EDM 2021) is not a dependency of SmartStudy: its C++
extension builds only against ``numpy<2``, so the script keeps it in its own virtual
environment outside the repository (created on first use, by default under
``~/.cache/smartstudy-bench/pybkt-venv``) and runs it in a subprocess, exchanging data as
CSV files. It checks that pyBKT's E-step really is the compiled extension, otherwise the
comparison would be meaningless and the script stops. pyBKT's E-step runs on all cores
(OpenMP, its default ``parallel=True``); SmartStudy's EM is single-threaded NumPy.

    .venv/bin/python benchmarks/bkt_vs_pybkt.py [--restarts 1] [--repeats 1] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd

from smartstudy.data.loaders import load_dataset
from smartstudy.eval.metrics import auc
from smartstudy.models.bkt import BKT, BKTParams
from smartstudy.models.bkt.em import forward_filter, time_major_batch

DEFAULT_VENV = Path.home() / ".cache" / "smartstudy-bench" / "pybkt-venv"
PYBKT_REQUIREMENTS = ("numpy<2", "pandas<2.3", "scikit-learn<1.6", "wheel", "setuptools")
PYBKT = "pyBKT==1.4.3"

# Runs inside the pyBKT environment: fit (timed), predict, report. Arguments: train CSV,
# test CSV, output folder, restarts, seed, repeats.
PYBKT_SCRIPT = textwrap.dedent(
    """
    import importlib.machinery, json, sys, time
    from importlib.metadata import version
    import pandas as pd
    import pyBKT.fit.EM_fit as em_fit
    import pyBKT.fit.predict_onestep as predict_onestep
    from pyBKT.models import Model

    train_csv, test_csv, out, restarts, seed, repeats = sys.argv[1:7]
    compiled = {}
    for name, mod in (("E_step", em_fit.E_step),
                      ("predict_onestep_states", predict_onestep.predict_onestep_states)):
        loader = getattr(mod, "__loader__", None)
        compiled[name] = {
            "file": getattr(mod, "__file__", None),
            "extension": isinstance(loader, importlib.machinery.ExtensionFileLoader),
        }
    # pyBKT's own training log-likelihood: the best restart's last EM value per skill.
    model_module = sys.modules["pyBKT.models.Model"]
    original = em_fit.EM_fit
    calls = []
    def recording_em_fit(*args, **kwargs):
        fitted, lls = original(*args, **kwargs)
        calls.append(float(lls[-1][0]))
        return fitted, lls
    model_module.EM_fit.EM_fit = recording_em_fit

    train = pd.read_csv(train_csv)
    test = pd.read_csv(test_csv)
    times = []
    for _ in range(int(repeats)):
        calls.clear()
        model = Model(seed=int(seed), num_fits=int(restarts))
        start = time.perf_counter()
        model.fit(data=train)
        times.append(time.perf_counter() - start)
    r = int(restarts)
    reported = sum(max(calls[k:k + r]) for k in range(0, len(calls), r))
    pred = model.predict(data=test)
    pred[["order_id", "correct_predictions"]].to_csv(out + "/pred.csv", index=False)
    params = model.params().reset_index()
    params.to_csv(out + "/params.csv", index=False)
    print(json.dumps({"fit_seconds": times, "reported_loglik": reported,
                      "compiled": compiled, "version": version("pyBKT")}))
    """
)


def run(cmd: list[str], what: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = (result.stdout + result.stderr)[-3000:]
        sys.exit(f"{what} failed ({' '.join(cmd[:3])} ...):\n{tail}")
    return result


def find_python(requested: str | None) -> str:
    candidates = [requested] if requested else ["python3.11", "python3.10", "python3.12"]
    for name in candidates:
        path = shutil.which(name) if name else None
        if path:
            return path
    sys.exit(f"no Python interpreter among {candidates}: pass --python")


def ensure_pybkt(venv: Path, python: str | None) -> Path:
    """The python of a virtual environment with pyBKT's C++ build, created if needed."""
    exe = venv / "bin" / "python"
    if exe.exists():
        check = subprocess.run([str(exe), "-c", "import pyBKT.fit.E_step"], capture_output=True)
        if check.returncode == 0:
            return exe
        shutil.rmtree(venv)
    interpreter = find_python(python)
    print(f"creating the pyBKT environment {venv} with {interpreter} (about a minute) ...")
    venv.parent.mkdir(parents=True, exist_ok=True)
    run([interpreter, "-m", "venv", str(venv)], "creating the virtual environment")
    pip = [str(exe), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    run([*pip, *PYBKT_REQUIREMENTS], "installing pyBKT's build requirements")
    # --no-binary builds the C++ extension from source against this numpy<2.
    run([*pip, "--no-build-isolation", "--no-binary", "pyBKT", PYBKT], "building pyBKT")
    return exe


def pybkt_frames(df: pd.DataFrame) -> pd.DataFrame:
    """pyBKT's column names; ``order_id`` is the global position in (learner, order) order."""
    ordered = df.sort_values(["user_id", "order"], kind="stable")
    return pd.DataFrame(
        {
            "order_id": np.arange(len(ordered)),
            "user_id": ordered["user_id"].to_numpy(),
            "skill_name": ordered["skill_id"].to_numpy(),
            "correct": ordered["correct"].to_numpy(),
        },
        index=ordered.index,
    )


def log_likelihood(df: pd.DataFrame, params: dict[str, BKTParams]) -> float:
    """log P(training answers | per-skill parameters), by the exact (odds-based) forward pass,
    the same computation for both libraries' parameters."""
    ordered = df.sort_values(["user_id", "skill_id", "order"], kind="stable")
    key = ordered["user_id"].astype(str) + "\x00" + ordered["skill_id"].astype(str)
    codes = pd.factorize(key)[0]
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    lengths = np.diff(np.r_[starts, len(codes)])
    layout = time_major_batch(lengths)
    skills = ordered["skill_id"].to_numpy()
    table = np.array([[params[s].l0, params[s].t, params[s].s, params[s].g] for s in skills])
    y = ordered["correct"].to_numpy(dtype=float)
    slot = np.empty((len(y), 4))
    slot[layout.position] = table
    y_slot = np.empty(len(y))
    y_slot[layout.position] = y
    _, t, s, g = slot.T
    e1 = np.where(y_slot == 1, 1 - s, s)
    e0 = np.where(y_slot == 1, g, 1 - g)
    first = table[starts][layout.seq_order, 0]
    fwd = forward_filter(layout, first, e1, e0, t, np.zeros(len(y)))
    return float(np.log(fwd.pred * e1 + fwd.pred_not * e0).sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--restarts", type=int, default=1, help="random restarts (both)")
    parser.add_argument("--repeats", type=int, default=1, help="timed fits of each library")
    parser.add_argument("--seed", type=int, default=0, help="seed of the restarts (both)")
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV, help="pyBKT's environment")
    parser.add_argument("--python", default=None, help="interpreter for a new pyBKT venv")
    args = parser.parse_args()

    df = load_dataset("assistments09_dkt")
    train = df[df["split"] == "train"]
    test = df[df["split"] == "test"]
    print(
        f"assistments09_dkt: {len(train)} train / {len(test)} test attempts, "
        f"{train['user_id'].nunique()} / {test['user_id'].nunique()} learners, "
        f"{train['skill_id'].nunique()} skills; restarts {args.restarts}; "
        f"{os.cpu_count()} CPU cores visible"
    )

    # SmartStudy first: the whole fit() call, validation and sequence building included.
    ours_times = []
    model = BKT(n_restarts=args.restarts, seed=args.seed)
    for _ in range(args.repeats):
        model = BKT(n_restarts=args.restarts, seed=args.seed)
        start = time.perf_counter()
        model.fit(train)
        ours_times.append(time.perf_counter() - start)
    ours_pred = model.predict(test)["p_correct"].to_numpy()
    ours_auc = auc(test["correct"].to_numpy(), ours_pred)
    ours_ll = log_likelihood(train, {s: model.params_[s] for s in train["skill_id"].unique()})

    exe = ensure_pybkt(args.venv, args.python)
    with tempfile.TemporaryDirectory(prefix="bkt-bench-") as tmp:
        train_pb, test_pb = pybkt_frames(train), pybkt_frames(test)
        train_pb.to_csv(f"{tmp}/train.csv", index=False)
        test_pb.to_csv(f"{tmp}/test.csv", index=False)
        script = Path(tmp) / "run_pybkt.py"
        script.write_text(PYBKT_SCRIPT)
        out = run(
            [
                str(exe),
                str(script),
                f"{tmp}/train.csv",
                f"{tmp}/test.csv",
                tmp,
                str(args.restarts),
                str(args.seed),
                str(args.repeats),
            ],
            "pyBKT",
        )
        report = json.loads(out.stdout.strip().splitlines()[-1])
        pred = pd.read_csv(f"{tmp}/pred.csv")
        params_long = pd.read_csv(f"{tmp}/params.csv", dtype={"skill": str})

    for name, info in report["compiled"].items():
        if not info["extension"]:
            sys.exit(f"pyBKT's {name} is not the compiled C++ extension ({info['file']}): stop")
    compiled_files = ", ".join(Path(i["file"]).name for i in report["compiled"].values())

    by_order = pred.set_index("order_id")["correct_predictions"]
    pybkt_pred = by_order.reindex(test_pb["order_id"].to_numpy()).to_numpy()
    pybkt_auc = auc(test_pb["correct"].to_numpy(), pybkt_pred)
    wide = params_long.pivot(index="skill", columns="param", values="value")
    pybkt_params = {
        str(s): BKTParams(
            float(np.clip(r["prior"], 1e-12, 1 - 1e-12)),
            float(np.clip(r["learns"], 1e-12, 1 - 1e-12)),
            float(np.clip(r["slips"], 1e-12, 1 - 1e-12)),
            float(np.clip(r["guesses"], 1e-12, 1 - 1e-12)),
        )
        for s, r in wide.iterrows()
    }
    pybkt_ll = log_likelihood(train, pybkt_params)

    ours_t = statistics.median(ours_times)
    pybkt_t = statistics.median(report["fit_seconds"])
    print(f"pyBKT C++ extension in use: {compiled_files}")
    print(f"{'':24}{'fit s (median)':>15}{'train log-lik':>16}{'own report':>13}{'test AUC':>10}")
    print(
        f"{'SmartStudy BKT':24}{ours_t:>15.2f}{ours_ll:>16.1f}"
        f"{model.log_likelihood_:>13.1f}{ours_auc:>10.4f}"
    )
    print(
        f"{'pyBKT ' + report['version'] + ' (C++)':24}{pybkt_t:>15.2f}{pybkt_ll:>16.1f}"
        f"{report['reported_loglik']:>13.1f}{pybkt_auc:>10.4f}"
    )
    print(
        f"fit times over {args.repeats} run(s): SmartStudy "
        f"{', '.join(f'{t:.2f}' for t in ours_times)} s; pyBKT "
        f"{', '.join(f'{t:.2f}' for t in report['fit_seconds'])} s"
    )
    print(
        f"SmartStudy is {pybkt_t / ours_t:.1f}x faster to fit; "
        f"AUC difference {ours_auc - pybkt_auc:+.4f}; "
        f"log-likelihood difference {ours_ll - pybkt_ll:+.1f}"
    )


if __name__ == "__main__":
    main()
