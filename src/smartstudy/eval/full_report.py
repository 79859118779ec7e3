"""The full evaluation: every model on every shared data set over split seeds, as a report.

``run_full_evaluation`` evaluates each model class on each data set with the protocols of
:mod:`smartstudy.eval.protocol`:

- split by student (``test_fraction`` of the users held out whole) once per split seed; a
  model whose hyperparameters include ``seed`` gets the same seed;
- where the data set publishes its own train/test split (assistments09: Gervet, Koedinger,
  Schneider & Mitchell 2020, JEDM 12(3); assistments09_dkt: Piech et al. 2015, NeurIPS), that
  split too, since the published results use it. It does not depend on a seed, so only a
  seeded model is run once per seed, and only while its seed matters: when a second seed
  predicts exactly what the first did, the model is deterministic there and runs once (the
  table says so); a model without a seed runs once.

Every run is scored by :func:`smartstudy.eval.protocol.evaluate_model` (each test row
predicted one step ahead from the fitted model and the user's earlier rows, never from its
own outcome), so the figures are those of ``smartstudy evaluate --dataset``. Only the public
model contract is used (the constructor's hyperparameters, ``fit``, ``predict``,
``predicts_time``). A model that raises ``ValueError`` (data it cannot fit) or ``RuntimeError``
(a degenerate fit) is reported with its message, not left out silently.

Beyond the per-run metrics the evaluation pools, over all runs of a (data set, model,
protocol), the reliability data: per bin of predicted probability (the ten equal-width bins
of the ECE, Naeini, Cooper & Hauskrecht 2015, AAAI) the sum of predictions, the sum of
outcomes and the count, for reliability diagrams (DeGroot & Fienberg 1983, "The comparison
and evaluation of forecasters", The Statistician 32). For time it records per run where the
actual times fall against the predicted quantiles (below p10, below the median, inside
[p10, p90], above p90): a calibrated lognormal prediction gives 0.1, 0.5, 0.8 and 0.1
(the probability integral transform view of Gneiting, Balabdaoui & Raftery 2007, JRSS B 69).

``write_report`` writes ``EVALUATION.md`` with its PNG plots (matplotlib, drawn on
``Figure`` objects with the Agg renderer, no display) and ``evaluation/results.json``.
The replay evaluation (``services.replay``) is passed in as ``ReplayReport.to_dict()``
output: this layer does not import services. ``readme_table`` and ``replace_marked_block``
let the README's quality table come from the same run.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from smartstudy.data.loaders import load_dataset
from smartstudy.eval.protocol import evaluate_model, split_by_student, split_own
from smartstudy.eval.report import NOT_APPLICABLE, ModelResult
from smartstudy.models.base import LearnerModel

N_BINS = 10
DEFAULT_SEEDS = 5
STUDENT = "student"
OWN = "own"
PROTOCOL_LABELS: dict[str, str] = {STUDENT: "split by student", OWN: "own split"}
#: The names of the published splits, for the data sets that have one.
OWN_SPLIT_NAMES: dict[str, str] = {
    "assistments09": "Gervet et al. split",
    "assistments09_dkt": "Piech et al. split",
}
MODEL_LABELS: dict[str, str] = {
    "baseline": "Baseline",
    "lnirt": "LNIRT",
    "bkt": "BKT",
    "neural": "Neural",
}
#: (ModelResult attribute, column heading, decimals) of the per data set tables.
METRICS: tuple[tuple[str, str, int], ...] = (
    ("auc", "AUC", 3),
    ("log_loss", "log loss", 3),
    ("ece", "ECE", 3),
    ("accuracy", "accuracy", 3),
    ("rmse_log_time", "RMSE log time", 3),
    ("coverage80", "80% coverage", 3),
    ("fit_seconds", "fit s", 2),
    ("predict_seconds", "predict s", 2),
)
#: Where actual times fall against the predicted quantiles, and where they should.
TIME_CHECKS: tuple[tuple[str, str, float], ...] = (
    ("below_p10", "below p10", 0.1),
    ("below_median", "below median", 0.5),
    ("inside_80", "in [p10, p90]", 0.8),
    ("above_p90", "above p90", 0.1),
)
PLOTS_DIR = "evaluation"
REPORT_FILE = "EVALUATION.md"
README_BLOCK = "evaluation-table"

Progress = Callable[[str], None]


# -- results -----------------------------------------------------------------------------------
@dataclass
class Run:
    """One fit and scoring: the split seed (None for the own split) and the model's seed."""

    split_seed: int | None
    model_seed: int | None
    result: ModelResult
    time_fractions: dict[str, float] | None = None


@dataclass
class Cell:
    """Every run of one model on one data set under one protocol, with pooled reliability."""

    dataset: str
    model: str
    protocol: str
    runs: list[Run] = field(default_factory=list)
    #: Rows: sum of predictions, sum of outcomes, count; one column per bin.
    reliability: np.ndarray = field(default_factory=lambda: np.zeros((3, N_BINS)))
    error: str | None = None
    #: True when a second model seed on the own split predicted exactly as the first: the
    #: model was run once (its sd is then undefined, not zero).
    deterministic: bool = False

    def values(self, metric: str) -> np.ndarray:
        """The finite values of ``metric`` over the runs."""
        raw = [getattr(run.result, metric) for run in self.runs]
        arr = np.array([np.nan if v is None else float(v) for v in raw], dtype=float)
        return arr[np.isfinite(arr)]

    def summary(self, metric: str) -> tuple[float, float, int] | None:
        """Mean, sample standard deviation (NaN for one run) and number of runs, or None."""
        arr = self.values(metric)
        if len(arr) == 0:
            return None
        sd = float(np.std(arr, ddof=1)) if len(arr) > 1 else float("nan")
        return float(np.mean(arr)), sd, len(arr)

    def time_summary(self, key: str) -> tuple[float, float] | None:
        """Mean and standard deviation over runs of one of :data:`TIME_CHECKS`."""
        arr = np.array([r.time_fractions[key] for r in self.runs if r.time_fractions])
        if len(arr) == 0:
            return None
        return float(arr.mean()), float(np.std(arr, ddof=1)) if len(arr) > 1 else 0.0

    def add(self, run: Run, test: pd.DataFrame, pred: pd.DataFrame | None) -> None:
        """Keep ``run`` and pool its predictions (None: not recorded) into the diagrams."""
        if pred is not None:
            y = pd.to_numeric(test["correct"], errors="coerce").to_numpy(float, na_value=np.nan)
            p = pred["p_correct"].to_numpy(float, na_value=np.nan)
            known = ~np.isnan(y)
            self.reliability += reliability_counts(y[known], p[known])
            if run.result.has_time_metrics:
                run.time_fractions = time_fractions(
                    test["rt_seconds"].to_numpy(float, na_value=np.nan),
                    *(pred[c].to_numpy(float, na_value=np.nan) for c in _TIME_COLUMNS),
                )
        self.runs.append(run)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON: every run's result, the pooled bins and the error if any."""
        return {
            "dataset": self.dataset,
            "model": self.model,
            "protocol": self.protocol,
            "error": self.error,
            "deterministic": self.deterministic,
            "runs": [
                {
                    "split_seed": r.split_seed,
                    "model_seed": r.model_seed,
                    **r.result.to_dict(),
                    "time_fractions": r.time_fractions,
                }
                for r in self.runs
            ],
            "reliability": {
                "sum_p": self.reliability[0].tolist(),
                "sum_y": self.reliability[1].tolist(),
                "count": self.reliability[2].astype(int).tolist(),
            },
        }


@dataclass
class DatasetSummary:
    """Size and content of one data set as evaluated (after any subsample)."""

    name: str
    rows: int
    users: int
    has_times: bool
    has_skills: bool
    own_split: bool
    users_before_subsample: int | None = None


@dataclass
class FullEvaluation:
    """Everything ``run_full_evaluation`` measured."""

    seeds: list[int]
    test_fraction: float
    max_users: int | None
    models: list[str]
    datasets: list[DatasetSummary] = field(default_factory=list)
    cells: list[Cell] = field(default_factory=list)

    def cells_of(self, dataset: str, protocol: str | None = None) -> list[Cell]:
        """The cells of ``dataset`` (and ``protocol`` if given), in model order."""
        return [
            c
            for c in self.cells
            if c.dataset == dataset and (protocol is None or c.protocol == protocol)
        ]

    def cell(self, dataset: str, model: str, protocol: str) -> Cell:
        """The cell of (``dataset``, ``model``, ``protocol``)."""
        for c in self.cells_of(dataset, protocol):
            if c.model == model:
                return c
        raise KeyError(f"no results for {model!r} on {dataset!r} ({protocol})")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON of the settings, the data sets and every cell."""
        return _plain(
            {
                "seeds": self.seeds,
                "test_fraction": self.test_fraction,
                "max_users": self.max_users,
                "models": self.models,
                "datasets": [vars(d) for d in self.datasets],
                "cells": [c.to_dict() for c in self.cells],
            }
        )


def _plain(value: Any) -> Any:
    """Recursively: NumPy scalars as Python values, NaN and infinities as None."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    plain = value.item() if isinstance(value, np.generic) else value
    return None if isinstance(plain, float) and not math.isfinite(plain) else plain


# -- measuring ---------------------------------------------------------------------------------
_TIME_COLUMNS = ("time_median_s", "time_p10_s", "time_p90_s")


def reliability_counts(y: np.ndarray, p: np.ndarray, n_bins: int = N_BINS) -> np.ndarray:
    """Per bin of ``p`` (equal width on [0, 1], ``p == 1`` in the last): sum of ``p``, sum of
    ``y`` and count, as rows of a ``(3, n_bins)`` array (the bins of the ECE)."""
    p_arr, y_arr = np.asarray(p, float), np.asarray(y, float)
    bins = np.minimum((p_arr * n_bins).astype(np.int64), n_bins - 1)
    return np.vstack(
        [
            np.bincount(bins, weights=p_arr, minlength=n_bins),
            np.bincount(bins, weights=y_arr, minlength=n_bins),
            np.bincount(bins, minlength=n_bins).astype(float),
        ]
    )


def time_fractions(
    actual_s: np.ndarray, median_s: np.ndarray, p10_s: np.ndarray, p90_s: np.ndarray
) -> dict[str, float] | None:
    """Shares of known actual times below p10, below the median, inside [p10, p90] (ends
    included, as ``interval_coverage``) and above p90; None if no time is known."""
    known = ~np.isnan(actual_s)
    if not known.any():
        return None
    a, med, lo, hi = (np.asarray(x, float)[known] for x in (actual_s, median_s, p10_s, p90_s))
    return {
        "below_p10": float(np.mean(a < lo)),
        "below_median": float(np.mean(a < med)),
        "inside_80": float(np.mean((a >= lo) & (a <= hi))),
        "above_p90": float(np.mean(a > hi)),
        "n": int(known.sum()),
    }


def subsample_users(df: pd.DataFrame, max_users: int, seed: int = 0) -> pd.DataFrame:
    """``max_users`` users drawn with ``seed`` (all rows of each), or ``df`` if it has fewer.

    The draw depends only on the set of user ids and ``seed``; row order and ``attrs`` are kept.
    """
    if max_users < 2:
        raise ValueError(f"max_users must be at least 2, got {max_users}")
    user = df["user_id"].astype(str)
    users = np.sort(user.unique().astype(object))
    if len(users) <= max_users:
        return df
    keep = users[np.random.default_rng(seed).permutation(len(users))[:max_users]]
    out = df.loc[user.isin(keep).to_numpy()].copy()
    out.attrs = dict(df.attrs)
    return out


def protocols_for(df: pd.DataFrame) -> tuple[str, ...]:
    """The protocols a data set is evaluated under: its own split first where it has one."""
    return (OWN, STUDENT) if "split" in df.columns else (STUDENT,)


def _runs_for(protocol: str, seeds: Sequence[int], seeded: bool) -> list[tuple[Any, Any]]:
    """(split seed, model seed) of each run."""
    if protocol == STUDENT:
        return [(s, s if seeded else None) for s in seeds]
    return [(None, s) for s in seeds] if seeded else [(None, None)]


def _fit_and_score(
    model: LearnerModel, train: pd.DataFrame, test: pd.DataFrame, name: str
) -> tuple[ModelResult, pd.DataFrame | None]:
    """``evaluate_model``'s result plus the predictions it scored (None if not seen).

    The model's ``predict`` is wrapped on the instance for the call, so the figures are
    ``evaluate_model``'s own and prediction runs once.
    """
    recorded: list[pd.DataFrame] = []
    predict = model.predict

    def recording(df: pd.DataFrame) -> pd.DataFrame:
        out = predict(df)
        recorded.append(out)
        return out

    model.predict = recording  # type: ignore[method-assign]
    try:
        result = evaluate_model(model, train, test, name=name)
    finally:
        del model.predict
    return result, (recorded[-1] if len(recorded) == 1 else None)


def evaluate_cell(
    df: pd.DataFrame,
    model_name: str,
    model_class: type[LearnerModel],
    protocol: str,
    seeds: Sequence[int],
    *,
    test_fraction: float = 0.2,
    dataset: str | None = None,
    progress: Progress | None = None,
) -> Cell:
    """Every run of one model on one data set under ``protocol`` (``OWN`` or ``STUDENT``);
    ``dataset`` names it (default: ``df.attrs["dataset"]``).

    A ``ValueError`` (data the model cannot fit) or ``RuntimeError`` (e.g. LNIRT's
    ``DegenerateFitError``) ends the cell: the exception's type and message are kept in
    ``error``, with the runs before it, so a long report is not lost to one model.
    """
    dataset = dataset or str(df.attrs.get("dataset", "dataframe"))
    cell = Cell(dataset, model_name, protocol)
    seeded = "seed" in model_class().get_params()
    first_pred: pd.DataFrame | None = None
    for split_seed, model_seed in _runs_for(protocol, seeds, seeded):
        if progress is not None:
            seed_note = "" if split_seed is None else f", split seed {split_seed}"
            progress(f"{dataset}: {model_name} ({PROTOCOL_LABELS[protocol]}{seed_note})")
        model = model_class() if model_seed is None else model_class(seed=model_seed)
        try:
            if protocol == OWN:
                train, test = split_own(df)
            else:
                train, test = split_by_student(df, test_fraction=test_fraction, seed=split_seed)
            result, pred = _fit_and_score(model, train, test, model_name)
        except (ValueError, RuntimeError) as exc:
            cell.error = f"{type(exc).__name__}: {exc}"
            if progress is not None:
                progress(f"{dataset}: {model_name} ({PROTOCOL_LABELS[protocol]}) failed: {exc}")
            break
        if protocol == OWN and _same_predictions(pred, first_pred):
            # The same split and the same predictions under another model seed: the fit
            # does not depend on its seed, so more seeds would repeat the same figures.
            cell.deterministic = True
            break
        cell.add(Run(split_seed, model_seed, result), test, pred)
        first_pred = pred if first_pred is None else first_pred
    return cell


def _same_predictions(pred: pd.DataFrame | None, first: pd.DataFrame | None) -> bool:
    """Whether ``pred`` holds exactly the predictions of ``first`` (a run before it)."""
    if pred is None or first is None:
        return False
    columns = [c for c in ("p_correct", *_TIME_COLUMNS) if c in pred.columns]
    return all(
        np.array_equal(pred[c].to_numpy(float), first[c].to_numpy(float), equal_nan=True)
        for c in columns
    )


def load_datasets(names: Iterable[str], root: str | None = None) -> dict[str, pd.DataFrame]:
    """Each named data set as loaded by :func:`smartstudy.data.loaders.load_dataset`."""
    return {name: load_dataset(name, root) for name in names}


def _summary(name: str, df: pd.DataFrame, before: int | None) -> DatasetSummary:
    return DatasetSummary(
        name=name,
        rows=len(df),
        users=int(df["user_id"].nunique()),
        has_times="rt_seconds" in df.columns and bool(df["rt_seconds"].notna().any()),
        has_skills="skill_id" in df.columns and bool(df["skill_id"].notna().any()),
        own_split="split" in df.columns,
        users_before_subsample=before,
    )


def run_full_evaluation(
    datasets: Mapping[str, pd.DataFrame],
    model_classes: Mapping[str, type[LearnerModel]],
    *,
    seeds: Sequence[int] = tuple(range(DEFAULT_SEEDS)),
    test_fraction: float = 0.2,
    max_users: int | None = None,
    progress: Progress | None = None,
) -> FullEvaluation:
    """Evaluate every model class on every data set (name: interactions frame) under each
    of its protocols (:func:`protocols_for`) over ``seeds``.

    ``max_users``: evaluate on that many users per data set, drawn with seed 0
    (:func:`subsample_users`), for quick runs.
    """
    if not seeds:
        raise ValueError("seeds is empty: give at least one split seed")
    if not model_classes:
        raise ValueError("model_classes is empty: give at least one model")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must lie strictly between 0 and 1, got {test_fraction}")
    evaluation = FullEvaluation(list(seeds), test_fraction, max_users, list(model_classes))
    for name, full in datasets.items():
        df = full if max_users is None else subsample_users(full, max_users)
        before = int(full["user_id"].nunique()) if df is not full else None
        evaluation.datasets.append(_summary(name, df, before))
        for protocol in protocols_for(df):
            for model_name, cls in model_classes.items():
                cell = evaluate_cell(
                    df,
                    model_name,
                    cls,
                    protocol,
                    seeds,
                    test_fraction=test_fraction,
                    dataset=name,
                    progress=progress,
                )
                evaluation.cells.append(cell)
    return evaluation


# -- tables ------------------------------------------------------------------------------------
def format_stat(stat: tuple[float, float, int] | None, decimals: int) -> str:
    """``mean ± sd`` (one run: the value alone; nothing: "—")."""
    if stat is None:
        return NOT_APPLICABLE
    mean, sd, n = stat
    if n < 2:
        return f"{mean:.{decimals}f}"
    return f"{mean:.{decimals}f} ± {sd:.{decimals}f}"


def _row(cells: Iterable[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _header(columns: Sequence[str]) -> list[str]:
    return [_row(columns), _row("---" for _ in columns)]


def _label(model: str) -> str:
    return MODEL_LABELS.get(model, model)


def dataset_table(evaluation: FullEvaluation, dataset: str) -> str:
    """One data set's markdown table: a row per (protocol, model), mean ± sd over runs,
    followed by the models that could not be evaluated and why."""
    lines = _header(["protocol", "model", "runs", *(m[1] for m in METRICS)])
    notes = []
    for cell in evaluation.cells_of(dataset):
        protocol = PROTOCOL_LABELS[cell.protocol]
        if cell.error is not None:
            done = f" after {len(cell.runs)} run(s)" if cell.runs else ""
            notes.append(f"- {_label(cell.model)} ({protocol}) stopped{done}: {cell.error}")
        if not cell.runs:
            continue
        stats = [format_stat(cell.summary(key), dec) for key, _, dec in METRICS]
        runs = f"{len(cell.runs)} (same for every seed)" if cell.deterministic else len(cell.runs)
        lines.append(_row([protocol, _label(cell.model), str(runs), *stats]))
    return "\n".join(lines + (["", *notes] if notes else []))


def _readme_cells(evaluation: FullEvaluation, dataset: DatasetSummary) -> list[Cell]:
    protocol = OWN if dataset.own_split else STUDENT
    cells = [c for c in evaluation.cells_of(dataset.name, protocol) if c.runs]
    return sorted(cells, key=lambda c: -(c.summary("auc") or (-1.0, 0, 0))[0])


def _readme_value(cell: Cell, key: str, best: Cell | None) -> str:
    stat = cell.summary(key)
    if stat is None:
        return NOT_APPLICABLE
    text = f"{stat[0]:.3f}"
    return f"**{text}**" if cell is best else text


def readme_table(evaluation: FullEvaluation, command: str | None = None) -> str:
    """The README's quality table: a row per (data set, model) with the mean over runs, on
    the data set's own split where it has one, else split by student; best AUC and best
    RMSE of log time of each data set in bold. A caption line says so, and names
    ``command``, the command line that made it (with ``--report``: the document too)."""
    seeds = evaluation.seeds
    command = command or "smartstudy evaluate --all --report"
    where = f"; spread and plots in docs/{REPORT_FILE}" if " --report" in command else ""
    lines = [
        f"*Mean over {len(seeds)} seed(s) ({', '.join(map(str, seeds))}): the published split "
        "where the data set has one (model seeds varied), else split by student "
        f"({evaluation.test_fraction:.0%} of users held out per seed). Generated by "
        f"`{command}`{where}.*",
        "",
    ]
    if evaluation.max_users is not None:
        lines += [
            f"**Quick run on at most {evaluation.max_users} users per data set: not the "
            "figures of the whole data sets.**",
            "",
        ]
    columns = ["auc", "accuracy", "log_loss", "ece", "rmse_log_time", "coverage80"]
    heads = ["AUC", "accuracy", "log loss", "ECE", "RMSE log time", "80% coverage"]
    lines += _header(["data set", "model", *heads])
    for ds in evaluation.datasets:
        cells = _readme_cells(evaluation, ds)
        best = {"auc": cells[0] if cells else None}
        timed = [c for c in cells if c.summary("rmse_log_time") is not None]
        best["rmse_log_time"] = min(
            timed, key=lambda c: c.values("rmse_log_time").mean(), default=None
        )
        label = ds.name + (
            f" ({OWN_SPLIT_NAMES.get(ds.name, 'own split')})" if ds.own_split else ""
        )
        for cell in cells:
            values = [_readme_value(cell, k, best.get(k)) for k in columns]
            lines.append(_row([label, _label(cell.model), *values]))
    return "\n".join(lines)


def replace_marked_block(text: str, name: str, block: str) -> str:
    """``text`` with what stands between ``<!-- BEGIN name -->`` and ``<!-- END name -->``
    replaced by ``block`` (markers kept); ``ValueError`` if a marker is missing or doubled."""
    begin, end = f"<!-- BEGIN {name} -->", f"<!-- END {name} -->"
    for marker in (begin, end):
        count = text.count(marker)
        if count != 1:
            problem = "no" if count == 0 else f"{count} copies of the"
            raise ValueError(f"{problem} marker `{marker}`: add one pair of BEGIN/END markers")
    start, stop = text.index(begin) + len(begin), text.index(end)
    if stop < start:
        raise ValueError(f"the marker `{end}` comes before `{begin}`")
    return text[:start] + "\n" + block.strip("\n") + "\n" + text[stop:]


# -- published anchors -------------------------------------------------------------------------
@dataclass(frozen=True)
class Anchor:
    """A published (or reproduced) AUC with its protocol and source."""

    dataset: str
    model: str
    auc: float
    protocol: str
    source: str
    #: The protocol of this report it can be set beside, or None if none is comparable.
    comparable: str | None


ANCHORS: tuple[Anchor, ...] = (
    Anchor(
        "assistments09",
        "Best-LR",
        0.77,
        "the Gervet et al. preprocessing and 80/20 split by student (this data set's own "
        "split); one-step-ahead prediction of the test students",
        "Gervet, Koedinger, Schneider & Mitchell (2020), When is deep learning the best "
        "approach to knowledge tracing? JEDM 12(3)",
        OWN,
    ),
    Anchor(
        "assistments09",
        "DKT",
        0.75,
        "as above (same paper, same split)",
        "Gervet et al. (2020), JEDM 12(3)",
        OWN,
    ),
    Anchor(
        "assistments09",
        "AKT",
        0.785,
        "pyKT's own preprocessing of the raw ASSIST2009 file, its own splits and "
        "question-level evaluation: other rows and other test students, not directly "
        "comparable",
        "Liu, Liu, Chen, Huang, Tang & Luo (2022), pyKT: a Python library to benchmark deep "
        "learning based knowledge tracing models, NeurIPS Datasets and Benchmarks",
        None,
    ),
    Anchor(
        "assistments09",
        "QIKT",
        0.788,
        "pyKT's protocol, as for AKT: not directly comparable",
        "Chen, Liu, Huang, Dai, Tang & Luo (2023), Improving interpretability of deep "
        "sequential knowledge tracing models with question-centric cognitive "
        "representations, AAAI",
        None,
    ),
    Anchor(
        "assistments09_dkt",
        "DKT",
        0.86,
        "Piech et al.'s train/test split of this file (this data set's own split); the file "
        "repeats multi-skill rows, which inflates this figure (Xiong, Zhao, Van Inwegen & "
        "Beck 2016, Going deeper with deep knowledge tracing, EDM)",
        "Piech, Bassen, Huang, Ganguli, Sahami, Guibas & Sohl-Dickstein (2015), Deep "
        "knowledge tracing, NeurIPS",
        OWN,
    ),
    Anchor(
        "assistments09_dkt",
        "pyBKT 1.4.3 (one restart)",
        0.751,
        "this data set's own split, run in this repository with pyBKT's C++ build "
        "(`python benchmarks/bkt_vs_pybkt.py --restarts 1`): a reproduced reference, not a "
        "published figure",
        "Badrinath, Wang & Pardos (2021), pyBKT: an accessible Python library of Bayesian "
        "knowledge tracing models, EDM",
        OWN,
    ),
)


def anchors_section(evaluation: FullEvaluation) -> str:
    """The anchors of the evaluated data sets with this run's AUCs under the same protocol
    beside them, and the data sets that have no published anchor."""
    names = [d.name for d in evaluation.datasets]
    lines = _header(["data set", "model", "AUC", "protocol", "source"])
    for name in names:
        anchors = [a for a in ANCHORS if a.dataset == name]
        for a in anchors:
            lines.append(_row([name, a.model, f"{a.auc:.3f}", a.protocol, a.source]))
        for protocol in {a.comparable for a in anchors} - {None}:
            for cell in (c for c in evaluation.cells_of(name, protocol) if c.runs):
                stat = format_stat(cell.summary("auc"), 3)
                what = f"{PROTOCOL_LABELS[protocol]}, {len(cell.runs)} run(s)"
                lines.append(
                    _row([name, f"SmartStudy {_label(cell.model)}", stat, what, "this run"])
                )
    missing = [n for n in names if not any(a.dataset == n for a in ANCHORS)]
    if missing:
        lines += [
            "",
            f"No published anchor under a comparable protocol for {', '.join(missing)} "
            "(one-step-ahead prediction of held-out students); none is invented here.",
        ]
    return "\n".join(lines)


# -- replay ------------------------------------------------------------------------------------
def _fmt(value: Any, decimals: int = 3) -> str:
    if value is None or not isinstance(value, int | float) or not math.isfinite(value):
        return NOT_APPLICABLE
    return f"{value:.{decimals}f}"


def _tasks(n: int, share: float | None) -> str:
    return f"{n} ({share:.0%})" if share is not None and share < 1 else str(n)


def replay_table(report: Mapping[str, Any]) -> str:
    """One replay (``ReplayReport.to_dict()``) as markdown: a row per configuration."""
    heads = ["configuration", "tasks", "log loss", "ref. same", "cold log loss",
             "warm log loss", "AUC", "ECE", "RMSE log t", "cov. 80%", "swing p95",
             "trainings", "seconds"]  # fmt: skip
    lines = _header(heads)
    for name, res in report.get("configurations", {}).items():
        whole = res["all"]
        ref = res.get("reference_log_loss_same_rows") or {}
        lines.append(
            _row(
                [
                    name,
                    _tasks(whole["n"], res.get("share")),
                    _fmt(whole["log_loss"]),
                    _fmt(ref.get("all")),
                    _fmt(res["cold"]["log_loss"]),
                    _fmt(res["warm"]["log_loss"]),
                    _fmt(whole["auc"]),
                    _fmt(whole["ece"]),
                    _fmt(whole["rmse_log_time"]),
                    _fmt(whole["coverage80"]),
                    _fmt(res.get("swing_p95")),
                    str(res.get("trainings", NOT_APPLICABLE)),
                    _fmt(res.get("seconds"), 1),
                ]
            )
        )
    return "\n".join(lines)


def replay_section(replays: Mapping[str, Mapping[str, Any]] | None, note: str | None) -> str:
    """The replay part: its mapping and one table per data set, or why it is absent."""
    if not replays:
        return note or "The replay evaluation was not run."
    first = next(iter(replays.values()))
    lines = [
        "Each data set's attempts are streamed through the service path (task created with "
        "its stored prediction before the outcome, then completed; the served models learn "
        "online and retrain on the completion counter) on scratch databases, and the stored "
        "predictions are scored (`smartstudy evaluate --replay NAME`). A family alone is "
        "scored where it answered; 'ref. same' is the prequential reference (running mean of "
        "the cell) on those tasks; cold = " + str(first.get("cold", "")) + ".",
        "",
        f"Mapping: {first.get('mapping', '')}. Runner: {first.get('runner', '')}.",
    ]
    for name, report in replays.items():
        cap = report.get("max_attempts_per_learner")
        lines += [
            "",
            f"### Replay of {name}",
            "",
            f"{report.get('learners')} learners (seed {report.get('seed')}), "
            f"{report.get('attempts')} tasks"
            + (f" (at most {cap} per learner)" if cap else "")
            + f", retraining every {report.get('retrain_every')} completions.",
            "",
            replay_table(report),
        ]
    if note:
        lines += ["", note]
    return "\n".join(lines)


# -- plots -------------------------------------------------------------------------------------
def _figure(width: float, height: float) -> Any:
    """A matplotlib figure drawn with the Agg renderer: no display, no pyplot state."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=110, layout="constrained")


def _color(index: int) -> str:
    return f"C{index % 10}"


def _draw_reliability(top: Any, bottom: Any, cells: Sequence[Cell]) -> None:
    """Observed against predicted per bin (marker area ~ bin count) and the counts below."""
    from matplotlib.ticker import NullFormatter

    top.plot([0, 1], [0, 1], color="0.6", linestyle="--", linewidth=1, label="calibrated")
    width = 0.8 / N_BINS / max(len(cells), 1)
    centres = (np.arange(N_BINS) + 0.5) / N_BINS
    for i, cell in enumerate(cells):
        sum_p, sum_y, count = cell.reliability
        have = count > 0
        x, y = sum_p[have] / count[have], sum_y[have] / count[have]
        area = 20 + 400 * count[have] / count.sum()
        label = f"{_label(cell.model)} ({len(cell.runs)} run(s))"
        top.plot(x, y, color=_color(i), linewidth=1.2, label=label)
        top.scatter(x, y, s=area, color=_color(i), alpha=0.6, edgecolors="none")
        offset = (i - (len(cells) - 1) / 2) * width
        bottom.bar(centres + offset, count, width=width, color=_color(i))
    top.set(xlim=(0, 1), ylim=(0, 1), ylabel="observed share correct")
    top.legend(loc="upper left", fontsize=8)
    bottom.set(xlim=(0, 1), xlabel="predicted probability (bin mean)", ylabel="predictions")
    bottom.set_yscale("log")
    bottom.yaxis.set_minor_formatter(NullFormatter())


def plot_reliability(evaluation: FullEvaluation, dataset: str, path: Path) -> Path | None:
    """One reliability diagram per protocol of ``dataset`` (all models, pooled over runs,
    bin counts in the lower panel); None if nothing was predicted."""
    protocols = [
        p
        for p in (OWN, STUDENT)
        if any(c.reliability[2].sum() > 0 for c in evaluation.cells_of(dataset, p))
    ]
    if not protocols:
        return None
    fig = _figure(5.4 * len(protocols), 6.6)
    axes = fig.subplots(
        2, len(protocols), squeeze=False, gridspec_kw={"height_ratios": [3, 1]}, sharex="col"
    )
    for col, protocol in enumerate(protocols):
        cells = [c for c in evaluation.cells_of(dataset, protocol) if c.reliability[2].sum() > 0]
        _draw_reliability(axes[0, col], axes[1, col], cells)
        axes[0, col].set_title(f"{dataset}: {PROTOCOL_LABELS[protocol]}", fontsize=10)
    fig.savefig(path, format="png")
    return path


def plot_time_calibration(evaluation: FullEvaluation, dataset: str, path: Path) -> Path | None:
    """Bars per model: the shares of actual times below p10, below the median, inside
    [p10, p90] and above p90 (mean over runs, sd as error bar) against their targets
    (dashed); None if no model predicted times on ``dataset``."""
    cells = [c for c in evaluation.cells_of(dataset) if any(r.time_fractions for r in c.runs)]
    if not cells:
        return None
    fig = _figure(7.5, 4.2)
    ax = fig.subplots()
    width = 0.8 / len(cells)
    for i, cell in enumerate(cells):
        stats = [cell.time_summary(key) or (np.nan, 0.0) for key, _, _ in TIME_CHECKS]
        x = np.arange(len(TIME_CHECKS)) + (i - (len(cells) - 1) / 2) * width
        label = f"{_label(cell.model)} ({PROTOCOL_LABELS[cell.protocol]}, {len(cell.runs)} run(s))"
        ax.bar(x, [s[0] for s in stats], width=width, yerr=[s[1] for s in stats],
               color=_color(i), label=label, capsize=2)  # fmt: skip
    for j, (_, _, target) in enumerate(TIME_CHECKS):
        ax.hlines(target, j - 0.45, j + 0.45, colors="black", linestyles="--", linewidth=1)
    ax.set_xticks(range(len(TIME_CHECKS)), [f"{t[1]}\n(target {t[2]:.1f})" for t in TIME_CHECKS])
    ax.set(ylim=(0, 1), ylabel="share of actual times", title=f"{dataset}: time quantiles")
    ax.legend(fontsize=8, loc="upper left")
    fig.savefig(path, format="png")
    return path


def write_plots(evaluation: FullEvaluation, out_dir: Path) -> dict[str, list[str]]:
    """Every data set's plots under ``out_dir/evaluation``; paths relative to ``out_dir``."""
    folder = Path(out_dir) / PLOTS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    plots: dict[str, list[str]] = {}
    for ds in evaluation.datasets:
        made = [
            plot_reliability(evaluation, ds.name, folder / f"{ds.name}.png"),
            plot_time_calibration(evaluation, ds.name, folder / f"{ds.name}_time.png"),
        ]
        plots[ds.name] = [f"{PLOTS_DIR}/{p.name}" for p in made if p is not None]
    return plots


# -- the document ------------------------------------------------------------------------------
@dataclass
class Provenance:
    """How a report was made: the command line, when, where and from which code."""

    command: str
    generated_at: datetime
    cpu_count: int | None
    version: str
    commit: str | None = None


def _intro(evaluation: FullEvaluation, how: Provenance) -> list[str]:
    commit = f", commit `{how.commit}`" if how.commit else " (no git commit found)"
    lines = [
        "# Evaluation",
        "",
        "Generated by the command below; do not edit by hand, run it again.",
        "",
        f"    {how.command}",
        "",
        f"Run on {how.generated_at:%Y-%m-%d %H:%M} UTC, SmartStudy {how.version}{commit}, on "
        f"a machine with {how.cpu_count or 'an unknown number of'} CPU cores. Times (fit s, "
        "predict s) are wall-clock seconds on that machine and depend on what else ran.",
    ]
    if evaluation.max_users is not None:
        lines += [
            "",
            f"**Subsample:** at most {evaluation.max_users} users per data set (drawn with "
            "seed 0, all their rows kept), a quick run: the figures are not those of the "
            "whole data sets.",
        ]
    return lines


def _protocol(evaluation: FullEvaluation) -> list[str]:
    seeds = ", ".join(map(str, evaluation.seeds))
    return [
        "## Protocol",
        "",
        f"- **Split by student** (every data set): for each split seed ({seeds}), "
        f"{evaluation.test_fraction:.0%} of the users are drawn with that seed and held out "
        "whole; the models are fitted on the other users. A model with a `seed` "
        "hyperparameter gets the same seed.",
        "- **Own split** (data sets that publish one): the published train/test split, the "
        "same in every run; a model with a `seed` runs once per seed, any other model once.",
        "- **One step ahead:** every test row is predicted from the fitted model plus the same "
        "user's earlier rows, never from the row's own outcome (`LearnerModel.predict`, "
        "scored by `smartstudy.eval.protocol.evaluate_model`). Test users are new to the model, "
        "as a new student of the app would be.",
        "- **Metrics:** AUC, log loss, ECE (ten equal-width bins) and accuracy (threshold 0.5) "
        "on the test rows with an outcome; RMSE of log time (of the predicted median) and 80% "
        "coverage (share of actual times within the predicted [p10, p90]) on the rows with a "
        "time, for models that predict time.",
        "- **Spread:** mean ± sample standard deviation over the runs (`runs` column); one "
        "run shows the value alone. A model that raises an error is listed under its table "
        "with the message.",
    ]


def _datasets(evaluation: FullEvaluation) -> list[str]:
    lines = _header(["data set", "rows", "users", "times", "skills", "own split"])
    for d in evaluation.datasets:
        users = f"{d.users:,}" + (
            f" (of {d.users_before_subsample:,})" if d.users_before_subsample else ""
        )
        own = OWN_SPLIT_NAMES.get(d.name, "yes") if d.own_split else "no"
        flags = ["yes" if d.has_times else "no", "yes" if d.has_skills else "no", own]
        lines.append(_row([d.name, f"{d.rows:,}", users, *flags]))
    return ["## Data sets", "", *lines]


def _results(evaluation: FullEvaluation, plots: Mapping[str, Sequence[str]]) -> list[str]:
    lines = [
        "## Results per data set",
        "",
        "Reliability diagrams pool the predictions of all runs: observed share correct "
        "against the mean prediction per bin (marker area and lower panel: predictions in "
        "the bin). Time plots show where actual times fall against the predicted p10, "
        "median and p90 (targets dashed).",
    ]
    for ds in evaluation.datasets:
        lines += ["", f"### {ds.name}", "", dataset_table(evaluation, ds.name)]
        for plot in plots.get(ds.name, ()):
            what = "time quantiles" if plot.endswith("_time.png") else "reliability"
            lines += ["", f"![{ds.name}: {what}]({plot})"]
    return lines


def render_markdown(
    evaluation: FullEvaluation,
    provenance: Provenance,
    plots: Mapping[str, Sequence[str]] | None = None,
    replays: Mapping[str, Mapping[str, Any]] | None = None,
    replay_note: str | None = None,
    person_fit: str | None = None,
) -> str:
    """The whole ``EVALUATION.md``: provenance, protocol, data sets, a table and the plots
    per data set, the replay, the person-fit summary (markdown, when given), the published
    anchors and the README table."""
    lines = [
        *_intro(evaluation, provenance),
        "",
        *_protocol(evaluation),
        "",
        *_datasets(evaluation),
        "",
        *_results(evaluation, plots or {}),
        "",
        "## Replay through the service",
        "",
        replay_section(replays, replay_note),
        "",
        *(["## Person fit", "", person_fit, ""] if person_fit else []),
        "## Published anchors",
        "",
        anchors_section(evaluation),
        "",
        "## README table",
        "",
        "The quality table of the README, from this run (`--readme README.md` writes it "
        f"between the `{README_BLOCK}` markers):",
        "",
        readme_table(evaluation, provenance.command),
    ]
    return "\n".join(lines) + "\n"


def write_report(
    evaluation: FullEvaluation,
    out_dir: str | Path,
    provenance: Provenance,
    *,
    replays: Mapping[str, Mapping[str, Any]] | None = None,
    replay_note: str | None = None,
    person_fit: str | None = None,
) -> Path:
    """Write ``out_dir/EVALUATION.md``, its plots and ``evaluation/results.json`` (every
    run's figures); return the markdown's path."""
    out = Path(out_dir)
    plots = write_plots(evaluation, out)
    results = {"evaluation": evaluation.to_dict(), "replay": _plain(dict(replays or {}))}
    (out / PLOTS_DIR / "results.json").write_text(
        json.dumps(results, indent=1, allow_nan=False) + "\n", encoding="utf-8"
    )
    path = out / REPORT_FILE
    text = render_markdown(evaluation, provenance, plots, replays, replay_note, person_fit)
    path.write_text(text, encoding="utf-8")
    return path


__all__ = [
    "ANCHORS",
    "DEFAULT_SEEDS",
    "OWN",
    "README_BLOCK",
    "REPORT_FILE",
    "STUDENT",
    "Anchor",
    "Cell",
    "DatasetSummary",
    "FullEvaluation",
    "Provenance",
    "Run",
    "anchors_section",
    "dataset_table",
    "evaluate_cell",
    "format_stat",
    "load_datasets",
    "plot_reliability",
    "plot_time_calibration",
    "protocols_for",
    "readme_table",
    "reliability_counts",
    "render_markdown",
    "replace_marked_block",
    "replay_section",
    "replay_table",
    "run_full_evaluation",
    "subsample_users",
    "time_fractions",
    "write_plots",
    "write_report",
]
