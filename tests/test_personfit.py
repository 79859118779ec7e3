"""Person-fit statistics of LNIRT (lZ of times: Fox & Marianti 2017; lz of responses:
Drasgow, Levine & Williams 1985) on data simulated from the model, with and without aberrant
responders."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from smartstudy.data.simulate import simulate_lnirt
from smartstudy.models.base import NotFittedError
from smartstudy.models.lnirt import LNIRT, PERSON_FIT_COLUMNS, PERSON_FIT_KINDS, TopicLNIRT

N_PERSONS, N_ITEMS = 400, 20


def make_aberrant(
    df: pd.DataFrame,
    rng: np.random.Generator,
    share_persons: float = 0.05,
    share_items: tuple[float, float] = (0.25, 0.45),
) -> tuple[pd.DataFrame, set[str], set[str]]:
    """Turn ``share_persons`` of the users aberrant on a share of their items (drawn per user
    from ``share_items``): half rapid guessers (times cut to 10-20%, answers right with the
    chance 0.25 of a four-option item), half slowed responders (times x3-5)."""
    users = df["user_id"].unique()
    bad = rng.choice(users, size=round(share_persons * len(users)), replace=False)
    rapid, slow = set(bad[: len(bad) // 2]), set(bad[len(bad) // 2 :])
    out = df.copy()
    u = out["user_id"].to_numpy()
    share = pd.Series(rng.uniform(*share_items, size=len(users)), index=users)
    hit = rng.uniform(size=len(out)) < share[u].to_numpy()
    r = np.isin(u, list(rapid)) & hit
    s = np.isin(u, list(slow)) & hit
    out.loc[r, "rt_seconds"] *= rng.uniform(0.1, 0.2, size=int(r.sum()))
    out.loc[r, "correct"] = (rng.uniform(size=int(r.sum())) < 0.25).astype(int)
    out.loc[s, "rt_seconds"] *= rng.uniform(3.0, 5.0, size=int(s.sum()))
    return out, rapid, slow


@pytest.fixture(scope="module")
def aberrant() -> tuple[LNIRT, pd.DataFrame, pd.DataFrame, set[str], set[str]]:
    df, _ = simulate_lnirt(N_PERSONS, N_ITEMS, seed=11)
    df, rapid, slow = make_aberrant(df, np.random.default_rng(11))
    model = LNIRT().fit(df)
    return model, df, model.person_fit(df).set_index("user_id"), rapid, slow


@pytest.fixture(scope="module")
def normal() -> tuple[LNIRT, pd.DataFrame, pd.DataFrame]:
    df, _ = simulate_lnirt(N_PERSONS, N_ITEMS, seed=12)
    model = LNIRT().fit(df)
    return model, df, model.person_fit(df)


def test_table_shape(aberrant) -> None:
    _, df, pf, _, _ = aberrant
    assert list(pf.reset_index().columns) == ["user_id", *PERSON_FIT_COLUMNS]
    assert sorted(pf.index) == sorted(df["user_id"].unique())
    assert (pf["n"] == N_ITEMS).all() and (pf["df_time"] == N_ITEMS - 1).all()
    assert set(pf["kind"]) <= set(PERSON_FIT_KINDS)


def test_lz_flags_find_aberrant_responders(aberrant) -> None:
    _, _, pf, rapid, slow = aberrant
    bad = pf.index.isin(list(rapid | slow))
    detection = pf["flag_time"][bad].mean()
    false_positives = pf["flag_time"][~bad].mean()
    print(f"detection {detection:.3f}, false positives {false_positives:.3f}")
    assert detection >= 0.80
    assert false_positives <= 0.05
    # The direction of a flagged pattern: faster or slower than the person's own speed.
    flagged_rapid = pf.loc[[u for u in rapid if pf.at[u, "flag_time"]]]
    flagged_slow = pf.loc[[u for u in slow if pf.at[u, "flag_time"]]]
    assert (flagged_rapid["kind"] == "rapid").mean() >= 0.7
    assert (flagged_slow["kind"] == "slow").mean() >= 0.7
    assert (flagged_rapid["mean_resid"] < 0).mean() >= 0.7
    # Guessing at chance on some items shows in the answers too.
    normal_lz = pf["lz_resp"][~bad]
    assert pf.loc[list(rapid), "lz_resp"].mean() < normal_lz.mean() - 0.75
    assert pf.loc[list(slow), "lz_resp"].mean() > normal_lz.mean() - 0.5


def test_statistics_are_calibrated_on_normal_data(normal) -> None:
    _, _, pf = normal
    assert 0.01 <= pf["flag_time"].mean() <= 0.09
    # lZ with the person's estimated speed is chi-square with K - 1 degrees of freedom.
    assert abs(pf["lz_time"].mean() - (N_ITEMS - 1)) < 1.0
    assert stats.kstest(pf["p_time"], "uniform").pvalue > 0.01
    # lz of the answers is standard normal at most (conservative with estimated ability).
    assert abs(pf["lz_resp"].mean()) < 0.5
    assert 0.5 < pf["lz_resp"].std() < 1.2
    assert pf["flag_resp"].mean() <= 0.09
    assert (pf["kind"] == "erratic responses").sum() <= pf["flag_resp"].sum()


def test_lz_time_is_the_sum_of_squared_standardised_residuals(normal) -> None:
    model, df, pf = normal
    user = df["user_id"].iloc[0]
    rows = df[df["user_id"] == user]
    j = [model.item_index_[i] for i in rows["item_id"]]
    alpha, beta = model.alpha_[j], model.beta_[j]
    log_t = np.log(rows["rt_seconds"].to_numpy())
    tau = np.sum(alpha**2 * (beta - log_t)) / np.sum(alpha**2)
    lz = np.sum((alpha * (log_t - (beta - tau))) ** 2)
    got = pf.set_index("user_id").loc[user]
    assert got["lz_time"] == pytest.approx(lz)
    assert got["p_time"] == pytest.approx(stats.chi2.sf(lz, len(rows) - 1))
    # The answers' lz at the person's ability estimate (Drasgow et al. 1985).
    p = stats.norm.cdf(model.a_[j] * (got["theta"] - model.b_[j]))
    y = rows["correct"].to_numpy()
    l0 = np.sum(y * np.log(p) + (1 - y) * np.log(1 - p))
    mean = np.sum(p * np.log(p) + (1 - p) * np.log(1 - p))
    var = np.sum(p * (1 - p) * np.log(p / (1 - p)) ** 2)
    assert got["lz_resp"] == pytest.approx((l0 - mean) / np.sqrt(var), rel=1e-6)


def test_level_and_sparse_persons(normal) -> None:
    model, df, pf = normal
    strict = model.person_fit(df, level=0.01)
    assert strict["flag_time"].sum() < pf["flag_time"].sum()
    # One timed row: no degrees of freedom left after the speed, so no lZ and no flag.
    one = df.groupby("user_id").head(1)
    single = model.person_fit(one)
    assert single["lz_time"].isna().all() and not single["flag_time"].any()
    assert (single["n"] == 1).all()


def test_accuracy_only_model_scores_answers_only(aberrant) -> None:
    _, df, _, rapid, _ = aberrant
    model = LNIRT().fit(df.drop(columns="rt_seconds"))
    pf = model.person_fit(df).set_index("user_id")
    assert pf["lz_time"].isna().all() and not pf["flag_time"].any()
    assert (pf["n_time"] == 0).all()
    assert pf.loc[list(rapid), "lz_resp"].mean() < pf["lz_resp"].mean() - 0.75


def test_bad_input_gives_a_clear_error(normal) -> None:
    model, df, _ = normal
    with pytest.raises(NotFittedError):
        LNIRT().person_fit(df)
    with pytest.raises(ValueError, match="level"):
        model.person_fit(df, level=1.5)
    with pytest.raises(ValueError, match="correct"):
        model.person_fit(df.drop(columns="correct"))
    with pytest.raises(ValueError, match="no row of an item"):
        model.person_fit(df.assign(item_id="never-seen"))


def test_topic_lnirt_combines_topics_per_user() -> None:
    df, _ = simulate_lnirt(N_PERSONS, 2 * N_ITEMS, seed=13, n_skills=2)
    df, rapid, slow = make_aberrant(df, np.random.default_rng(13))
    model = TopicLNIRT().fit(df)
    by_topic = model.person_fit(df, by_topic=True)
    per_user = model.person_fit(df).set_index("user_id")
    assert set(by_topic["skill_id"]) == {"s0", "s1"}
    assert len(by_topic) == 2 * N_PERSONS and len(per_user) == N_PERSONS
    sums = by_topic.groupby("user_id")[["lz_time", "df_time", "n"]].sum()
    np.testing.assert_allclose(per_user["lz_time"], sums.loc[per_user.index, "lz_time"])
    assert (per_user["df_time"] == sums.loc[per_user.index, "df_time"]).all()
    assert (per_user["n"] == 2 * N_ITEMS).all()
    bad = per_user.index.isin(list(rapid | slow))
    assert per_user["flag_time"][bad].mean() >= 0.8
    assert per_user["flag_time"][~bad].mean() <= 0.05
    with pytest.raises(ValueError, match="no row of a topic"):
        model.person_fit(df.assign(skill_id="unknown-topic"))
