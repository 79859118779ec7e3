"""LNIRT person fit on credential_form1: how many examinees show aberrant times or answers.

Protocol: LNIRT (van der Linden 2007, Psychometrika 72(3)) fitted on the scored items of the
credentialing exam distributed with the R package LNIRT (Cizek & Wollack 2016), then every
examinee scored with ``LNIRT.person_fit``: the lZ statistic of the response times (Fox &
Marianti 2017, Journal of Educational Measurement 54(2)), flagged at p < level, split into
"rapid" and "slow" by the sign of the mean residual against the examinee's median speed, and
the lz statistic of the answers (Drasgow, Levine & Williams 1985) flagged in its lower tail.
The data set marks 46 examinees as suspected of misconduct by the test vendor; the share of
them flagged is printed next to the share of the others (a check of relevance, not a target:
misconduct such as item preknowledge need not show in times).

    .venv/bin/python benchmarks/person_fit.py [--level 0.05] [--json]
"""

from __future__ import annotations

import argparse
import json

from smartstudy.eval.person_fit import person_fit_summary


def run(level: float) -> dict:
    return person_fit_summary("credential_form1", level)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--level", type=float, default=0.05, help="flag level, e.g. 0.01")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    res = run(args.level)
    if args.json:
        print(json.dumps(res))
        return
    print(
        f"credential_form1: {res['n_rows']} scored responses, {res['n_persons']} persons, "
        f"{res['n_items']} items; fit {res['fit_seconds']:.2f} s, "
        f"person fit {res['person_fit_seconds']:.2f} s"
    )
    print(
        f"flagged at level {res['level']}: times {res['share_flag_time']:.1%}, "
        f"answers {res['share_flag_resp']:.1%}"
    )
    for kind, share in res["share_by_kind"].items():
        print(f"  {kind:<18} {share:7.1%}")
    print(
        f"mean lZ / df {res['mean_lz_time_over_df']:.3f} (1 under the model), "
        f"mean lz of answers {res['mean_lz_resp']:+.3f}"
    )
    if "vendor_flagged" in res:
        print(
            f"flagged (times or answers): {res['share_flagged_among_vendor_flagged']:.1%} of the "
            f"{res['vendor_flagged']} vendor-flagged examinees, "
            f"{res['share_flagged_among_others']:.1%} of the others; median p_time "
            f"{res['median_p_time_vendor_flagged']:.3f} vs {res['median_p_time_others']:.3f}"
        )


if __name__ == "__main__":
    main()
