"""Loaders on the real data sets in shared/datasets: counts from each README, schema, rules.

Counts are the ones stated in ``shared/datasets/<name>/README.md``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from smartstudy.data import loaders
from smartstudy.data.loaders import (
    DATASETS,
    ENV_VAR,
    DatasetNotFoundError,
    datasets_dir,
    load_dataset,
)
from smartstudy.data.schema import (
    INTERACTION_COLUMNS,
    InteractionsError,
    InteractionsWarning,
    validate_interactions,
)

HAS_SPLIT = {"assistments09", "assistments09_dkt"}


def _data_dir_or_skip():
    try:
        return datasets_dir()
    except DatasetNotFoundError as exc:
        pytest.skip(f"public data sets not available: {exc}")


@pytest.fixture(scope="module")
def frames() -> dict[str, pd.DataFrame]:
    _data_dir_or_skip()
    return {name: load_dataset(name) for name in DATASETS}


# -- schema common to all data sets -------------------------------------------------------
@pytest.mark.parametrize("name", DATASETS)
def test_schema_dtypes_and_sorting(frames, name):
    df = frames[name]
    expected = [*INTERACTION_COLUMNS, "split"] if name in HAS_SPLIT else list(INTERACTION_COLUMNS)
    assert list(df.columns) == expected
    for col in ("user_id", "item_id", "skill_id"):
        assert pd.api.types.is_string_dtype(df[col]), col
        assert isinstance(df[col].iloc[0], str)
        assert not df[col].isna().any()
    assert df["correct"].dtype == np.int64
    assert set(np.unique(df["correct"])) <= {0, 1}
    assert df["rt_seconds"].dtype == np.float64
    rt = df["rt_seconds"].to_numpy()
    assert np.all(np.isnan(rt) | (rt > 0))
    assert pd.api.types.is_integer_dtype(df["order"])
    assert isinstance(df.index, pd.RangeIndex)
    # Sorted by user, then order within user; order is unique within a user.
    users = df["user_id"].to_numpy()
    assert np.all(users[:-1] <= users[1:])
    assert not df.duplicated(["user_id", "order"]).any()
    same_user = users[:-1] == users[1:]
    assert np.all(np.diff(df["order"].to_numpy())[same_user] > 0)
    assert df.attrs["dataset"] == name
    validate_interactions(df)  # the shared schema accepts it as is


# -- per data set counts and rules ------------------------------------------------------
def test_assistments09_counts_and_split(frames):
    df = frames["assistments09"]
    assert len(df) == 278_336
    assert df["user_id"].nunique() == 3_114
    assert df["item_id"].nunique() == 17_708
    assert df["skill_id"].nunique() == 149
    assert df["correct"].mean() == pytest.approx(0.66, abs=0.005)
    assert df["rt_seconds"].isna().all()  # no time information in this preprocessing
    assert set(df["split"]) == {"train", "test"}
    assert df.groupby("user_id")["split"].nunique().max() == 1  # an 80/20 user split


def test_assistments09_dkt_counts_and_split(frames):
    df = frames["assistments09_dkt"]
    assert len(df) == 525_534
    assert df["user_id"].nunique() == 4_217
    assert df["skill_id"].nunique() == 124
    assert (df["item_id"] == df["skill_id"]).all()  # no problem ids in the DKT format
    assert df["split"].value_counts().to_dict() == {"train": 407_967, "test": 117_567}
    assert df["rt_seconds"].isna().all()
    assert df["correct"].mean() == pytest.approx(0.68, abs=0.005)


def test_cognitive_tutor_counts_and_times(frames):
    df = frames["cognitive_tutor"]
    assert len(df) == 16_858
    assert df["user_id"].nunique() == 587
    assert df["skill_id"].nunique() == 12
    assert df["item_id"].nunique() == 750
    assert df["correct"].mean() == pytest.approx(0.62, abs=0.005)
    assert df["rt_seconds"].median() == pytest.approx(11.0)
    raw = pd.read_csv(datasets_dir() / "cognitive_tutor" / "responses_long.csv")
    # 6 missing durations stay missing and non-positive ones become missing too.
    assert raw["rt_seconds"].isna().sum() == 6
    expected_nan = int(raw["rt_seconds"].isna().sum() + (raw["rt_seconds"] <= 0).sum())
    assert df["rt_seconds"].isna().sum() == expected_nan


def test_credential_form1_scored_items_and_zero_times(frames):
    df = frames["credential_form1"]
    assert len(df) == 1_636 * 170
    assert df["user_id"].nunique() == 1_636
    assert df["item_id"].nunique() == 170
    assert set(df["skill_id"]) == {"credential"}
    assert df["order"].min() == 1 and df["order"].max() == 170
    assert (df["order"].astype(str) == df["item_id"]).all()  # item number is the order
    assert df["correct"].mean() == pytest.approx(0.72, abs=0.01)
    raw = pd.read_csv(datasets_dir() / "credential_form1" / "responses_long.csv")
    scored = raw[raw["is_pilot"] == 0]
    # LNIRT treats idur == 0 as missing: every zero is NaN and nothing else is.
    assert df["rt_seconds"].isna().sum() == (scored["rt_seconds"] == 0).sum() > 0
    assert df["rt_seconds"].sum() == pytest.approx(scored["rt_seconds"].sum())


def test_credential_form1_with_pilot_items():
    _data_dir_or_skip()
    df = load_dataset("credential_form1", include_pilot=True)
    assert len(df) == 294_480
    assert df["item_id"].nunique() == 200
    assert df["rt_seconds"].isna().sum() == 109  # the README's 109 zeros


def test_mars_ib_defaults_exclude_rejected_and_score_timeouts(frames):
    df = frames["mars_ib"]
    assert df["user_id"].nunique() == 1_584 - 83
    assert len(df) == (1_584 - 83) * 16
    assert set(df["order"]) == set(range(1, 17))
    assert df["skill_id"].nunique() <= 64
    # A timeout is an incorrect answer whose time is unknown (censored at 30 s).
    assert not df["correct"].isna().any()
    timed_out = df["rt_seconds"].isna()
    assert timed_out.sum() > 0
    assert (df.loc[timed_out, "correct"] == 0).all()
    assert df["rt_seconds"].max() <= 30.0


def test_mars_ib_options():
    _data_dir_or_skip()
    everyone = load_dataset("mars_ib", exclude_rejected=False)
    assert len(everyone) == 25_344
    assert everyone["user_id"].nunique() == 1_584
    assert everyone["rt_seconds"].isna().sum() == 477
    assert everyone["correct"].mean() == pytest.approx(0.60, abs=0.02)
    assert everyone["rt_seconds"].median() == pytest.approx(14.6, abs=0.1)
    dropped = load_dataset("mars_ib", exclude_rejected=False, timeouts="drop")
    assert len(dropped) == 25_344 - 477
    assert not dropped["rt_seconds"].isna().any()
    with pytest.raises(ValueError, match="timeouts must be one of incorrect, drop"):
        load_dataset("mars_ib", timeouts="skip")


# -- errors and the data sets folder ----------------------------------------------------
def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match="unknown data set 'nope'; valid names: assistments09"):
        load_dataset("nope")


def test_unknown_option_is_refused():
    with pytest.raises(ValueError, match=r"no option\(s\) \['include_pilot'\]; valid options"):
        load_dataset("mars_ib", include_pilot=True)
    with pytest.raises(ValueError, match="valid options: none"):
        load_dataset("assistments09", timeouts="drop")


def test_missing_data_set_names_the_file(monkeypatch, tmp_path):
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    assert datasets_dir() == tmp_path
    with pytest.raises(DatasetNotFoundError, match=r"responses_long\.csv") as info:
        load_dataset("mars_ib")
    assert isinstance(info.value, FileNotFoundError)
    assert str(tmp_path / "mars_ib" / "responses_long.csv") in str(info.value)
    assert ENV_VAR in str(info.value)


def test_missing_root_folder_is_reported(tmp_path):
    gone = tmp_path / "not-here"
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        load_dataset("cognitive_tutor", root=gone)


def test_root_argument_wins_over_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "env"))
    assert datasets_dir(tmp_path / "arg") == tmp_path / "arg"
    assert datasets_dir() == tmp_path / "env"


def test_no_folder_found_lists_the_paths_tried(monkeypatch, tmp_path):
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(loaders, "_REPO_ROOT", tmp_path / "repo")
    with pytest.raises(DatasetNotFoundError, match=ENV_VAR) as info:
        datasets_dir()
    assert str(tmp_path / "shared" / "datasets") in str(info.value)
    assert str(tmp_path / "repo" / ".." / "shared" / "datasets") in str(info.value)


def test_fallback_finds_shared_datasets_under_the_working_directory(monkeypatch, tmp_path):
    monkeypatch.delenv(ENV_VAR, raising=False)
    (tmp_path / "shared" / "datasets").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(loaders, "_REPO_ROOT", tmp_path / "repo")
    assert datasets_dir() == (tmp_path / "shared" / "datasets").resolve()


# -- the schema's reading of `order` and `rt_seconds` -------------------------------------
def _three_rows(**columns: object) -> pd.DataFrame:
    return pd.DataFrame({"user_id": [1, 1, 2], "item_id": [1, 2, 1], "correct": [1, 0, 1]}).assign(
        **columns
    )


def test_order_reads_iso_times_as_seconds_and_names_a_bad_one():
    stamps = ["2012-09-01 10:00:00", "2012-09-01 10:05:00", "2012-09-01T10:00:30Z"]
    out = validate_interactions(_three_rows(order=stamps))
    assert np.diff(out["order"].to_numpy()).tolist() == [300.0, -270.0]
    with pytest.raises(InteractionsError, match=r"`order` .* got 'soon' in row 1"):
        validate_interactions(_three_rows(order=[stamps[0], "soon", stamps[2]]))
    with pytest.raises(InteractionsError, match=r"`order` .* got 'soon' in row 1"):
        validate_interactions(_three_rows(order=["1", "soon", "3"]))


def test_unusable_times_are_missing_with_a_warning_and_text_is_refused():
    with pytest.warns(InteractionsWarning, match=r"2 time\(s\) .* the first 0\.0 in row 1"):
        out = validate_interactions(_three_rows(order=[1, 2, 3], rt_seconds=[5.0, 0.0, -1.0]))
    assert out["rt_seconds"].iloc[0] == 5.0 and out["rt_seconds"].iloc[1:].isna().all()
    with pytest.raises(InteractionsError, match=r"`rt_seconds` .* got 'fast' in row 2"):
        validate_interactions(_three_rows(order=[1, 2, 3], rt_seconds=[5.0, 2.0, "fast"]))
