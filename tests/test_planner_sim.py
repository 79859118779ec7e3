"""The planner simulation study (issue 13): fitting, learners, policies, the CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from smartstudy.cli import app
from smartstudy.eval import planner_sim as ps

runner = CliRunner()


def _toy_model(phi: float = 0.2, n_skills: int = 8) -> ps.GenerativeModel:
    rng = np.random.default_rng(42)
    deltas = []
    times = []
    for _ in range(n_skills):
        deltas.append(tuple(rng.normal(d - 1.0, 0.2, 4) for d in range(3)))
        times.append(tuple(np.log(11.0) + 0.3 * (d - 1) + rng.normal(0, 0.1, 4) for d in range(3)))
    return ps.GenerativeModel(
        skills=tuple(f"skill{k}" for k in range(n_skills)),
        beta=rng.normal(0.3, 0.8, n_skills),
        cell_delta=tuple(deltas),
        cell_log_time=tuple(times),
        gamma=np.array([0.6]),
        rho=np.array([0.1]),
        per_tertile=False,
        phi=phi,
        kappa=0.2,
        sigma_theta=0.8,
        sigma_u=0.4,
        sigma_tau=0.3,
        sigma_v=0.2,
        corr_theta_tau=0.3,
        sigma_time=0.6,
        attempts_per_day=8.0,
    )


def test_fitting_recovers_the_parameters_of_simulated_steps() -> None:
    truth = _toy_model(phi=0.0)
    steps = ps.simulate_steps(truth, 400, 30, seed=1)
    data = ps.step_data(steps)
    acc = ps.fit_accuracy(data, per_tertile=False, phi=0.0)
    assert acc.gamma[0] == pytest.approx(0.6, abs=0.2)
    assert acc.rho[0] == pytest.approx(0.1, abs=0.2)
    assert acc.sigma_theta == pytest.approx(0.8, abs=0.25)
    beta = acc.beta[[data.skills.index(k) for k in truth.skills]]
    assert np.corrcoef(beta, truth.beta)[0, 1] > 0.9
    # Item difficulties: the tertile structure (-1, 0, +1 around the skill) comes back.
    by_tertile = [
        np.mean([acc.delta[i] for i, name in enumerate(data.items) if name.split("|")[1] == str(d)])
        for d in range(3)
    ]
    assert by_tertile[0] < by_tertile[1] - 0.5 < by_tertile[2] - 1.0
    speed = ps.fit_speed(data)
    assert speed.kappa == pytest.approx(0.2, abs=0.08)
    assert speed.sigma == pytest.approx(0.6, abs=0.07)
    assert speed.sigma_tau == pytest.approx(0.3, abs=0.1)
    # Learning matters: a model without it fits worse.
    flat = ps.fit_accuracy(
        ps.step_data(steps.assign(order=steps["order"])), per_tertile=False, phi=0.0, max_iter=1
    )
    assert flat.log_likelihood < acc.log_likelihood


def test_forgetting_is_recovered_from_long_lags() -> None:
    truth = _toy_model(phi=0.5, n_skills=12)
    # Mostly short runs on one of 12 skills: lags between visits reach tens of attempts.
    steps = ps.simulate_steps(truth, 300, 60, seed=2)
    acc = ps.fit_accuracy(ps.step_data(steps), per_tertile=False)
    assert 0.2 < acc.phi < 1.0


def test_learners_forget_and_learn() -> None:
    model = _toy_model(phi=0.3)
    learner = ps._Learner(model, np.random.default_rng(0))
    before = learner.readiness(0.0)
    rng = np.random.default_rng(1)
    for i in range(10):
        learner.attempt(0, ps.MEDIUM, float(i), rng)
    soon = learner.readiness(10.0)[0]
    later = learner.readiness(10.0 + 14 * model.attempts_per_day)[0]
    assert soon > before[0]
    assert before[0] < later < soon
    assert learner.readiness(10.0)[1:] == pytest.approx(before[1:])


def _trace(policy_name: str, seed: int = 0) -> tuple[list, ps._Estimate]:
    model = _toy_model()
    prior = ps.fit_estimator_prior(model, learners=40, tasks=20, seed=seed)
    rng = np.random.default_rng([seed, 0, 0])
    learner = ps._Learner(model, rng)
    est = ps._Estimate(prior)
    ps._pre_history(model, learner, ps.PRE_TASKS, ps.PRE_DAYS, rng, estimate=est)
    policy = ps._policy(policy_name, np.random.default_rng(3), None, learner, model, 30)
    trace: list = []
    ps.run_learner(policy, learner, est, model, np.random.default_rng(4), trace=trace)
    return trace, policy


@pytest.mark.parametrize("name", ps.POLICIES)
def test_policies_respect_the_daily_budget_rule(name: str) -> None:
    trace, policy = _trace(name)
    days = sorted({row[0] for row in trace})
    assert days == list(range(ps.EXAM_DAYS))  # at least one task every day
    for day in days:
        rows = [row for row in trace if row[0] == day]
        used = 0.0
        for k, (_, _, _, _, seconds, predicted) in enumerate(rows):
            if k:
                assert used + predicted <= ps.DAILY_MINUTES + 1e-9
            used += seconds / 60.0
    if name == "plan":
        assert policy.replans >= ps.EXAM_DAYS  # re-planned at least once a day
    if name == "lowest_mastery":
        assert {row[2] for row in trace} == {ps.MEDIUM}


def test_the_plan_policy_follows_build_plan() -> None:
    calls = []

    def planner(topics, forecasts, exam, today, **kwargs):
        from smartstudy.planning import build_plan

        plan = build_plan(topics, forecasts, exam, today, **kwargs)
        calls.append((today, plan.days[0].tasks, kwargs["minutes_done_today"]))
        return plan

    model = _toy_model()
    study = ps.run_planner_study(
        learners=1, seeds=(0,), policies=("plan",), model=model, planner=planner, train_learners=40
    )
    assert len(study.outcomes) == 1
    assert calls and calls[0][2] == 0.0
    assert len({c[0] for c in calls}) == ps.EXAM_DAYS


def test_small_study_is_deterministic_and_complete() -> None:
    model = _toy_model()
    first = ps.run_planner_study(learners=3, seeds=(0, 1), model=model, train_learners=40)
    again = ps.run_planner_study(learners=3, seeds=(0, 1), model=model, train_learners=40)
    assert [o.__dict__ for o in first.outcomes] == [o.__dict__ for o in again.outcomes]
    other = ps.run_planner_study(learners=3, seeds=(2,), model=model, train_learners=40)
    assert [o.readiness for o in other.outcomes] != [o.readiness for o in first.outcomes[:15]]
    assert len(first.outcomes) == 3 * 2 * len(ps.POLICIES)
    # The same learner starts from the same state under every policy (common random numbers).
    for seed in (0, 1):
        for i in range(3):
            starts = {
                o.start_readiness for o in first.outcomes if o.seed == seed and o.learner == i
            }
            assert len(starts) == 1
    for o in first.outcomes:
        assert 0.0 <= o.readiness <= 1.0
        assert o.minutes > 0 and o.tasks >= ps.EXAM_DAYS
        assert math.isinf(o.minutes_to_target) or o.minutes_to_target <= o.minutes
    summary = first.summary()
    assert set(summary["policies"]) == set(ps.POLICIES)
    assert summary["plan_vs_best"]["best_readiness_policy"] != "plan"
    table = ps.format_planner_table(first)
    assert "lowest_mastery" in table and "plan /" in table
    json.dumps(first.to_dict())


def test_estimator_prior_is_fitted_on_the_cohort() -> None:
    prior = ps.fit_estimator_prior(_toy_model(), learners=60, tasks=30, seed=0)
    easy, medium, hard = prior.offsets
    assert easy > medium == 0.0 > hard
    assert prior.var > 0 and prior.time_sd > 0 and prior.time_k0 > 0
    assert prior.log_time[0] < prior.log_time[2]
    assert 0 < prior.bkt[2] < 0.5 and 0 < prior.bkt[3] < 0.5


def _write_tiny_datasets(root, model: ps.GenerativeModel) -> None:
    steps = ps.simulate_steps(model, 60, 25, seed=5)
    ct = root / "cognitive_tutor"
    ct.mkdir(parents=True)
    pd.DataFrame(
        {
            "person": steps["user_id"],
            "skill": steps["skill_id"],
            "item": steps["item_id"],
            "correct": steps["correct"],
            "rt_seconds": steps["rt_seconds"].round(1),
            "seq_index": steps["order"],
        }
    ).to_csv(ct / "responses_long.csv", index=False)
    longer = ps.simulate_steps(model, 40, 40, seed=6)
    a9 = root / "assistments09"
    a9.mkdir(parents=True)
    pd.DataFrame(
        {
            "user_id": longer["user_id"],
            "item_id": longer["item_id"],
            "skill_id": longer["skill_id"],
            "correct": longer["correct"],
            "split": "train",
            "seq_index": longer["order"],
        }
    ).to_csv(a9 / "responses_long.csv", index=False)


def test_cli_planner_scenario_json(tmp_path, monkeypatch) -> None:
    _write_tiny_datasets(tmp_path, _toy_model())
    monkeypatch.setenv("SMARTSTUDY_DATASETS_DIR", str(tmp_path))
    args = ["evaluate", "--scenario", "planner", "--learners", "2", "--seeds", "2", "--days", "5"]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["scenario"] == "planner"
    assert out["learners"] == 2 and out["seeds"] == [0, 1] and out["days"] == 5
    assert set(out["policies"]) == set(ps.POLICIES)
    assert out["generative_model"]["attempts_per_day"] > 0
    assert out["generative_model"]["diagnostics"]["phi_source"].startswith("assistments09")
    assert "readiness_difference" in out["plan_vs_best"]
    table = runner.invoke(
        app, ["evaluate", "--scenario", "planner", "--learners", "1", "--seeds", "1", "--seed", "3"]
    )
    assert table.exit_code == 0, table.output
    assert "seeds 3" in table.stdout and "hardest" in table.stdout and "14 days" in table.stdout
    for bad in (["--scenario", "nope"], ["--scenario", "planner", "--learners", "0"]):
        refused = runner.invoke(app, ["evaluate", *bad])
        assert refused.exit_code != 0
