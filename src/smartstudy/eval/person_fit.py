"""Person-fit summary of a data set with response times: how many learners look aberrant.

LNIRT (van der Linden 2007, Psychometrika 72(3)) is fitted on the whole data set, then every
learner is scored with ``LNIRT.person_fit``: the lZ statistic of the response times (Fox &
Marianti 2017, Journal of Educational Measurement 54(2)), flagged at p < ``level`` and split
into "rapid" and "slow" by the sign of the mean residual against the learner's own speed, and
the lz statistic of the answers (Drasgow, Levine & Williams 1985), flagged in its lower tail.

For ``credential_form1`` the data set marks the examinees the test vendor suspected of
misconduct (``persons.csv``); the share of them flagged is reported next to the share of the
others. That is a check of relevance, not a target: misconduct such as item preknowledge need
not show in times.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
import pandas as pd

from smartstudy.data.loaders import datasets_dir, load_dataset
from smartstudy.models.lnirt import LNIRT, PERSON_FIT_KINDS

#: The data set whose vendor flags are compared with the statistics.
VENDOR_DATASET = "credential_form1"


def vendor_flags(root: str | os.PathLike[str] | None = None) -> pd.Series | None:
    """The vendor's misconduct flag per examinee of ``credential_form1`` (its ``persons.csv``),
    None when the file is absent."""
    path = datasets_dir(root) / VENDOR_DATASET / "persons.csv"
    if not path.is_file():
        return None
    persons = pd.read_csv(path, usecols=["person", "Flagged"], dtype={"person": str})
    return persons.set_index("person")["Flagged"].astype(bool)


def person_fit_summary(
    dataset: str = VENDOR_DATASET,
    level: float = 0.05,
    root: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Fit LNIRT on ``dataset`` and summarise its person-fit flags at ``level`` (a dict of
    plain numbers: shares flagged by times and by answers, by kind, timings, and for
    ``credential_form1`` the comparison with the vendor's flags)."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie strictly between 0 and 1, got {level!r}")
    df = load_dataset(dataset, root=root)
    start = time.perf_counter()
    model = LNIRT().fit(df)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    pf = model.person_fit(df, level=level)
    person_fit_s = time.perf_counter() - start
    out: dict[str, Any] = {
        "dataset": dataset,
        "level": level,
        "n_rows": len(df),
        "n_persons": len(pf),
        "n_items": int(df["item_id"].nunique()),
        "fit_seconds": round(fit_s, 3),
        "person_fit_seconds": round(person_fit_s, 3),
        "share_flag_time": round(float(pf["flag_time"].mean()), 4),
        "share_flag_resp": round(float(pf["flag_resp"].mean()), 4),
        "share_by_kind": {
            k or "none": round(float((pf["kind"] == k).mean()), 4) for k in PERSON_FIT_KINDS
        },
        "mean_lz_time_over_df": round(float((pf["lz_time"] / pf["df_time"]).mean()), 4),
        "mean_lz_resp": round(float(pf["lz_resp"].mean()), 4),
    }
    flags = vendor_flags(root) if dataset == VENDOR_DATASET else None
    if flags is not None:
        out.update(_against_vendor(pf, flags))
    return out


def _against_vendor(pf: pd.DataFrame, flags: pd.Series) -> dict[str, Any]:
    vendor = flags.reindex(pf["user_id"].astype(str)).fillna(False).to_numpy(dtype=bool)
    flagged = (pf["flag_time"] | pf["flag_resp"]).to_numpy(dtype=bool)
    return {
        "vendor_flagged": int(vendor.sum()),
        "share_flagged_among_vendor_flagged": round(float(flagged[vendor].mean()), 4),
        "share_flagged_among_others": round(float(flagged[~vendor].mean()), 4),
        "median_p_time_vendor_flagged": round(float(np.median(pf["p_time"][vendor])), 4),
        "median_p_time_others": round(float(np.median(pf["p_time"][~vendor])), 4),
    }


def format_person_fit(summary: dict[str, Any]) -> str:
    """The summary as markdown: a sentence per finding and a table of the kinds."""
    lines = [
        f"LNIRT fitted on all {summary['n_rows']:,} responses of {summary['dataset']} "
        f"({summary['n_persons']:,} persons, {summary['n_items']} items) in "
        f"{summary['fit_seconds']:.2f} s; person fit of everyone in "
        f"{summary['person_fit_seconds']:.2f} s. Flagged at level {summary['level']}: "
        f"{summary['share_flag_time']:.1%} by their times (lZ), "
        f"{summary['share_flag_resp']:.1%} by their answers (lz).",
        "",
        "| pattern | share of persons |",
        "|---|---|",
    ]
    lines += [f"| {k} | {v:.1%} |" for k, v in summary["share_by_kind"].items()]
    if "vendor_flagged" in summary:
        lines += [
            "",
            f"Flagged by times or answers: {summary['share_flagged_among_vendor_flagged']:.1%} "
            f"of the {summary['vendor_flagged']} examinees the vendor suspected of misconduct, "
            f"against {summary['share_flagged_among_others']:.1%} of the others (median p of "
            f"the time statistic {summary['median_p_time_vendor_flagged']:.3f} against "
            f"{summary['median_p_time_others']:.3f}).",
        ]
    return "\n".join(lines)


__all__ = ["VENDOR_DATASET", "format_person_fit", "person_fit_summary", "vendor_flags"]
