"""`smartstudy evaluate --all --report` (issue 15, acceptance 4): the document, its plots and
the README table come from real runs on a small subset, and their numbers are
``evaluate_model``'s."""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from smartstudy.cli import app
from smartstudy.data.loaders import DatasetNotFoundError, load_dataset
from smartstudy.eval import full_report
from smartstudy.eval.metrics import expected_calibration_error
from smartstudy.eval.protocol import evaluate_model, split_by_student, split_own
from smartstudy.models import Baseline

runner = CliRunner()
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
README = (
    "# Title\n\nIntro.\n\n<!-- BEGIN evaluation-table -->\nold table\n"
    "<!-- END evaluation-table -->\n\nTail.\n"
)


def _needs_data() -> None:
    try:
        load_dataset("mars_ib")
    except DatasetNotFoundError:
        pytest.skip("shared data sets are not beside this checkout")


def _section(text: str, heading: str) -> str:
    """The markdown under ``heading`` up to the next heading of the same or a higher level."""
    level = heading.split(" ")[0]
    start = text.index(heading + "\n")
    rest = text[start + len(heading) + 1 :]
    stop = re.search(rf"^#{{1,{len(level)}}} ", rest, flags=re.MULTILINE)
    return rest[: stop.start()] if stop else rest


def _table_row(section: str, *cells: str) -> list[str]:
    for line in section.splitlines():
        parts = [p.strip() for p in line.strip("|").split("|")]
        if parts[: len(cells)] == list(cells):
            return parts
    raise AssertionError(f"no row starting {cells} in:\n{section}")


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def _mean_sd(values: list[float]) -> str:
    return f"{np.mean(values):.3f} ± {np.std(values, ddof=1):.3f}"


@pytest.mark.slow
def test_report_command_writes_document_plots_and_readme(tmp_path):
    _needs_data()
    readme = tmp_path / "README.md"
    readme.write_text(README, encoding="utf-8")
    args = ["evaluate", "--all", "--report", "--dataset", "credential_form1", "--dataset",
            "assistments09", "--model", "baseline", "--model", "bkt", "--seeds", "2",
            "--max-users", "60", "--no-replay", "--out", str(tmp_path),
            "--readme", str(readme)]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    doc = (tmp_path / "EVALUATION.md").read_text(encoding="utf-8")

    # Provenance, protocol, subsample and the skipped replay are stated.
    assert "smartstudy evaluate --all --report --dataset credential_form1" in doc
    assert "--max-users 60" in doc and "at most 60 users per data set" in doc
    assert "never from the row's own outcome" in doc and "held out" in doc
    assert "skipped (`--no-replay`)" in doc
    for name in ("credential_form1", "assistments09"):
        table = _section(doc, f"### {name}")
        assert "±" in table and "| split by student | Baseline | 2 |" in table
        assert f"](evaluation/{name}.png)" in table
    assert "| own split | Baseline | 1 |" in _section(doc, "### assistments09")
    anchors = _section(doc, "## Published anchors")
    assert "| assistments09 | Best-LR | 0.770 |" in anchors and "Gervet" in anchors
    assert "not directly comparable" in anchors and "SmartStudy Baseline" in anchors
    assert "No published anchor" in anchors and "credential_form1" in anchors

    # The plots are real PNGs of a sensible size; time plots only where there are times.
    plots = tmp_path / "evaluation"
    for name in ("credential_form1.png", "credential_form1_time.png", "assistments09.png"):
        width, height = _png_size(plots / name)
        assert width > 400 and height > 300 and (plots / name).stat().st_size > 10_000
    assert not (plots / "assistments09_time.png").exists()

    # The README block is replaced and the rest kept.
    text = readme.read_text(encoding="utf-8")
    assert text.startswith("# Title\n\nIntro.\n\n<!-- BEGIN evaluation-table -->\n")
    assert text.endswith("<!-- END evaluation-table -->\n\nTail.\n") and "old table" not in text
    assert "| assistments09 (Gervet et al. split) | Baseline |" in text
    assert text.count("| credential_form1 |") == 2
    assert "Quick run on at most 60 users per data set" in text

    # The numbers are evaluate_model's on the same subsample and splits.
    cred = full_report.subsample_users(load_dataset("credential_form1"), 60)
    runs = [evaluate_model(Baseline(), *split_by_student(cred, seed=s)) for s in (0, 1)]
    row = _table_row(_section(doc, "### credential_form1"), "split by student", "Baseline")
    assert row[3] == _mean_sd([r.auc for r in runs])
    assert row[4] == _mean_sd([r.log_loss for r in runs])
    assert row[7] == _mean_sd([r.rmse_log_time for r in runs])
    assert row[8] == _mean_sd([r.coverage80 for r in runs])
    readme_row = _table_row(text, "credential_form1", "Baseline")
    assert readme_row[2].strip("*") == f"{np.mean([r.auc for r in runs]):.3f}"
    assist = full_report.subsample_users(load_dataset("assistments09"), 60)
    own = evaluate_model(Baseline(), *split_own(assist))
    row = _table_row(_section(doc, "### assistments09"), "own split", "Baseline")
    assert row[2:5] == ["1", f"{own.auc:.3f}", f"{own.log_loss:.3f}"]
    saved = json.loads((plots / "results.json").read_text(encoding="utf-8"))
    cell = next(
        c
        for c in saved["evaluation"]["cells"]
        if (c["dataset"], c["model"], c["protocol"]) == ("credential_form1", "baseline", "student")
    )
    assert [r["auc"] for r in cell["runs"]] == [round(r.auc, 4) for r in runs]
    assert sum(cell["reliability"]["count"]) == sum(r.n_predictions for r in runs)


@pytest.mark.slow
def test_report_with_a_small_replay(tmp_path):
    _needs_data()
    args = ["evaluate", "--all", "--report", "--dataset", "credential_form1", "--model",
            "lnirt", "--seeds", "1", "--max-users", "30", "--replay-learners", "5",
            "--out", str(tmp_path)]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    doc = (tmp_path / "EVALUATION.md").read_text(encoding="utf-8")
    assert "| split by student | LNIRT | 1 |" in _section(doc, "### credential_form1")
    replay = _section(doc, "## Replay through the service")
    assert "### Replay of credential_form1" in replay and "5 learners (seed 0)" in replay
    for configuration in ("served", "baseline alone", "lnirt alone", "neural alone", "reference"):
        assert f"| {configuration} | " in replay
    served = _table_row(replay, "served")
    assert 0 < int(served[1]) <= 5 * 30
    saved = json.loads((tmp_path / "evaluation" / "results.json").read_text(encoding="utf-8"))
    measured = saved["replay"]["credential_form1"]["configurations"]["served"]
    assert int(served[1]) == measured["all"]["n"]
    assert served[2] == f"{measured['all']['log_loss']:.3f}"
    assert served[6] == f"{measured['all']['auc']:.3f}"
    # With credential_form1 and LNIRT in the run, the person-fit summary is part of it.
    person_fit = _section(doc, "## Person fit")
    assert "lZ" in person_fit and "| rapid |" in person_fit
    assert "examinees the vendor suspected of misconduct" in person_fit


def test_bad_options_fail_clearly(tmp_path):
    cases = [
        (["--report"], "go with --all"),
        (["--all", "--dataset", "nope"], "unknown data set"),
        (["--all", "--model", "oracle"], "unknown model"),
        (["--all", "--seeds", "0"], "--seeds must be at least 1"),
        (["--all", "--max-users", "1"], "--max-users must be at least 2"),
        (["--all", "--report", "--no-replay", "--replay-learners", "3"], "--replay-learners"),
        (["--all", "--replay-learners", "3"], "go with --report"),
        (["--all", "--split", "own"], "leave out --split"),
        (["--dataset", "mars_ib", "--dataset", "cognitive_tutor"], "several go with --all"),
        (["--all", "--readme", str(tmp_path / "absent.md")], "--readme"),
    ]
    for extra, message in cases:
        result = runner.invoke(app, ["evaluate", *extra])
        assert result.exit_code == 1, (extra, result.output)
        assert message in result.output, (extra, result.output)
    no_marker = tmp_path / "README.md"
    no_marker.write_text("# Title\n\nno markers here\n", encoding="utf-8")
    result = runner.invoke(app, ["evaluate", "--all", "--readme", str(no_marker)])
    assert result.exit_code == 1 and "no marker `<!-- BEGIN evaluation-table -->`" in result.output
    assert no_marker.read_text(encoding="utf-8") == "# Title\n\nno markers here\n"


def test_replace_marked_block():
    out = full_report.replace_marked_block(README, "evaluation-table", "| new |\n")
    assert out == README.replace("old table", "| new |")
    with pytest.raises(ValueError, match="no marker `<!-- END evaluation-table -->`"):
        full_report.replace_marked_block(
            "<!-- BEGIN evaluation-table -->\n", "evaluation-table", ""
        )
    with pytest.raises(ValueError, match="2 copies"):
        full_report.replace_marked_block(README + README, "evaluation-table", "x")
    swapped = "<!-- END t -->\n<!-- BEGIN t -->\n"
    with pytest.raises(ValueError, match="comes before"):
        full_report.replace_marked_block(swapped, "t", "x")


def _frame(n_users: int = 40, n_items: int = 12, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ability = rng.normal(size=n_users)
    ease = rng.normal(size=n_items)
    rows = [
        {
            "user_id": f"u{u}",
            "item_id": f"i{i}",
            "skill_id": f"s{i % 3}",
            "correct": int(rng.random() < 1 / (1 + np.exp(-(ability[u] + ease[i])))),
            "rt_seconds": float(np.exp(rng.normal(3 - 0.3 * ease[i], 0.5))),
            "order": i,
        }
        for u in range(n_users)
        for i in range(n_items)
    ]
    return pd.DataFrame(rows)


class _Refuses(Baseline):
    """A model that cannot fit this data, as BKT cannot without skills."""

    name = "refuses"

    def fit(self, df: pd.DataFrame) -> _Refuses:
        raise ValueError("refuses: needs a column this data set lacks")


class _Degenerate(Baseline):
    name = "degenerate"

    def fit(self, df: pd.DataFrame) -> _Degenerate:
        raise RuntimeError("the fit is degenerate")


def test_a_failing_model_is_reported_not_hidden():
    frames = {"toy": _frame()}
    models = {"baseline": Baseline, "refuses": _Refuses, "degenerate": _Degenerate}
    messages: list[str] = []
    evaluation = full_report.run_full_evaluation(
        frames, models, seeds=[0, 1], progress=messages.append
    )
    assert len(evaluation.cell("toy", "baseline", full_report.STUDENT).runs) == 2
    refused = evaluation.cell("toy", "refuses", full_report.STUDENT)
    assert refused.runs == [] and "needs a column this data set lacks" in refused.error
    table = full_report.dataset_table(evaluation, "toy")
    assert "refuses (split by student) stopped: ValueError: refuses: needs a column" in table
    assert "degenerate (split by student) stopped: RuntimeError: the fit is degenerate" in table
    assert any("failed" in m and "degenerate" in m for m in messages)
    assert "| refuses |" not in table and "| split by student | Baseline | 2 |" in table


def test_seeds_protocols_and_subsample():
    df = _frame(n_users=50)
    sub = full_report.subsample_users(df, 20, seed=3)
    assert sub["user_id"].nunique() == 20
    assert sub.groupby("user_id").size().eq(12).all()  # every row of a kept user
    assert full_report.subsample_users(df, 20, seed=3).equals(sub)
    assert full_report.subsample_users(df, 500) is df
    with pytest.raises(ValueError):
        full_report.subsample_users(df, 1)
    assert full_report.protocols_for(df) == (full_report.STUDENT,)
    own = df.assign(split=np.where(df["user_id"].str[1:].astype(int) < 40, "train", "test"))
    assert full_report.protocols_for(own) == (full_report.OWN, full_report.STUDENT)
    evaluation = full_report.run_full_evaluation(
        {"toy": own}, {"baseline": Baseline}, seeds=[0, 1, 2]
    )
    # Baseline has no seed: the own split, the same in every run, is run once.
    assert len(evaluation.cell("toy", "baseline", full_report.OWN).runs) == 1
    student = evaluation.cell("toy", "baseline", full_report.STUDENT)
    assert [r.split_seed for r in student.runs] == [0, 1, 2]
    mean, sd, n = student.summary("auc")
    aucs = [r.result.auc for r in student.runs]
    assert (
        n == 3
        and mean == pytest.approx(np.mean(aucs))
        and sd == pytest.approx(np.std(aucs, ddof=1))
    )


def test_reliability_bins_and_time_fractions_agree_with_the_metrics():
    rng = np.random.default_rng(1)
    p = np.concatenate([rng.random(500), [0.0, 1.0]])
    y = (rng.random(len(p)) < p).astype(float)
    sum_p, sum_y, count = full_report.reliability_counts(y, p)
    assert count.sum() == len(p) and sum_p.sum() == pytest.approx(p.sum())
    assert np.abs(sum_y - sum_p).sum() / len(p) == pytest.approx(expected_calibration_error(y, p))
    actual = np.array([1.0, 2.0, 3.0, 4.0, np.nan])
    ones = np.ones(5)
    shares = full_report.time_fractions(actual, 2.5 * ones, 1.5 * ones, 3.0 * ones)
    assert shares == {
        "below_p10": 0.25,
        "below_median": 0.5,
        "inside_80": 0.5,
        "above_p90": 0.25,
        "n": 4,
    }
    assert full_report.time_fractions(np.full(3, np.nan), ones[:3], ones[:3], ones[:3]) is None


def test_format_stat():
    assert full_report.format_stat(None, 3) == "—"
    assert full_report.format_stat((0.71234, float("nan"), 1), 3) == "0.712"
    assert full_report.format_stat((0.71234, 0.0123, 5), 3) == "0.712 ± 0.012"


class _SeedIgnored(Baseline):
    """A model with a seed that its fit does not use."""

    name = "seed-ignored"

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        self.seed = seed


class _SeedUsed(_SeedIgnored):
    """A model whose predictions move with its seed."""

    name = "seed-used"

    def predict(self, df: pd.DataFrame) -> pd.DataFrame:
        out = super().predict(df)
        out["p_correct"] = np.clip(out["p_correct"] + 1e-3 * (self.seed + 1), 0.0, 1.0)
        return out


def test_the_own_split_runs_a_seeded_model_once_when_its_seed_changes_nothing():
    own = _frame(n_users=50)
    own = own.assign(split=np.where(own["user_id"].str[1:].astype(int) < 40, "train", "test"))
    evaluation = full_report.run_full_evaluation(
        {"toy": own}, {"ignored": _SeedIgnored, "used": _SeedUsed}, seeds=[0, 1, 2]
    )
    ignored = evaluation.cell("toy", "ignored", full_report.OWN)
    used = evaluation.cell("toy", "used", full_report.OWN)
    assert ignored.deterministic and [r.model_seed for r in ignored.runs] == [0]
    assert not used.deterministic and [r.model_seed for r in used.runs] == [0, 1, 2]
    # Split by student the split itself changes with the seed: every seed runs.
    assert len(evaluation.cell("toy", "ignored", full_report.STUDENT).runs) == 3
    table = full_report.dataset_table(evaluation, "toy")
    assert "| own split | ignored | 1 (same for every seed) |" in table
    assert "| own split | used | 3 |" in table
