"""`smartstudy validate`: it passes on a demo database, and each invariant broken on purpose
(around the services, as a bug or a hand edit would) fails the check that names it, and
only that one. Each test undoes its damage, so the demo database is built once per backend."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, delete, select, text, update
from typer.testing import CliRunner

from smartstudy.cli import app
from smartstudy.config import Settings
from smartstudy.models.baseline import Baseline as RealBaseline
from smartstudy.models.lnirt import TopicLNIRT
from smartstudy.services import mastery, training, validation
from smartstudy.services.context import AppContext
from smartstudy.services.demo import seed_demo
from smartstudy.services.predictor import PredictionService
from smartstudy.store.db import make_engine, make_session_factory, session_scope, unit_of_work
from smartstudy.store.migrate import head_revision, upgrade
from smartstudy.store.orm import (
    BKTSkillParams,
    Concept,
    Job,
    ModelVersion,
    PracticeTask,
    TrainingCounter,
)

from .conftest import _postgres_database

runner = CliRunner()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def demo(request: pytest.FixtureRequest, tmp_path_factory) -> Iterator[AppContext]:
    """A demo database (catalogue, students, history, quizzes; every family trained by the
    demo through the services), in a data folder of its own."""
    data_dir = tmp_path_factory.mktemp("validate")
    postgres = _postgres_database() if request.param == "postgresql" else None
    url = next(postgres) if postgres else f"sqlite:///{data_dir / 'smartstudy.db'}"
    engine = make_engine(url)
    upgrade(engine)
    context = AppContext(
        settings=Settings(data_dir=data_dir, database_url=url, auto_migrate=False),
        engine=engine,
        sessions=make_session_factory(engine),
        predictor=PredictionService(),
    )
    with unit_of_work(context.sessions, hold=True) as uow:
        seed_demo(context, uow, tasks_per_student=20)
    yield context
    context.close()
    if postgres:
        postgres.close()  # drops the database


def _with_chain(context: AppContext, *chain: str, **factories) -> AppContext:
    """The same database, served by only some families (skips the slow neural checks where
    a test is about something else)."""
    known = {**context.predictor.factories, **factories}
    predictor = PredictionService(chain, {name: known[name] for name in chain})
    return AppContext(context.settings, context.engine, context.sessions, predictor)


def _failures(context: AppContext) -> dict[str, str]:
    return {r.name: r.detail for r in validation.run_checks(context) if not r.passed}


def _cli_env(context: AppContext, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMARTSTUDY_DATA_DIR", str(context.settings.data_dir))
    if context.engine.dialect.name == "sqlite":
        monkeypatch.delenv("SMARTSTUDY_DATABASE_URL", raising=False)  # found in the data folder
    else:
        monkeypatch.setenv("SMARTSTUDY_DATABASE_URL", context.settings.resolved_database_url)


def test_validate_passes_on_the_demo_database(demo, monkeypatch):
    _cli_env(demo, monkeypatch)
    result = runner.invoke(app, ["validate", "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["passed"] is True
    names = {c["name"] for c in body["checks"]}
    assert all(c["passed"] for c in body["checks"]), body
    for family in ("neural", "lnirt", "baseline"):
        for kind in ("parameters", "prediction ranges", "personalisation", "isolation"):
            assert f"{kind}: {family}" in names
    assert set(validation.DATA_CHECKS) <= names
    details = {c["name"]: c["detail"] for c in body["checks"]}
    assert "none dangling" in details["orphan rows"]
    assert "total=80 >= 80 completed tasks" in details["training counter"]
    assert "(user, topic) pairs with history personalised" in details["personalisation: lnirt"]
    table = runner.invoke(app, ["validate"])
    assert table.exit_code == 0 and "FAIL" not in table.output
    assert "one active version per model family" in table.output


def test_the_demo_records_its_training_as_a_run(demo):
    """The demo trains every family on its history: the admin sees that run (not "no training
    has run yet" beside trained versions), the counter is back at zero, and a "Train now"
    right after it would learn nothing new."""
    with session_scope(demo.sessions) as session:
        runs = session.scalars(select(Job).where(Job.kind == training.TRAINING_JOB)).all()
        assert [(r.status, r.summary["rows"]) for r in runs] == [("succeeded", 80)]
        active = dict(
            session.execute(
                select(ModelVersion.model_name, ModelVersion.version).where(ModelVersion.is_active)
            ).all()
        )
        assert {name: runs[0].summary[name]["version"] for name in demo.predictor.chain} == active
        counted, last_trained = session.execute(
            select(TrainingCounter.count, TrainingCounter.last_trained_at)
        ).one()
        assert counted == 0 and last_trained is not None
        assert training.nothing_new_since(session) is not None


@contextmanager
def _raw(context: AppContext, foreign_keys: bool = True) -> Iterator:
    """A connection around the services (optionally without foreign-key enforcement),
    committed at the end."""
    if context.engine.dialect.name == "sqlite" and not foreign_keys:
        # A plain engine: SQLite enforces foreign keys only when a connection asks for it.
        engine = create_engine(context.settings.resolved_database_url)
        with engine.begin() as conn:
            yield conn
        engine.dispose()
        return
    with context.engine.begin() as conn:
        if not foreign_keys:
            conn.execute(text("SET LOCAL session_replication_role = replica"))
        yield conn


def _active_ids(context: AppContext, name: str) -> set[uuid.UUID]:
    with context.sessions() as session:
        return set(
            session.scalars(
                select(ModelVersion.id).where(
                    ModelVersion.model_name == name, ModelVersion.is_active.is_(True)
                )
            )
        )


def test_two_active_versions_of_a_family_fail_the_command(demo, monkeypatch):
    active = _active_ids(demo, "baseline")
    with _raw(demo) as conn:
        conn.execute(
            update(ModelVersion).where(ModelVersion.model_name == "baseline").values(is_active=True)
        )
    try:
        n = len(_active_ids(demo, "baseline"))
        assert n >= 2
        _cli_env(demo, monkeypatch)
        result = runner.invoke(app, ["validate"])
        assert result.exit_code == 1
        assert (
            f"FAILED one active version per model family: model family baseline has {n} "
            "active versions (v1, v2" in result.output
        )
        failures = _failures(_with_chain(demo, "baseline"))
        assert list(failures) == ["one active version per model family"], failures
    finally:
        with _raw(demo) as conn:
            conn.execute(
                update(ModelVersion)
                .where(ModelVersion.model_name == "baseline")
                .values(is_active=ModelVersion.id.in_(active))
            )
    assert _failures(_with_chain(demo, "baseline")) == {}


def _first_task(context: AppContext) -> PracticeTask:
    with context.sessions() as session:
        return session.scalars(select(PracticeTask).order_by(PracticeTask.id)).first()


def _counter_out_of_step(context: AppContext) -> Callable[[], None]:
    with _raw(context) as conn:
        conn.execute(text("UPDATE training_counters SET total = total - 1"))

    def undo() -> None:
        with _raw(context) as conn:
            conn.execute(text("UPDATE training_counters SET total = total + 1"))

    return undo


def _orphan_task(context: AppContext) -> Callable[[], None]:
    task = _first_task(context)
    with _raw(context, foreign_keys=False) as conn:
        conn.execute(
            update(PracticeTask).where(PracticeTask.id == task.id).values(topic_id=uuid.uuid4())
        )

    def undo() -> None:
        with _raw(context) as conn:
            conn.execute(
                update(PracticeTask)
                .where(PracticeTask.id == task.id)
                .values(topic_id=task.topic_id)
            )

    return undo


def _result_missing(context: AppContext) -> Callable[[], None]:
    task = _first_task(context)
    with _raw(context) as conn:
        conn.execute(
            update(PracticeTask).where(PracticeTask.id == task.id).values(actual_time_seconds=None)
        )

    def undo() -> None:
        with _raw(context) as conn:
            conn.execute(
                update(PracticeTask)
                .where(PracticeTask.id == task.id)
                .values(actual_time_seconds=task.actual_time_seconds)
            )

    return undo


def _bkt_slip_plus_guess(context: AppContext) -> Callable[[], None]:
    """Active BKT parameters with S + G >= 1, stored without the fitting code's validation
    (the table's own checks allow each value on its own)."""
    with session_scope(context.sessions) as session:
        concept = session.scalars(select(Concept).order_by(Concept.name)).first()
        row = BKTSkillParams(
            concept_id=concept.id,
            algo_version_id=mastery.algo_version(session).id,
            version=99,
            l0=0.3,
            t=0.2,
            s=0.6,
            g=0.5,
            is_active=True,
        )
        session.add(row)
        session.flush()
        row_id = row.id

    def undo() -> None:
        with _raw(context) as conn:
            conn.execute(delete(BKTSkillParams).where(BKTSkillParams.id == row_id))

    return undo


@pytest.mark.parametrize(
    ("breakage", "check", "named"),
    [
        (
            _counter_out_of_step,
            "training counter",
            "total=79 counts fewer completions than the 80 completed tasks stored",
        ),
        (
            _orphan_task,
            "orphan rows",
            "1 practice_tasks row(s) point to a missing topics row (practice_tasks.topic_id)",
        ),
        (_result_missing, "task results", "1 task(s) completed without actual_time_seconds"),
        (_bkt_slip_plus_guess, "active BKT parameters", "v99: s + g must be < 1"),
    ],
    ids=["counter", "orphan", "missing-result", "bkt-s-plus-g"],
)
def test_a_broken_data_invariant_fails_its_check(demo, breakage, check, named):
    context = _with_chain(demo, "baseline")
    undo = breakage(context)
    try:
        failures = _failures(context)
    finally:
        undo()
    assert list(failures) == [check], failures
    assert named in failures[check]
    assert _failures(context) == {}


@contextmanager
def _artifact_edited(context: AppContext, edit: Callable[[TopicLNIRT], None]) -> Iterator[None]:
    """The active LNIRT artifact replaced by an edited copy, then restored."""
    with context.sessions() as session:
        row = session.scalar(
            select(ModelVersion).where(
                ModelVersion.model_name == "lnirt", ModelVersion.is_active.is_(True)
            )
        )
        row_id, original = row.id, row.artifact
    model = TopicLNIRT.from_bytes(original)
    edit(model)
    with _raw(context) as conn:
        conn.execute(
            update(ModelVersion).where(ModelVersion.id == row_id).values(artifact=model.to_bytes())
        )
    try:
        yield
    finally:
        with _raw(context) as conn:
            conn.execute(
                update(ModelVersion).where(ModelVersion.id == row_id).values(artifact=original)
            )


def _negative_discrimination(model: TopicLNIRT) -> None:
    next(iter(model.models_.values())).a_[0] = -0.5


def _forget_every_person(model: TopicLNIRT) -> None:
    for part in model.models_.values():
        part.person_n_[:] = 0  # what a model that keeps no personal state would store


def test_invalid_model_parameters_fail_their_check(demo):
    context = _with_chain(demo, "lnirt")
    with _artifact_edited(context, _negative_discrimination):
        failures = _failures(context)
    assert list(failures) == ["parameters: lnirt"], failures
    assert "cannot be loaded" in failures["parameters: lnirt"]
    assert (
        "a must be > 0" in failures["parameters: lnirt"] and "-0.5" in failures["parameters: lnirt"]
    )


def test_users_with_history_served_the_population_prior_fail_personalisation(demo):
    context = _with_chain(demo, "lnirt")
    with _artifact_edited(context, _forget_every_person):
        failures = _failures(context)
    assert list(failures) == ["personalisation: lnirt"], failures
    assert "completed task(s) in" in failures["personalisation: lnirt"]
    assert "gets the population prior (is_personalized false)" in failures["personalisation: lnirt"]


def _baseline_variant(**methods) -> type[RealBaseline]:
    """A broken Baseline; it keeps the real class's name, so the stored artifact loads into it."""
    return type("Baseline", (RealBaseline,), methods)


def _leaky_update(self, row) -> None:
    """The online update, plus a leak of the user's personal offset into everyone's."""
    RealBaseline.update(self, row)
    mine = self.user_stats_[self.user_index_[str(row["user_id"])]].copy()
    self.user_stats_[: len(self.user_index_)] += 0.5 * mine


def _overconfident(self, data):
    """Predictions above 1 for hard cells and time intervals upside down."""
    out = RealBaseline._predict_validated(self, data)
    hard = data["item_id"].astype(str).str.endswith(":hard").to_numpy()
    out.loc[hard, "p_correct"] += 1.0
    out["time_p10_s"], out["time_p90_s"] = out["time_p90_s"], out["time_p10_s"].copy()
    return out


def test_an_update_that_leaks_between_users_fails_isolation(demo):
    leaky = _with_chain(demo, "baseline", baseline=_baseline_variant(update=_leaky_update))
    failures = _failures(leaky)
    assert list(failures) == ["isolation: baseline"], failures
    assert "changed the prediction of" in failures["isolation: baseline"]
    assert "after the same attempt by a new user" in failures["isolation: baseline"]


def test_predictions_out_of_range_fail_their_check(demo):
    variant = _baseline_variant(_predict_validated=_overconfident)
    failures = _failures(_with_chain(demo, "baseline", baseline=variant))
    assert list(failures) == ["prediction ranges: baseline"], failures
    detail = failures["prediction ranges: baseline"]
    assert "p is not a probability in [0, 1] in 35 prediction(s), e.g." in detail
    assert "/hard: p=1." in detail
    assert "times are not finite and ordered 0 < p10 <= median <= p90 in 105 prediction" in detail


def test_validate_refuses_a_missing_or_unmigrated_database(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("SMARTSTUDY_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("SMARTSTUDY_DATABASE_URL", raising=False)
    result = runner.invoke(app, ["validate"])
    assert result.exit_code == 1 and "no database at" in result.output
    assert not (tmp_path / "smartstudy.db").exists()  # validating created nothing
    create_engine(f"sqlite:///{tmp_path / 'smartstudy.db'}").connect().close()  # empty file
    result = runner.invoke(app, ["validate", "--json"])
    assert result.exit_code == 1
    body = json.loads(result.stdout)
    assert body["checks"] == [
        {
            "name": "database schema",
            "passed": False,
            "detail": "the database is at revision none (empty), the code expects "
            f"{head_revision()}: run `smartstudy db upgrade`",
        }
    ]
