"""The person-fit summary of credential_form1 (the evaluation report's section and
benchmarks/person_fit.py): shares that add up, the vendor comparison, clear errors."""

from __future__ import annotations

import pytest

from smartstudy.data import loaders
from smartstudy.eval.person_fit import format_person_fit, person_fit_summary


@pytest.fixture(scope="module")
def summary() -> dict:
    try:
        loaders.load_dataset("credential_form1")
    except loaders.DatasetNotFoundError:
        pytest.skip("credential_form1 is not available")
    return person_fit_summary("credential_form1", level=0.05)


def test_shares_are_proportions_that_add_up(summary: dict) -> None:
    assert summary["n_persons"] == 1636
    kinds = summary["share_by_kind"]
    assert sum(kinds.values()) == pytest.approx(1.0, abs=1e-3)
    assert 0.0 < summary["share_flag_time"] < 1.0
    # Rapid and slow are the two kinds of aberrant times: together they are the time flags.
    assert kinds["rapid"] + kinds["slow"] <= summary["share_flag_time"] + 1e-3


def test_vendor_flags_are_compared(summary: dict) -> None:
    assert summary["vendor_flagged"] == 46
    for key in ("share_flagged_among_vendor_flagged", "share_flagged_among_others"):
        assert 0.0 <= summary[key] <= 1.0


def test_markdown_states_the_numbers(summary: dict) -> None:
    text = format_person_fit(summary)
    assert f"{summary['share_flag_time']:.1%}" in text
    assert "| rapid |" in text
    assert f"{summary['vendor_flagged']} examinees" in text


def test_a_level_outside_zero_one_is_refused() -> None:
    with pytest.raises(ValueError, match="level"):
        person_fit_summary("credential_form1", level=1.5)
