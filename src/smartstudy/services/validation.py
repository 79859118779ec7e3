"""``smartstudy validate``: the original system's validation suite (seed 000), run against a
live database without changing it.

The checks, each answering a ``CheckResult`` (name, passed, a detail that names the problem):

- data integrity: no row points at a missing parent (every foreign key); completed tasks
  carry their result and stored values are in range; the training counter agrees with the
  completions; one active version per model family and per BKT concept;
- parameters: every active model artifact loads as the app loads it and its parameters are
  finite and in range (LNIRT: ``a, alpha > 0``, a proper person covariance); active BKT
  parameters pass ``models.bkt.core.validate_params``;
- for a sample of users x (topic, difficulty) cells, with each family as the app serves it
  (the active version caught up with the completions since):
  prediction ranges (p in [0, 1], 0 < p10 <= median <= p90, all finite); personalisation
  (a user with history is personalised where the model keeps ``is_personalized``; a user
  with no data gets the population prediction); isolation (one user's online update reaches
  another user only as population data, checked on a copy of the served model).

Every check reads in its own session, which is rolled back, never committed: loading a
served model may fit one on demand, exactly as the app would, but nothing is written.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.orm import Session

from smartstudy.models.base import ArtifactError, LearnerModel
from smartstudy.models.bkt.core import BKTParams, validate_params
from smartstudy.models.lnirt import LNIRT, DegenerateFitError, check_lnirt_parameters
from smartstudy.services.context import AppContext
from smartstudy.services.errors import CannotPredictError
from smartstudy.services.predictor import PredictionService, completed_interactions, item_key
from smartstudy.services.tasks import MAX_TASK_SECONDS, TRAINING_COUNTER
from smartstudy.store.migrate import current_revision, head_revision
from smartstudy.store.orm import (
    DIFFICULTIES,
    Base,
    BKTSkillParams,
    BKTUserSkillState,
    Concept,
    MasterySnapshot,
    ModelVersion,
    PracticeTask,
    Topic,
    TrainingCounter,
    User,
)
from smartstudy.store.repositories import tasks as tasks_repo

#: Problems named in one detail line; the rest are counted.
SHOWN_PROBLEMS = 3
#: Topics whose cells are predicted (a random sample of them when there are more).
MAX_TOPICS = 30
_COLUMNS = ("p_correct", "time_median_s", "time_p10_s", "time_p90_s")


#: A data check's problems (empty when it passes) and its detail when it passes.
Problems = tuple[list[str], str]
DataCheck = Callable[[Session], Problems]


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _result(name: str, problems: list[str], ok_detail: str) -> CheckResult:
    """Passed with ``ok_detail`` when there is no problem, else failed naming the first few."""
    if not problems:
        return CheckResult(name, True, ok_detail)
    shown = "; ".join(problems[:SHOWN_PROBLEMS])
    more = len(problems) - SHOWN_PROBLEMS
    return CheckResult(name, False, shown + (f"; and {more} more" if more > 0 else ""))


@contextmanager
def _reading(context: AppContext) -> Iterator[Session]:
    """A session that is always rolled back: validation never writes."""
    session = context.sessions()
    try:
        yield session
    finally:
        session.rollback()
        session.close()


def _guarded(name: str, check: Callable[[], list[CheckResult]]) -> list[CheckResult]:
    """A check that crashes fails with the reason instead of stopping the others."""
    try:
        return check()
    except Exception as exc:
        return [CheckResult(name, False, f"the check could not run: {type(exc).__name__}: {exc}")]


def run_checks(context: AppContext, *, sample_users: int = 20, seed: int = 0) -> list[CheckResult]:
    """Every check against the database of ``context``, in the order of the module docstring."""
    results = _guarded("database schema", lambda: [check_schema(context)])
    if not results[0].passed:
        return results  # nothing else can be read reliably
    for name, check in DATA_CHECKS.items():

        def data(name: str = name, check: DataCheck = check) -> list[CheckResult]:
            with _reading(context) as session:
                return [_result(name, *check(session))]

        results += _guarded(name, data)
    try:
        with _reading(context) as session:
            sample = draw_sample(session, sample_users, seed)
    except Exception as exc:  # e.g. a completed task the app itself could not read
        reason = f"could not read the completed tasks: {type(exc).__name__}: {exc}"
        return [*results, CheckResult("served models", False, reason)]
    # A fresh prediction service: the served copies it loads belong to this run alone.
    service = PredictionService(context.predictor.chain, context.predictor.factories)
    for family in service.chain:
        results += _guarded(
            f"parameters: {family}",
            lambda family=family: model_checks(context, service, family, sample),
        )
    return results


# -- data integrity ------------------------------------------------------------------------
def check_schema(context: AppContext) -> CheckResult:
    current, head = current_revision(context.engine), head_revision()
    if current != head:
        return CheckResult(
            "database schema",
            False,
            f"the database is at revision {current or 'none (empty)'}, the code expects "
            f"{head}: run `smartstudy db upgrade`",
        )
    return CheckResult("database schema", True, f"at revision {head}")


def check_orphan_rows(session: Session) -> Problems:
    """Every foreign key of the schema: no row may point at a parent that is gone (tasks
    whose user or topic was deleted, quiz answers without their question, mastery of
    missing concepts, ...)."""
    problems, checked = [], 0
    for table in Base.metadata.sorted_tables:
        for fk in sorted(table.foreign_keys, key=lambda f: f.parent.name):
            child, parent = fk.parent, fk.column
            checked += 1
            missing = session.scalar(
                select(func.count())
                .select_from(table)
                .where(child.is_not(None), ~exists().where(parent == child))
            )
            if missing:
                problems.append(
                    f"{missing} {table.name} row(s) point to a missing {parent.table.name} "
                    f"row ({table.name}.{child.name})"
                )
    return problems, f"{checked} references checked, none dangling"


def check_task_results(session: Session) -> Problems:
    """Completed tasks carry outcome and time; stored values lie in their ranges."""
    t = PracticeTask
    done = t.completed_at.is_not(None)
    rules = (
        (and_(done, t.is_correct.is_(None)), "completed without is_correct"),
        (and_(done, t.actual_time_seconds.is_(None)), "completed without actual_time_seconds"),
        (and_(done, t.started_at.is_(None)), "completed without started_at"),
        (
            and_(~done, or_(t.is_correct.is_not(None), t.actual_time_seconds.is_not(None))),
            "not completed but carrying a result",
        ),
        (
            or_(t.actual_time_seconds <= 0, t.actual_time_seconds > MAX_TASK_SECONDS),
            f"with actual_time_seconds outside (0, {MAX_TASK_SECONDS}]",
        ),
        (
            or_(t.predicted_correct < 0, t.predicted_correct > 1),
            "with predicted_correct outside [0, 1]",
        ),
        (
            or_(
                t.predicted_time_p10_s <= 0,
                t.predicted_time_p10_s > t.predicted_time_median_s,
                t.predicted_time_median_s > t.predicted_time_p90_s,
            ),
            "with predicted times not ordered 0 < p10 <= median <= p90",
        ),
    )
    problems = []
    for condition, what in rules:
        ids = session.scalars(select(t.id).where(condition).order_by(t.id)).all()
        if ids:
            problems.append(f"{len(ids)} task(s) {what} (e.g. task {ids[0]})")
    n = session.scalar(select(func.count()).select_from(t).where(done)) or 0
    return problems, f"{n} completed tasks, all with valid results"


def check_mastery_values(session: Session) -> Problems:
    """Mastery probabilities in [0, 1] and attempt counts >= 0, current and in history."""
    problems = []
    for model in (BKTUserSkillState, MasterySnapshot):
        bad = session.scalar(
            select(func.count())
            .select_from(model)
            .where(or_(model.p_mastery < 0, model.p_mastery > 1, model.n_attempts < 0))
        )
        if bad:
            problems.append(
                f"{bad} {model.__tablename__} row(s) with p_mastery outside [0, 1] "
                "or a negative n_attempts"
            )
    return problems, "mastery probabilities and attempt counts in range"


def check_training_counter(session: Session) -> Problems:
    """The counter's invariant, read from ``services.tasks`` and ``services.training``:
    every completion (and every imported task) adds one to ``count`` and to ``total`` in the
    transaction that stores it; a training claim resets ``count`` only; deleting an account
    removes its tasks but never lowers ``total``. So 0 <= count <= total, and total >= the
    completed tasks stored (equal while no account with tasks has been deleted)."""
    counter = session.get(TrainingCounter, TRAINING_COUNTER)
    completed = tasks_repo.completed_count(session)
    if counter is None:
        missing = f"no {TRAINING_COUNTER!r} counter row, but {completed} completed tasks"
        return ([missing] if completed else []), "no completions yet"
    count, total = counter.count, counter.total
    problems = []
    if count < 0 or total < 0:
        problems.append(f"negative training counter: count={count}, total={total}")
    if count > total:
        problems.append(
            f"training counter count={count} is more than total={total}: completions since "
            "the last training cannot outnumber all completions"
        )
    if total < completed:
        problems.append(
            f"training counter total={total} counts fewer completions than the {completed} "
            "completed tasks stored"
        )
    ok = f"total={total} >= {completed} completed tasks stored; count={count} since the last claim"
    return problems, ok


def check_active_model_versions(session: Session) -> Problems:
    """At most one active version per model family, marked active and with an artifact."""
    rows = session.execute(
        select(
            ModelVersion.model_name,
            ModelVersion.version,
            ModelVersion.status,
            ModelVersion.artifact.is_(None),
        )
        .where(ModelVersion.is_active.is_(True))
        .order_by(ModelVersion.model_name, ModelVersion.version)
    ).all()
    by_family: dict[str, list[int]] = {}
    problems = []
    for name, version, status, no_artifact in rows:
        by_family.setdefault(name, []).append(version)
        if status != "active":
            problems.append(f"{name} v{version} is active but its status is {status!r}")
        if no_artifact:
            problems.append(f"{name} v{version} is active but has no artifact")
    for name, versions in by_family.items():
        if len(versions) > 1:
            listed = ", ".join(f"v{v}" for v in versions)
            problems.insert(
                0, f"model family {name} has {len(versions)} active versions ({listed})"
            )
    return problems, f"{len(by_family)} families with one active version each"


def check_active_bkt_parameters(session: Session) -> Problems:
    """One active parameter set per concept, each passing ``validate_params``."""
    rows = session.execute(
        select(BKTSkillParams, Concept.name)
        .join(Concept, Concept.id == BKTSkillParams.concept_id, isouter=True)
        .where(BKTSkillParams.is_active.is_(True))
        .order_by(BKTSkillParams.concept_id, BKTSkillParams.version)
    ).all()
    per_concept: dict[uuid.UUID, int] = {}
    problems = []
    for row, concept in rows:
        per_concept[row.concept_id] = per_concept.get(row.concept_id, 0) + 1
        label = f"concept {concept or row.concept_id} v{row.version}"
        params = BKTParams(l0=row.l0, t=row.t, s=row.s, g=row.g, f=row.f)
        problems += [f"{label}: {problem}" for problem in validate_params(params)]
        if not row.is_valid:
            problems.append(f"{label} is active but marked invalid")
    for concept_id, n in per_concept.items():
        if n > 1:
            problems.insert(0, f"concept {concept_id} has {n} active BKT parameter sets")
    return problems, f"{len(per_concept)} concepts with one valid active parameter set"


DATA_CHECKS: dict[str, DataCheck] = {
    "orphan rows": check_orphan_rows,
    "task results": check_task_results,
    "mastery values": check_mastery_values,
    "training counter": check_training_counter,
    "one active version per model family": check_active_model_versions,
    "active BKT parameters": check_active_bkt_parameters,
}


# -- the served models -----------------------------------------------------------------------
@dataclass(frozen=True)
class Sample:
    """Who and what the model checks predict for."""

    users: list[str]  # ids of users with completed tasks
    cells: list[tuple[str, str]]  # (topic id, difficulty)
    history: pd.DataFrame  # the sampled users' completed tasks (interactions schema)
    labels: dict[str, str]  # user id -> e-mail, topic id -> name


def draw_sample(session: Session, n_users: int, seed: int = 0) -> Sample:
    """Up to ``n_users`` users with completed tasks (a seeded random choice) and every
    (topic, difficulty) cell of up to ``MAX_TOPICS`` topics."""
    rng = np.random.default_rng(seed)
    ids = sorted(
        str(u)
        for u in session.scalars(
            select(PracticeTask.user_id).where(PracticeTask.completed_at.is_not(None)).distinct()
        )
    )
    users = sorted(rng.choice(ids, size=min(n_users, len(ids)), replace=False)) if ids else []
    topics = session.execute(select(Topic.id, Topic.name).order_by(Topic.id)).all()
    if len(topics) > MAX_TOPICS:
        topics = [topics[i] for i in sorted(rng.choice(len(topics), MAX_TOPICS, replace=False))]
    labels = {str(t): name for t, name in topics}
    chosen = [uuid.UUID(u) for u in users]
    labels |= {
        str(u): email
        for u, email in session.execute(select(User.id, User.email).where(User.id.in_(chosen)))
    }
    return Sample(
        users=[str(u) for u in users],
        cells=[(str(t), d) for t, _ in topics for d in DIFFICULTIES],
        history=completed_interactions(session, users=chosen),
        labels=labels,
    )


def model_checks(
    context: AppContext, service: PredictionService, name: str, sample: Sample
) -> list[CheckResult]:
    """Parameters, prediction ranges, personalisation and isolation of one model family."""
    with _reading(context) as session:
        row = session.scalar(
            select(ModelVersion).where(
                ModelVersion.model_name == name, ModelVersion.is_active.is_(True)
            )
        )
        if row is None:
            return [
                CheckResult(f"parameters: {name}", True, "no active version; the chain falls back")
            ]
        params = check_parameters(service, name, row, sample.labels)
        if not params.passed:
            return [params]
        try:
            model = service.served_model(session, name)
        except CannotPredictError as exc:
            return [params, CheckResult(f"predictions: {name}", True, f"not served: {exc}")]
    return [
        params,
        check_prediction_ranges(name, model, sample),
        check_personalisation(name, model, sample),
        check_isolation(name, model, sample),
    ]


def check_parameters(
    service: PredictionService, name: str, row: ModelVersion, labels: dict[str, str]
) -> CheckResult:
    """The active artifact loads as the app loads it; its parameters are finite and valid."""
    title = f"parameters: {name}"
    try:
        model = type(service.factories[name]()).from_bytes(row.artifact or b"")
    except ArtifactError as exc:
        return CheckResult(title, False, f"{name} v{row.version} cannot be loaded: {exc}")
    problems = []
    # The learned state exactly as the artifact stores it.
    for key, value in model._get_state().items():
        if (
            isinstance(value, np.ndarray)
            and value.dtype.kind == "f"
            and not np.isfinite(value).all()
        ):
            problems.append(f"{name} v{row.version}: {key} holds non-finite values")
    for skill, part in _lnirt_parts(model):
        try:
            check_lnirt_parameters(
                part.a_,
                part.b_,
                part.alpha_,
                part.beta_,
                part.sigma_P_,
                part.person_mean_,
                part.person_cov_,
            )
        except DegenerateFitError as exc:
            problems.append(f"{name} v{row.version}, topic {labels.get(skill, skill)}: {exc}")
    return _result(title, problems, f"v{row.version} loads; parameters finite and in range")


def _lnirt_parts(model: LearnerModel) -> list[tuple[str, LNIRT]]:
    """The LNIRT inside a model: itself, or one per topic (``TopicLNIRT``)."""
    if isinstance(model, LNIRT):
        return [("", model)]
    parts = getattr(model, "models_", {})
    return [(k, v) for k, v in sorted(parts.items()) if isinstance(v, LNIRT)]


def _frame(users: list[str], cells: list[tuple[str, str]]) -> pd.DataFrame:
    """One not-yet-attempted row per user and cell: each is predicted from the state alone."""
    pairs = [(u, t, d) for u in users for t, d in cells]
    return pd.DataFrame(
        {
            "user_id": [u for u, _, _ in pairs],
            "item_id": [item_key(t, d) for _, t, d in pairs],
            "skill_id": [t for _, t, _ in pairs],
            "correct": np.full(len(pairs), np.nan),
            "order": np.zeros(len(pairs)),
        }
    )


def _predict(model: LearnerModel, frame: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """Predictions and the mask of rows the model answers: a topic it has no fit for is
    left to the next family (``CannotPredictError``), but a NaN it returns is its own."""
    try:
        return model.predict(frame), np.ones(len(frame), dtype=bool)
    except CannotPredictError:
        pass
    out = pd.DataFrame(np.nan, index=frame.index, columns=list(_COLUMNS))
    answered = np.zeros(len(frame), dtype=bool)
    for _skill, rows in frame.groupby("skill_id", sort=False):
        try:
            part = model.predict(rows)
        except CannotPredictError:
            continue
        out.loc[part.index, part.columns] = part.to_numpy(dtype=float)
        answered[frame.index.get_indexer(rows.index)] = True
    return out, answered


def _where(frame: pd.DataFrame, i: int, labels: dict[str, str]) -> str:
    user = frame["user_id"].iat[i]
    topic, difficulty = frame["item_id"].iat[i].rsplit(":", 1)
    return f"{labels.get(user, 'a new user')}, {labels.get(topic, topic)}/{difficulty}"


def check_prediction_ranges(name: str, model: LearnerModel, sample: Sample) -> CheckResult:
    """p in [0, 1]; 0 < p10 <= median <= p90; everything finite (a new user included)."""
    frame = _frame([*sample.users, f"new-{uuid.uuid4()}"], sample.cells)
    pred, answered = _predict(model, frame)
    p, med, lo, hi = (pred[c].to_numpy(dtype=float) for c in _COLUMNS)
    with np.errstate(invalid="ignore"):
        kinds = [
            ("p is not a probability in [0, 1]", ~(np.isfinite(p) & (p >= 0) & (p <= 1)), False),
            (
                "times are not finite and ordered 0 < p10 <= median <= p90",
                ~(np.isfinite(lo) & np.isfinite(hi) & (lo > 0) & (lo <= med) & (med <= hi)),
                True,
            ),
        ]
    problems = []
    for what, bad, about_time in kinds:
        if about_time and not getattr(model, "predicts_time", False):
            continue
        rows = np.flatnonzero(answered & bad)
        if len(rows):
            i = rows[0]
            problems.append(
                f"{what} in {len(rows)} prediction(s), e.g. {_where(frame, i, sample.labels)}: "
                f"p={p[i]:.4g}, p10={lo[i]:.4g}, median={med[i]:.4g}, p90={hi[i]:.4g}"
            )
    return _result(
        f"prediction ranges: {name}",
        problems,
        f"{int(answered.sum())} of {len(frame)} predictions answered, all in range "
        f"({len(sample.users) + 1} users x {len(sample.cells)} cells)",
    )


def check_personalisation(name: str, model: LearnerModel, sample: Sample) -> CheckResult:
    """A user with history is personalised where the model keeps ``is_personalized``; a
    user with no data gets the population prediction (two new users get the same one)."""
    problems = []
    new = [f"new-{uuid.uuid4()}", f"new-{uuid.uuid4()}"]
    first, second = (_predict(model, _frame([u], sample.cells))[0] for u in new)
    differ = ~np.isclose(
        first.to_numpy(float), second.to_numpy(float), rtol=0, atol=1e-12, equal_nan=True
    )
    for i in np.flatnonzero(differ.any(axis=1)):
        cell = _where(_frame([new[0]], sample.cells), i, sample.labels)
        problems.append(f"two users with no data get different predictions ({cell})")
    person_state = getattr(model, "person_state", None)
    if person_state is None:
        ok = "no is_personalized flag in this family; a new user gets the population prediction"
        return _result(f"personalisation: {name}", problems, ok)
    pairs = sample.history.groupby(["user_id", "skill_id"]).size()
    personalised = 0
    for (user, topic), n in pairs.items():
        try:
            state = person_state(user, topic)
        except CannotPredictError:
            continue  # no model for this topic: the chain falls back
        if state["is_personalized"]:
            personalised += 1
        else:
            problems.append(
                f"{sample.labels.get(user, user)} has {n} completed task(s) in "
                f"{sample.labels.get(topic, topic)} but gets the population prior "
                "(is_personalized false)"
            )
        if person_state(new[0], topic)["is_personalized"]:
            problems.append(
                f"a user with no data is personalised in {sample.labels.get(topic, topic)}"
            )
    ok = f"{personalised} (user, topic) pairs with history personalised; new users get the prior"
    return _result(f"personalisation: {name}", problems, ok)


def _clone(model: LearnerModel) -> LearnerModel:
    return type(model).from_bytes(model.to_bytes())


def check_isolation(name: str, model: LearnerModel, sample: Sample) -> CheckResult:
    """One user's online update reaches other users only as population data: it moves every
    other user's predictions no more than the same attempt by a new user would (less, where
    a model caps one user's weight in population statistics). Done on copies of the served
    model; for a family whose shared parameters stay fixed between trainings (LNIRT), the
    others' predictions do not move at all."""
    title = f"isolation: {name}"
    if len(sample.users) < 2 or sample.history.empty:
        return CheckResult(title, True, "fewer than two users with history; nothing to compare")
    mover = str(sample.history["user_id"].value_counts().idxmax())
    last = sample.history[sample.history["user_id"] == mover].iloc[-1]
    row = {k: last[k] for k in ("user_id", "item_id", "skill_id", "correct", "rt_seconds")}
    others = _frame([u for u in sample.users if u != mover], sample.cells)
    by_mover, by_new = _clone(model), _clone(model)
    by_mover.update(row)
    by_new.update({**row, "user_id": f"new-{uuid.uuid4()}"})
    base = _predict(model, others)[0].to_numpy(float)
    a, b = _predict(by_mover, others)[0], _predict(by_new, others)[0]
    shift_mover = np.nan_to_num(np.abs(a.to_numpy(float) - base))
    shift_new = np.nan_to_num(np.abs(b.to_numpy(float) - base))
    moved = shift_mover > shift_new + 1e-9
    problems = [
        f"one attempt by {sample.labels.get(mover, mover)} changed the prediction of "
        f"{_where(others, i, sample.labels)}: p={a['p_correct'].iat[i]:.4f} instead of "
        f"{b['p_correct'].iat[i]:.4f} after the same attempt by a new user"
        for i in np.flatnonzero(moved.any(axis=1))
    ]
    users = others["user_id"].nunique()
    return _result(
        title,
        problems,
        f"an update by one user left {users} other users' predictions as a new user's would",
    )
