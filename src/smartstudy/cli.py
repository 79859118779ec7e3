"""The ``smartstudy`` command line (Typer + Rich)."""

from __future__ import annotations

import errno
import json
import logging
import os
import sys
import uuid
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import click
import typer
from rich.console import Console
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from typer.core import TyperGroup

import smartstudy.threads  # noqa: F401 (first: before NumPy is loaded)
from smartstudy import __version__
from smartstudy.config import Settings, private_dir
from smartstudy.services.context import AppContext
from smartstudy.services.errors import ServiceError
from smartstudy.store.db import (
    MIB,
    Outage,
    StorageProblem,
    classify_outage,
    database_problem,
    error_reason,
    folder_problem,
    safe_url,
    session_scope,
    sqlite_file,
)

if TYPE_CHECKING:
    from smartstudy.services.mastery import FitOptions, FitOutcome


class _Commands(TyperGroup):
    """Every command: a database or disk failure ends it with one line, not a traceback."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except (sa_exc.DBAPIError, sa_exc.TimeoutError, OSError) as exc:
            message = _storage_failure(exc)
            if message is None:
                raise
            raise fail(message) from None


app = typer.Typer(
    help="SmartStudy: study platform with a learner-modelling engine.",
    no_args_is_help=True,
    add_completion=False,
    cls=_Commands,
)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
users_app = typer.Typer(help="Accounts.", no_args_is_help=True)
simulate_app = typer.Typer(help="Simulated learners.", no_args_is_help=True)
questions_app = typer.Typer(help="The quiz question bank as CSV.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
app.add_typer(simulate_app, name="simulate")
app.add_typer(questions_app, name="questions")

console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


def _context(*, data_dir: bool = False, settings: Settings | None = None) -> AppContext:
    """The app context on a checked, migrated database; ``data_dir``: the command writes
    in the data folder too (the secret key, the demo's credentials)."""
    from smartstudy.jobs.celery_app import BrokerError

    try:
        context = AppContext.from_settings(settings or Settings())
    except BrokerError as exc:
        raise fail(str(exc)) from None
    _check_storage(context, data_dir=data_dir)
    context.migrate()
    return context


def _check_broker(settings: Settings) -> None:
    """With SMARTSTUDY_JOBS=celery, refuse to start (one line) when Redis does not answer."""
    from smartstudy.jobs.celery_app import broker_problem

    if settings.jobs == "celery" and (problem := broker_problem(settings)):
        raise fail(problem)


def _start_jobs(context: AppContext) -> None:
    """Before serving or working: fail the jobs whose process died (queueing them again)
    and hand every queued job to the runner."""
    from smartstudy.jobs import durable

    for retry in durable.recover_and_wake(context):
        console.print(
            f"job {retry.retry_of} ({retry.kind}) died with its process: "
            f"queued again, attempt {retry.attempts}",
            highlight=False,
        )


def _check_storage(context: AppContext, *, data_dir: bool) -> None:
    """Refuse to start, in one line naming the setting, when the database does not answer
    or a folder it writes in is read-only or (nearly) full."""
    settings = context.settings
    folders: dict[Path, str] = {}
    db_file = sqlite_file(context.engine)
    if db_file is not None:
        folders[db_file.parent] = settings.database_setting
    if data_dir:
        folders.setdefault(private_dir(settings.data_dir), "SMARTSTUDY_DATA_DIR")
    for folder, setting in folders.items():
        problem = folder_problem(folder, settings.min_free_disk_mb * MIB)
        if problem is not None:
            if problem.kind is Outage.FULL:
                setting += ", SMARTSTUDY_MIN_FREE_DISK_MB"
            raise fail(problem.describe(setting))
    problem = database_problem(context.engine)
    if problem is not None:
        raise fail(problem.describe(settings.database_setting))


def _storage_failure(exc: BaseException) -> str | None:
    """One line for a database or disk failure (naming the setting behind the path or URL),
    or None for an exception that is a bug."""
    settings = Settings()
    url = settings.database_url or settings.default_database_url
    if isinstance(exc, OSError):
        if exc.filename is None and classify_outage(exc) is None:
            return None
        where = Path(exc.filename or settings.data_dir)
        setting = _setting_for(where, settings, url)
        kind = classify_outage(exc)
        if kind is None and exc.errno in (errno.EACCES, errno.EPERM):
            kind = Outage.READ_ONLY
        if kind is None:
            return f"cannot use {where}{f' ({setting})' if setting else ''}: {error_reason(exc)}"
        return StorageProblem(kind, str(where), error_reason(exc)).describe(setting)
    kind = classify_outage(exc)
    if kind is None:
        return None
    parsed = make_url(url)
    where = parsed.database if parsed.get_backend_name() == "sqlite" else safe_url(url)
    return StorageProblem(kind, str(where), error_reason(exc)).describe(settings.database_setting)


def _setting_for(path: Path, settings: Settings, url: str) -> str | None:
    """The environment variable that chose ``path``: the data folder or the database URL."""
    parsed = make_url(url)
    candidates = [(settings.data_dir, "SMARTSTUDY_DATA_DIR")]
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        candidates.insert(0, (Path(parsed.database).parent, settings.database_setting))
    for folder, setting in candidates:
        if path == folder or folder in path.parents:
            return setting
    return None


def _version(value: bool) -> None:
    if value:
        console.print(f"smartstudy {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show version.")
    ] = False,
) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    demo: Annotated[
        bool, typer.Option("--demo", help="Add demo subjects, students and history first.")
    ] = False,
    workers: Annotated[
        int, typer.Option(min=1, max=64, help="API processes (more than 1: on PostgreSQL).")
    ] = 1,
) -> None:
    """Start the web app and API (e.g. `smartstudy serve --demo`, then open http://127.0.0.1:8000/docs)."""
    import uvicorn

    from smartstudy.api.app import create_app

    context = _context(data_dir=demo)
    _check_broker(context.settings)
    _observability(context.settings)
    _ = context.settings.resolved_secret_key  # made (or failing) now, not at the first request
    console.print(f"database: {safe_url(context.settings.resolved_database_url)}", highlight=False)
    if demo:
        _seed_demo(context)
    if workers > 1:
        context.close()
        _serve_processes(host, port, workers, context.settings)
        return
    _start_jobs(context)
    # A new version is loaded beside the one serving, then swapped in: no request waits.
    context.predictor.load_in_background = True
    context.predictor.sync_interval = context.settings.sync_interval
    api = create_app(context=context, warm_up=True, freeze=True)
    console.print(f"SmartStudy on http://{host}:{port}  (API docs: /docs)", highlight=False)
    # On SIGTERM: open requests get a few seconds, then the running job is asked to stop
    # (or marked interrupted and queued again): the process is gone well within 10 s.
    # log_config=None: uvicorn's lines go through our handler (SMARTSTUDY_LOG_FORMAT); the
    # app writes the access log itself, with request ids and route templates.
    uvicorn.run(
        api,
        host=host,
        port=port,
        log_level=context.settings.log_level.lower(),
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=3,
    )


def _serve_processes(host: str, port: int, workers: int, settings: Settings) -> None:
    """``serve --workers N``: uvicorn starts N processes, each building its own app from the
    environment (``api.app.serving_process_app``). Their request metrics are summed through
    a private prometheus-client multiprocess folder, made here unless one is set."""
    import shutil
    import tempfile

    import uvicorn

    from smartstudy.api.processes import Supervisor, has_reuse_port
    from smartstudy.observability.metrics import MULTIPROC_ENV

    made = None
    if not os.environ.get(MULTIPROC_ENV):
        made = tempfile.mkdtemp(prefix="smartstudy-metrics-")
        os.environ[MULTIPROC_ENV] = made
    console.print(f"SmartStudy on http://{host}:{port} with {workers} processes", highlight=False)
    try:
        if has_reuse_port():
            # One socket per process: the kernel spreads the connections (api.processes).
            problem = Supervisor(host, port, workers, settings.log_level.lower()).run()
            if problem is not None:
                raise fail(problem)
            return
        uvicorn.run(
            "smartstudy.api.app:serving_process_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=settings.log_level.lower(),
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=3,
        )
    finally:
        if made is not None:
            shutil.rmtree(made, ignore_errors=True)


def _observability(settings: Settings) -> None:
    """Log lines as ``SMARTSTUDY_LOG_FORMAT`` says; refuse to start on an unusable
    ``PROMETHEUS_MULTIPROC_DIR``."""
    from smartstudy.observability.logs import configure_logging
    from smartstudy.observability.metrics import multiprocess_problem

    if (problem := multiprocess_problem()) is not None:
        raise fail(problem)
    configure_logging(settings.log_format, settings.log_level)


@app.command()
def worker(
    concurrency: Annotated[
        int, typer.Option(min=1, help="Jobs run at once (1: in this process).")
    ] = 1,
    nice: Annotated[
        int,
        typer.Option(
            min=0,
            max=19,
            help="Lower this worker's CPU priority by this much (0: as the API processes). "
            "On a machine shared with API processes, requests then come before trainings.",
        ),
    ] = 10,
) -> None:
    """Run background jobs from the Redis queue (needs SMARTSTUDY_JOBS=celery and
    SMARTSTUDY_REDIS_URL), e.g. `smartstudy worker --concurrency 2`."""
    from smartstudy.jobs.celery_app import run_worker

    if Settings().jobs != "celery":
        raise fail("`smartstudy worker` needs SMARTSTUDY_JOBS=celery (and SMARTSTUDY_REDIS_URL)")
    lower_priority(nice)
    context = _context()
    _check_broker(context.settings)
    _observability(context.settings)
    _start_jobs(context)
    console.print(
        f"worker on queue {context.settings.job_queue!r}, database: "
        f"{safe_url(context.settings.resolved_database_url)}",
        highlight=False,
    )
    try:
        code = run_worker(context, concurrency=concurrency)
    finally:
        context.close()
    if code:
        raise typer.Exit(code)


def lower_priority(by: int) -> None:
    """``os.nice(by)`` for every thread of this process. On Linux a priority belongs to a
    thread, and new threads take their creator's: the numerical libraries start their
    threads on import, before a command runs, and would stay at the old priority."""
    os.nice(by)
    value = os.getpriority(os.PRIO_PROCESS, 0)  # this thread's, now lowered
    tasks = Path("/proc/self/task")
    if not tasks.is_dir():
        return
    for task in tasks.iterdir():
        try:
            os.setpriority(os.PRIO_PROCESS, int(task.name), value)
        except (OSError, ValueError):  # a thread that has ended meanwhile
            continue


def _seed_demo(context: AppContext) -> None:
    from smartstudy.services.demo import CREDENTIALS_FILE, seed_demo, write_credentials
    from smartstudy.store.db import unit_of_work

    with console.status("adding demo data..."), unit_of_work(context.sessions, hold=True) as uow:
        result = seed_demo(context, uow)
    # Only now, with the accounts committed, do their passwords go to the file.
    write_credentials(context.settings.data_dir, result)
    creds = context.settings.data_dir / CREDENTIALS_FILE
    if result.created:
        console.print(
            f"demo data added: {result.students} students, {result.tasks} completed tasks",
            highlight=False,
        )
    else:
        console.print("demo data already present", highlight=False)
    if creds.is_file():
        console.print(f"demo accounts and passwords: {creds}", highlight=False)


@app.command()
def demo() -> None:
    """Add the demo catalogue, accounts and history to the database (once)."""
    _seed_demo(_context(data_dir=True))


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create the database or bring it to the newest schema."""
    from smartstudy.store.migrate import current_revision

    context = _context()
    console.print(
        f"database at revision {current_revision(context.engine)}: "
        f"{safe_url(context.settings.resolved_database_url)}",
        highlight=False,
    )


@users_app.command("create-admin")
def create_admin(
    email: Annotated[str, typer.Option(help="E-mail address used to log in.")],
    password: Annotated[
        str,
        typer.Option(
            prompt=True,
            hide_input=True,
            confirmation_prompt=True,
            envvar="SMARTSTUDY_ADMIN_PASSWORD",
            help="At least 8 characters; asked for if not given.",
        ),
    ],
    name: Annotated[str, typer.Option(help="Display name.")] = "",
) -> None:
    """Create an administrator account (e.g. `smartstudy users create-admin --email me@x.org`)."""
    from smartstudy.services import audit
    from smartstudy.services.accounts import create_user

    context = _context()
    try:
        with session_scope(context.sessions) as session:
            user = create_user(session, email, password, name, role="admin")
            audit.record(session, None, "user.create_admin", "user", user.id, {"email": user.email})
            email = user.email
    except ServiceError as exc:
        raise fail(str(exc)) from None
    console.print(f"admin {email} created", highlight=False)


@users_app.command("set-password")
def set_password(
    email: Annotated[str, typer.Option(help="E-mail address of the account.")],
    generate: Annotated[
        bool,
        typer.Option("--generate", help="Make a random password and print it, instead of asking."),
    ] = False,
) -> None:
    """Give an account a new password, for someone who forgot theirs (e.g. `smartstudy users
    set-password --email ada@example.org`): the account's sessions and tokens end, a log-in
    lock-out is lifted, and the audit log records it."""
    from smartstudy.services import user_admin
    from smartstudy.services.accounts import get_user_by_email
    from smartstudy.services.security import random_password

    context = _context()
    with session_scope(context.sessions) as session:
        found = get_user_by_email(session, email)
        user_id = found.id if found is not None else None
    if user_id is None:
        raise fail(f"no account has the e-mail address {email.strip()!r}")
    if generate:
        password = random_password()
    else:
        password = typer.prompt("New password", hide_input=True, confirmation_prompt=True)
    try:
        with session_scope(context.sessions) as session:
            user = user_admin.set_password(session, None, user_id, password)
            email = user.email
    except ServiceError as exc:
        raise fail(str(exc)) from None
    console.print(f"new password set for {email}", highlight=False)
    if generate:
        console.print(f"password: {password}", highlight=False, soft_wrap=True)
    console.print("Ask its owner to change it on their settings page.", highlight=False)


@app.command("import")
def import_csv(
    file: Annotated[Path, typer.Argument(help="CSV of completed tasks (see README).")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only validate the file.")] = False,
) -> None:
    """Import completed practice tasks from a CSV: every row is checked, then all or nothing.

    Columns: email, subject, topic, difficulty, correct, rt_seconds[, completed_at][, description].
    """
    from smartstudy.services.importing import ImportErrors, import_tasks_csv
    from smartstudy.store.db import unit_of_work

    context = _context()
    try:
        with unit_of_work(context.sessions) as uow:
            result = import_tasks_csv(context, uow, file, dry_run=dry_run)
            if not dry_run:
                # A training the import made due runs first; then, as the rows are
                # back-dated, every served model is retrained on them.
                context.runner.wait_idle()
                for name in context.predictor.chain:
                    context.predictor.train(uow.session, name)
    except ImportErrors as exc:
        err.print(f"[bold red]{file}: import refused, nothing was written[/]", highlight=False)
        err.print(str(exc), highlight=False, markup=False)
        raise typer.Exit(1) from None
    if dry_run:
        console.print(f"{file}: {result.rows} rows are valid (nothing written)")
        return
    console.print(
        f"imported {result.rows} tasks ({result.subjects_created} new subjects, "
        f"{result.topics_created} new topics)",
        highlight=False,
    )


@questions_app.command("import")
def import_questions(
    file: Annotated[Path, typer.Argument(help="CSV of quiz questions (see README).")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only validate the file.")] = False,
) -> None:
    """Add quiz questions from a CSV: every row is checked, then all or nothing; a question
    its concept already has is skipped.

    Columns: subject, topic, concept, question, answer_1 … answer_8, right[, difficulty].
    """
    from smartstudy.services.importing import ImportErrors
    from smartstudy.services.question_bank import import_questions_csv

    context = _context()
    try:
        with session_scope(context.sessions) as session:
            result = import_questions_csv(session, None, file, dry_run=dry_run)
    except ImportErrors as exc:
        err.print(f"[bold red]{file}: import refused, nothing was written[/]", highlight=False)
        err.print(str(exc), highlight=False, markup=False)
        raise typer.Exit(1) from None
    done = "would add" if dry_run else "added"
    console.print(
        f"{file}: {result.rows} rows; {done} {result.added} questions, skipped "
        f"{result.skipped} already in the bank ({result.subjects_created} new subjects, "
        f"{result.topics_created} new topics, {result.concepts_created} new concepts)"
        + (" (nothing written)" if dry_run else ""),
        highlight=False,
    )


@questions_app.command("export")
def export_questions(
    out: Annotated[
        Path | None, typer.Option("--out", help="Write here instead of standard output.")
    ] = None,
) -> None:
    """Every quiz question as CSV, in the format `smartstudy questions import` reads."""
    import csv
    import io

    from smartstudy.services.question_bank import export_questions_csv

    context = _context()
    with session_scope(context.sessions) as session:
        text = export_questions_csv(session)
    if out is None:
        sys.stdout.write(text)
        return
    out.write_text(text, encoding="utf-8")
    rows = sum(1 for _ in csv.reader(io.StringIO(text))) - 1  # a question may span lines
    console.print(f"{out}: {rows} questions", highlight=False)


@app.command()
def train(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Train every model family of the prediction chain now, the slow ones included (a
    background training refits those only once their data have grown enough); a new version
    becomes active only if it validates at least as well as the active one."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from smartstudy.services.training import run_training

    context = _context()
    chain = context.predictor.chain
    if as_json:
        job = run_training(context, refit_all=True)
    else:
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} families"),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=err, transient=True) as bar:
            task = bar.add_task("training", total=len(chain))

            def progress(name: str, stage: str) -> None:
                if stage == "done":
                    bar.advance(task)
                else:
                    bar.update(task, description=f"{name}: {stage}")

            job = run_training(context, progress=progress, refit_all=True)
    if as_json:
        sys.stdout.write(json.dumps({"status": job.status, "summary": job.summary}) + "\n")
    else:
        summary = job.summary
        console.print(
            f"{summary.get('rows', 0)} completed tasks: {summary.get('training_rows', 0)} to "
            f"train on, {summary.get('holdout_rows', 0)} of held-out students to validate on",
            highlight=False,
        )
        for name in chain:
            info = summary.get(name, {})
            if "error" in info:
                err.print(f"{name}: failed: {info['error']}", highlight=False, markup=False)
            elif "skipped" in info:
                console.print(f"{name}: skipped ({info['skipped']})", highlight=False)
            else:
                console.print(
                    f"{name}: version {info.get('version')} {info.get('status')} "
                    f"in {info.get('fit_seconds')} s; {info.get('decision')}",
                    highlight=False,
                )
    if job.status != "succeeded":
        raise typer.Exit(1)


@app.command()
def validate(
    sample_users: Annotated[
        int, typer.Option(min=1, help="Users whose predictions are checked (e.g. 50).")
    ] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Check the configured database without changing it: data integrity, the parameters of
    every active model, prediction ranges, personalisation and isolation between users.
    Exits 1 if any check fails (e.g. `smartstudy validate --json`)."""
    from rich.table import Table
    from rich.text import Text
    from sqlalchemy.engine import make_url

    from smartstudy.services.validation import run_checks

    settings = Settings()
    url = make_url(settings.resolved_database_url)
    if url.get_backend_name() == "sqlite" and not Path(url.database or "").is_file():
        raise fail(f"no database at {url.database}: run `smartstudy db upgrade` first")
    # No migration here: validating must not change the database it checks.
    context = AppContext.from_settings(settings)
    try:
        with console.status("validating...") if not as_json else nullcontext():
            results = run_checks(context, sample_users=sample_users)
    finally:
        context.close()
    failed = [r for r in results if not r.passed]
    if as_json:
        body = {"passed": not failed, "checks": [r.to_dict() for r in results]}
        sys.stdout.write(json.dumps(body, indent=2) + "\n")
    else:
        table = Table(title=f"validation of {url.render_as_string(hide_password=True)}")
        for col in ("check", "result", "detail"):
            table.add_column(col)
        for r in results:
            mark = "[green]pass[/]" if r.passed else "[bold red]FAIL[/]"
            table.add_row(r.name, mark, Text(r.detail))
        (console if console.is_terminal else Console(width=200)).print(table)
    if failed:
        for r in failed:
            err.print(f"FAILED {r.name}: {r.detail}", highlight=False, markup=False)
        raise typer.Exit(1)


@app.command("analyze-predictions")
def analyze_predictions(
    since: Annotated[
        str | None, typer.Option(help="Only tasks created from this date (YYYY-MM-DD).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """How diverse the stored predictions are (seed 004): per model, user, topic and
    difficulty, the distinct values, the saturated share (p < 0.02 or p > 0.98) and the
    spread."""
    from rich.table import Table

    from smartstudy.services.registry import analyze_predictions as analyze
    from smartstudy.store.orm import Topic, User

    start = _parse_date(since, "--since")
    context = _context()
    with session_scope(context.sessions) as session:
        result = analyze(session, start)
        users = {str(u.id): u.email for u in session.query(User).all()}
        topics = {str(t.id): t.name for t in session.query(Topic).all()}
    if as_json:
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
        return
    if not result["predictions"]:
        console.print("no stored predictions yet")
        return
    out = console if console.is_terminal else Console(width=160)
    models = Table(title=f"{result['predictions']} stored predictions, by model")
    for col in ("model", "n", "distinct p", "saturated", "mean p", "sd p", "warning"):
        models.add_column(col)
    for m in result["by_model"]:
        models.add_row(
            m["model_name"],
            str(m["n"]),
            str(m["distinct"]),
            f"{m['saturated_share']:.1%}",
            f"{m['mean']:.3f}",
            f"{m['std']:.3f}",
            m["warning"] or "",
        )
    out.print(models)
    names = {"user_id": users, "topic_id": topics, "difficulty": {}}
    for key, title in (
        ("by_user", "user_id"),
        ("by_topic", "topic_id"),
        ("by_difficulty", "difficulty"),
    ):
        table = Table(title=f"by {title.removesuffix('_id')}")
        for col in (
            title.removesuffix("_id"),
            "n",
            "distinct p",
            "distinct time",
            "saturated",
            "p range",
            "sd p",
            "sd time (s)",
        ):
            table.add_column(col)
        for row in result[key]:
            label = names[title].get(str(row[title]), str(row[title]))
            table.add_row(
                label,
                str(row["n"]),
                str(row["distinct_p"]),
                str(row["distinct_time"]),
                f"{row['saturated_share']:.1%}",
                f"{row['p_min']:.2f}–{row['p_max']:.2f}",
                f"{row['p_std']:.3f}",
                "" if row["time_std_s"] is None else f"{row['time_std_s']:.0f}",
            )
        out.print(table)


@simulate_app.command("bulk-user")
def simulate_bulk_user(
    email: Annotated[str, typer.Option(help="Account to fill (created if missing).")],
    seed: Annotated[int, typer.Option(help="Random seed of the simulated history.")] = 0,
) -> None:
    """Give an account the 600-task "bulk user" history of the original system (seed 000).

    Example: `smartstudy simulate bulk-user --email bulk@example.com`.
    """
    from smartstudy.services.simulation import simulate_bulk_user as run

    context = _context()
    with console.status("simulating 600 tasks through the service..."):
        result = run(context, email, seed=seed)
    console.print(f"{result.email}: {result.tasks} completed tasks added", highlight=False)
    if result.password:
        console.print(f"new account; password: {result.password}", highlight=False)


@simulate_app.command("cohort")
def simulate_cohort(
    students: Annotated[int, typer.Option(min=1, help="Students to add, e.g. 500.")],
    tasks: Annotated[int, typer.Option(min=1, help="Completed tasks per student, e.g. 200.")],
    seed: Annotated[int, typer.Option(help="Random seed of the simulated learners.")] = 0,
    days: Annotated[float, typer.Option(help="The histories span this many past days.")] = 30.0,
    password: Annotated[
        str | None,
        typer.Option(help="Password of every new account (default: a random one, printed)."),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(help="Database to fill instead of SMARTSTUDY_DATABASE_URL's."),
    ] = None,
) -> None:
    """Fill the database with simulated students (cohort-00001@example.com, ...) and their
    completed tasks, fast, for load tests and demos; e.g. `smartstudy simulate cohort
    --students 500 --tasks 200`. A second run adds new students after the existing ones."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from smartstudy.services.cohort import simulate_cohort as run

    if database_url is not None:
        try:
            make_url(database_url)
        except sa_exc.ArgumentError:
            raise fail(
                f"--database-url: {database_url!r} is not a database URL (e.g. "
                "sqlite:///path/to/smartstudy.db or postgresql+psycopg://user@host:5432/db)"
            ) from None
    settings = Settings(database_url=database_url) if database_url else Settings()
    context = _context(settings=settings)
    try:
        with Progress(
            *Progress.get_default_columns()[:1],
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            transient=True,
        ) as bar:
            job = bar.add_task("simulating the cohort's tasks", total=students * tasks)
            result = run(
                context,
                students,
                tasks,
                seed=seed,
                days=days,
                password=password,
                progress=lambda done, _total: bar.update(job, completed=done),
            )
    except ServiceError as exc:
        raise fail(str(exc)) from None
    finally:
        context.close()
    console.print(
        f"{result.students} students ({result.first_email} .. {result.last_email}) with "
        f"{result.tasks} completed tasks added in {result.seconds:.1f} s",
        highlight=False,
    )
    if result.password:
        console.print(f"password of every new account: {result.password}", highlight=False)
    console.print(
        "next: `smartstudy train`, so that the served models have learnt the cohort",
        highlight=False,
    )


def _parse_date(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise fail(f"{option}: {value!r} is not a date (YYYY-MM-DD or ISO 8601)") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@app.command("fit-bkt")
def fit_bkt(
    concept_id: Annotated[
        list[str] | None, typer.Option(help="Concept id to fit (repeat for several).")
    ] = None,
    all_concepts: Annotated[
        bool, typer.Option("--all", help="Fit every concept with quiz answers.")
    ] = False,
    from_date: Annotated[
        str | None, typer.Option(help="Only answers from (e.g. 2026-01-01).")
    ] = None,
    to_date: Annotated[str | None, typer.Option(help="Only answers up to this date.")] = None,
    min_attempts: Annotated[int, typer.Option(help="Attempts a concept needs.")] = 10,
    min_users: Annotated[int, typer.Option(help="Students a concept needs.")] = 3,
    l0_min: Annotated[float | None, typer.Option("--L0-min")] = None,
    l0_max: Annotated[float | None, typer.Option("--L0-max")] = None,
    t_min: Annotated[float | None, typer.Option("--T-min")] = None,
    t_max: Annotated[float | None, typer.Option("--T-max")] = None,
    s_min: Annotated[float | None, typer.Option("--S-min")] = None,
    s_max: Annotated[float | None, typer.Option("--S-max")] = None,
    g_min: Annotated[float | None, typer.Option("--G-min")] = None,
    g_max: Annotated[float | None, typer.Option("--G-max")] = None,
    restarts: Annotated[int, typer.Option(help="Random EM restarts per concept.")] = 5,
    forgets: Annotated[bool, typer.Option("--forgets", help="Also learn forgetting F.")] = False,
    activate: Annotated[
        bool, typer.Option("--activate", help="Make valid fits the active parameters.")
    ] = False,
) -> None:
    """Fit BKT parameters per concept from quiz history (EM with restarts and bounds).

    Example: `smartstudy fit-bkt --all --activate --G-max 0.3`. Exits 1 if any concept failed.
    """
    from smartstudy.services.mastery import FitOptions

    if bool(concept_id) == all_concepts:
        raise fail("give --concept-id (one or more) or --all")
    try:
        ids = None if all_concepts else [uuid.UUID(c) for c in concept_id or []]
    except ValueError:
        raise fail("--concept-id must be a concept UUID") from None
    bounds = _bkt_bounds(l0=(l0_min, l0_max), t=(t_min, t_max), s=(s_min, s_max), g=(g_min, g_max))
    options = FitOptions(
        from_date=_parse_date(from_date, "--from-date"),
        to_date=_parse_date(to_date, "--to-date"),
        min_attempts=min_attempts,
        min_users=min_users,
        bounds=bounds,
        forgets=forgets,
        n_restarts=restarts,
        activate=activate,
    )
    outcome = _fit_and_store_bkt(ids, options)
    _print_bkt_fit(outcome)
    if outcome.failed:
        raise typer.Exit(1)


def _bkt_bounds(
    **given: tuple[float | None, float | None],
) -> dict[str, tuple[float, float]]:
    """The EM bounds of each parameter given a limit on the command line; a missing end of a
    pair keeps the default bound (``models.bkt.em.DEFAULT_BOUNDS``)."""
    from smartstudy.models.bkt.em import DEFAULT_BOUNDS

    bounds = {}
    for name, (lo, hi) in given.items():
        if lo is not None or hi is not None:
            default_lo, default_hi = DEFAULT_BOUNDS[name]
            bounds[name] = (default_lo if lo is None else lo, default_hi if hi is None else hi)
    return bounds


def _fit_and_store_bkt(ids: list[uuid.UUID] | None, options: FitOptions) -> FitOutcome:
    """Fit the concepts (all with answers when ``ids`` is None) with a progress bar, record
    an audit entry when served parameters changed, and commit; one clear line on failure."""
    from rich.progress import Progress

    from smartstudy.services import audit
    from smartstudy.services.mastery import fit_concepts

    context = _context()
    session = context.sessions()
    try:
        with Progress(console=err, transient=True) as bar:
            job = bar.add_task("fitting concepts", total=None)

            def tick(_concept: uuid.UUID, _state: str) -> None:
                bar.advance(job)

            outcome = fit_concepts(session, ids, options, trigger="cli", progress=tick)
        if any(row.is_active for row in outcome.fitted.values()):
            # Served mastery parameters changed: that is an admin action worth a record.
            audit.record_bkt_fit(session, None, outcome)
        session.commit()
    except ServiceError as exc:
        session.rollback()
        raise fail(str(exc)) from None
    finally:
        session.close()
    return outcome


def _print_bkt_fit(outcome: FitOutcome) -> None:
    """A table of every concept's result (fitted, skipped or failed) and the totals."""
    from rich.table import Table

    table = Table(title=f"BKT fit, run {outcome.run.id}")
    for col in ("concept", "result", "L0", "T", "S", "G", "F", "detail"):
        table.add_column(col)
    for key, row in outcome.fitted.items():
        state = "fitted, active" if row.is_active else "fitted"
        table.add_row(
            key,
            state,
            *(f"{v:.3f}" for v in (row.l0, row.t, row.s, row.g, row.f)),
            f"v{row.version}, {row.n_attempts} answers by {row.n_users} students",
        )
    for key, why in outcome.skipped.items():
        table.add_row(key, "skipped", "", "", "", "", "", why)
    for key, why in outcome.failed.items():
        table.add_row(key, "[red]failed[/]", "", "", "", "", "", why)
    out = console if console.is_terminal else Console(width=160)
    out.print(table)
    out.print(
        f"{len(outcome.fitted)} fitted, {len(outcome.skipped)} skipped, "
        f"{len(outcome.failed)} failed",
        highlight=False,
    )


# The options of `evaluate`, declared once here so that the command reads as what it does.
_DatasetOption = Annotated[
    list[str] | None,
    typer.Option(
        help="assistments09, assistments09_dkt, cognitive_tutor, credential_form1 or mars_ib "
        "(with --all: repeat for several)."
    ),
]
_ModelOption = Annotated[
    list[str] | None,
    typer.Option(help="Model name (repeat for several), e.g. --model baseline."),
]
_ScenarioOption = Annotated[
    str | None,
    typer.Option(
        help="dominant-user: train every neural strategy on the simulated dominant-user "
        "history of seed 002 and compare them (instead of --dataset). planner: the exam "
        "planner's simulation study (simulated learners fitted on cognitive_tutor, 5 "
        "policies; --learners per seed, default 200; --seeds seeds from --seed on; "
        "--days to the exam)."
    ),
]
_SeedsOption = Annotated[
    int,
    typer.Option(help="--scenario planner and --all: number of seeds, from --seed on (5)."),
]
_DaysOption = Annotated[
    int, typer.Option(help="--scenario planner: days to the exam (14), e.g. --days 28.")
]
_SplitOption = Annotated[
    str, typer.Option(help="auto (the data set's own split if any), own, or student.")
]
_ReplayOption = Annotated[
    str | None,
    typer.Option(
        help="Stream this data set (cognitive_tutor, credential_form1 or mars_ib) through "
        "the service path on scratch databases and score the stored predictions."
    ),
]
_LearnersOption = Annotated[
    int | None,
    typer.Option(
        help="--replay: learners sampled (with --seed; 100); --scenario planner: simulated "
        "learners per seed (200)."
    ),
]
_MaxAttemptsOption = Annotated[
    int | None, typer.Option(help="--replay: at most this many attempts per learner (30).")
]
_RetrainEveryOption = Annotated[
    int | None,
    typer.Option(help="--replay: completions between trainings (default 100)."),
]
_HistoryOption = Annotated[
    int | None,
    typer.Option(
        help="--replay: start from a system in use, with this many other learners' tasks "
        "completed and trained on before the stream (0)."
    ),
]
_ReplayDatabaseOption = Annotated[
    str | None,
    typer.Option(
        help="--replay (and the replay of --all --report): a PostgreSQL server URL for the "
        "scratch databases "
        "(default: temporary SQLite files)."
    ),
]


_AllOption = Annotated[
    bool,
    typer.Option(
        "--all",
        help="Every data set and every model (narrowed by --dataset/--model), split by "
        "student over --seeds seeds, plus each data set's own split; prints the tables.",
    ),
]
_ReportOption = Annotated[
    bool,
    typer.Option(
        "--report",
        help="--all: write EVALUATION.md, its plots (evaluation/*.png) and "
        "evaluation/results.json into --out, with the replay and the published anchors.",
    ),
]
_OutOption = Annotated[
    Path | None, typer.Option(help="--all --report: folder to write into (docs).")
]
_MaxUsersOption = Annotated[
    int | None,
    typer.Option(help="--all: at most this many students per data set (seeded), quick runs."),
]
_ReplayLearnersOption = Annotated[
    int | None,
    typer.Option(help="--all --report: learners per replayed data set (100)."),
]
_NoReplayOption = Annotated[
    bool, typer.Option("--no-replay", help="--all --report: skip the replay evaluation.")
]
_ReadmeOption = Annotated[
    Path | None,
    typer.Option(
        help="--all: write the summary table into this file, between "
        "<!-- BEGIN evaluation-table --> and <!-- END evaluation-table -->."
    ),
]


@dataclass
class _AllOptions:
    """The options of `evaluate --all`."""

    datasets: list[str]
    models: list[str]
    seeds: int
    first_seed: int
    test_fraction: float
    report: bool
    out: Path
    max_users: int | None
    replay_learners: int | None
    no_replay: bool
    readme: Path | None
    database_url: str | None


@app.command()
def evaluate(
    dataset: _DatasetOption = None,
    model: _ModelOption = None,
    scenario: _ScenarioOption = None,
    seeds: _SeedsOption = 5,
    days: _DaysOption = 14,
    split: _SplitOption = "auto",
    test_fraction: Annotated[float, typer.Option(help="Share of students held out.")] = 0.2,
    seed: Annotated[int, typer.Option(help="Seed of the split by student.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    replay: _ReplayOption = None,
    learners: _LearnersOption = None,
    max_attempts: _MaxAttemptsOption = None,
    retrain_every: _RetrainEveryOption = None,
    history: _HistoryOption = None,
    database_url: _ReplayDatabaseOption = None,
    all_: _AllOption = False,
    report: _ReportOption = False,
    out: _OutOption = None,
    max_users: _MaxUsersOption = None,
    replay_learners: _ReplayLearnersOption = None,
    no_replay: _NoReplayOption = False,
    readme: _ReadmeOption = None,
) -> None:
    """Fit on training students, predict held-out students one step ahead, print metrics.

    Examples: `smartstudy evaluate --dataset credential_form1 --model baseline`,
    `smartstudy evaluate --scenario dominant-user`, `smartstudy evaluate --replay mars_ib`,
    `smartstudy evaluate --all --report --readme README.md` (writes docs/EVALUATION.md).
    """
    if all_:
        replay_options = (replay, scenario, learners, max_attempts, retrain_every, history)
        if split != "auto" or as_json or any(v is not None for v in replay_options):
            raise fail(
                "--all runs every protocol and the replay itself: leave out --split, --json, "
                "--replay, --scenario, --learners, --max-attempts, --retrain-every and "
                "--history"
            )
        given = (dataset or [], model or [], seeds, seed, test_fraction, report)
        more = (out or Path("docs"), max_users, replay_learners, no_replay, readme, database_url)
        _evaluate_all(_AllOptions(*given, *more))
        return
    if report or no_replay or any(v is not None for v in (out, max_users, replay_learners, readme)):
        raise fail(
            "--report, --out, --max-users, --replay-learners, --no-replay and --readme "
            "go with --all"
        )
    if dataset is not None and len(dataset) > 1:
        raise fail("give one --dataset (several go with --all)")
    if replay is not None:
        if dataset or model or scenario is not None:
            raise fail("--replay replaces --dataset, --model and --scenario; give one")
        _evaluate_replay(
            replay,
            (100 if learners is None else learners, history or 0),
            seed,
            max_attempts,
            retrain_every,
            database_url,
            as_json,
        )
    elif scenario is not None:
        if dataset or model:
            raise fail("--scenario replaces --dataset and --model; give one or the other")
        _evaluate_scenario(
            scenario,
            seed,
            as_json,
            learners=200 if learners is None else learners,
            seeds=seeds,
            days=days,
        )
    else:
        first = dataset[0] if dataset else None
        _evaluate_dataset(first, model or [], split, test_fraction, seed, as_json)


def _evaluate_dataset(
    dataset: str | None,
    model: list[str],
    split: str,
    test_fraction: float,
    seed: int,
    as_json: bool,
) -> None:
    """Fit the named models on the data set's training students and print the metrics of
    their one-step-ahead predictions for the held-out students (a table, or JSON)."""
    from smartstudy.data.loaders import DATASETS, DatasetNotFoundError
    from smartstudy.eval import run_evaluation
    from smartstudy.models import MODEL_CLASSES

    if dataset is None:
        raise fail("give --dataset (or --scenario dominant-user)")
    if not model:
        raise fail(f"give at least one --model: {', '.join(MODEL_CLASSES)}")
    if dataset not in DATASETS:
        raise fail(f"unknown data set {dataset!r}; choose from {', '.join(DATASETS)}")
    unknown = [m for m in model if m not in MODEL_CLASSES]
    if unknown:
        raise fail(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(MODEL_CLASSES)}")
    if split not in ("auto", "own", "student"):
        raise fail("--split must be auto, own or student")
    if not 0 < test_fraction < 1:
        raise fail("--test-fraction must be between 0 and 1")
    models = {name: MODEL_CLASSES[name]() for name in model}
    try:
        with console.status(f"evaluating on {dataset}...") if not as_json else nullcontext():
            report = run_evaluation(
                dataset, models, split=split, test_fraction=test_fraction, seed=seed
            )
    except DatasetNotFoundError as exc:
        raise fail(str(exc)) from None
    except ValueError as exc:
        raise fail(str(exc)) from None
    if as_json:
        sys.stdout.write(json.dumps(report.to_dict(), indent=2) + "\n")
    else:
        # A pipe or file gets the whole table rather than one cut to 80 columns.
        out = console if console.is_terminal else Console(width=160)
        out.print(report.to_table())


def _evaluate_replay(
    name: str,
    learners: tuple[int, int],
    seed: int,
    max_attempts: int | None,
    retrain_every: int | None,
    database_url: str | None,
    as_json: bool,
) -> None:
    """``learners`` is (streamed learners, learners of the history)."""
    from smartstudy.data.loaders import DatasetNotFoundError
    from smartstudy.services import replay

    streamed, history = learners
    if name not in replay.REPLAY_DATASETS:
        raise fail(f"--replay needs a data set with times: {', '.join(replay.REPLAY_DATASETS)}")
    if streamed < 1 or (max_attempts is not None and max_attempts < 1):
        raise fail("--learners and --max-attempts must be at least 1")
    if history < 0:
        raise fail("--history must be at least 0")
    if retrain_every is not None and retrain_every < 1:
        raise fail("--retrain-every must be at least 1")
    try:
        data = replay.replay_data(name)
    except (DatasetNotFoundError, FileNotFoundError) as exc:
        raise fail(str(exc)) from None
    status = console.status(f"replaying {name}...") if not as_json else nullcontext()
    with status as shown:
        report = replay.run_replay(
            data,
            name,
            learners=streamed,
            history=history,
            seed=seed,
            max_attempts=replay.DEFAULT_MAX_ATTEMPTS if max_attempts is None else max_attempts,
            retrain_every=retrain_every,
            database_url=database_url,
            progress=None if shown is None else lambda c: shown.update(f"replaying {name}: {c}"),
        )
    if as_json:
        sys.stdout.write(json.dumps(report.to_dict(), indent=2) + "\n")
    else:
        (console if console.is_terminal else Console(width=160)).print(report.to_table())


def _check_all_options(options: _AllOptions) -> list[str]:
    """Fail on an option of `evaluate --all` that cannot work; return the data set names."""
    from smartstudy.data.loaders import DATASETS
    from smartstudy.models import MODEL_CLASSES

    unknown = [d for d in options.datasets if d not in DATASETS]
    if unknown:
        raise fail(f"unknown data set(s) {', '.join(unknown)}; choose from {', '.join(DATASETS)}")
    unknown = [m for m in options.models if m not in MODEL_CLASSES]
    if unknown:
        raise fail(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(MODEL_CLASSES)}")
    if options.seeds < 1:
        raise fail("--seeds must be at least 1")
    if options.max_users is not None and options.max_users < 2:
        raise fail("--max-users must be at least 2")
    if not 0 < options.test_fraction < 1:
        raise fail("--test-fraction must be between 0 and 1")
    if options.replay_learners is not None and (options.no_replay or options.replay_learners < 1):
        raise fail("--replay-learners needs a positive number and no --no-replay")
    if (options.replay_learners is not None or options.no_replay) and not options.report:
        raise fail("--replay-learners and --no-replay go with --report")
    if options.readme is not None:
        _readme_with_table(options.readme, "")  # fails now, not after an hour of fitting
    return [d for d in DATASETS if d in options.datasets] if options.datasets else list(DATASETS)


def _readme_with_table(path: Path, table: str) -> str:
    """The text of ``path`` with ``table`` between its evaluation-table markers."""
    from smartstudy.eval import full_report

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise fail(f"--readme {path}: {exc.strerror or exc}") from None
    try:
        return full_report.replace_marked_block(text, full_report.README_BLOCK, table)
    except ValueError as exc:
        raise fail(f"--readme {path}: {exc}") from None


def _evaluate_all(options: _AllOptions) -> None:
    """`evaluate --all`: every chosen model on every chosen data set over the seeds; print
    the tables, or with --report write the document, its plots and the replay."""
    from smartstudy.data.loaders import DatasetNotFoundError
    from smartstudy.eval import full_report
    from smartstudy.models import MODEL_CLASSES

    names = _check_all_options(options)
    models = options.models or list(MODEL_CLASSES)
    started = datetime.now(UTC)

    def progress(message: str) -> None:
        elapsed = (datetime.now(UTC) - started).total_seconds()
        err.print(f"[{elapsed:7.1f} s] {message}", highlight=False, markup=False)

    try:
        frames = full_report.load_datasets(names)
    except DatasetNotFoundError as exc:
        raise fail(str(exc)) from None
    evaluation = full_report.run_full_evaluation(
        frames,
        {m: MODEL_CLASSES[m] for m in models},
        seeds=range(options.first_seed, options.first_seed + options.seeds),
        test_fraction=options.test_fraction,
        max_users=options.max_users,
        progress=progress,
    )
    if options.report:
        replays, note = _full_replays(names, options, progress)
        provenance = full_report.Provenance(
            _all_command(options), started, os.cpu_count(), __version__, _git_commit()
        )
        path = full_report.write_report(
            evaluation,
            options.out,
            provenance,
            replays=replays,
            replay_note=note,
            person_fit=_person_fit_section(names, models, progress),
        )
        sys.stdout.write(f"wrote {path} and its plots in {path.parent / 'evaluation'}\n")
    else:
        for ds in evaluation.datasets:
            sys.stdout.write(
                f"## {ds.name}\n\n{full_report.dataset_table(evaluation, ds.name)}\n\n"
            )
        sys.stdout.write(full_report.readme_table(evaluation, _all_command(options)) + "\n")
    if options.readme is not None:
        table = full_report.readme_table(evaluation, _all_command(options))
        text = _readme_with_table(options.readme, table)
        options.readme.write_text(text, encoding="utf-8")
        sys.stdout.write(f"updated the evaluation table in {options.readme}\n")


def _person_fit_section(
    names: list[str], models: list[str], progress: Callable[[str], None]
) -> str | None:
    """The person-fit summary of credential_form1 (markdown) when the run covers that data
    set and LNIRT; None otherwise."""
    from smartstudy.eval import person_fit

    if person_fit.VENDOR_DATASET not in names or "lnirt" not in models:
        return None
    progress(f"person fit on {person_fit.VENDOR_DATASET}")
    try:
        summary = person_fit.person_fit_summary(person_fit.VENDOR_DATASET)
    except (ValueError, RuntimeError) as exc:  # kept in the report, not lost
        return f"Person fit on {person_fit.VENDOR_DATASET} failed: {type(exc).__name__}: {exc}."
    return person_fit.format_person_fit(summary)


def _full_replays(
    names: list[str], options: _AllOptions, progress: Callable[[str], None]
) -> tuple[dict[str, dict], str | None]:
    """The replay of each chosen data set with times (``ReplayReport.to_dict()``), and a
    note for the document."""
    from smartstudy.services import replay

    if options.no_replay:
        return {}, "The replay evaluation was skipped (`--no-replay`)."
    chosen = [n for n in names if n in replay.REPLAY_DATASETS]
    if not chosen:
        return {}, (
            "No data set with response times was chosen, so there is no replay (it needs one "
            f"of {', '.join(replay.REPLAY_DATASETS)})."
        )
    learners = options.replay_learners or 100
    reports, failures = {}, []
    for name in chosen:
        progress(f"replay of {name}: {learners} learners")
        try:
            report = replay.run_replay(
                replay.replay_data(name),
                name,
                learners=learners,
                seed=options.first_seed,
                max_attempts=replay.DEFAULT_MAX_ATTEMPTS,
                database_url=options.database_url,
                progress=lambda c, name=name: progress(f"replay of {name}: {c}"),
            )
        except (ValueError, RuntimeError, OSError) as exc:  # kept in the report, not lost
            progress(f"replay of {name} failed: {exc}")
            failures.append(f"The replay of {name} failed: {type(exc).__name__}: {exc}.")
            continue
        reports[name] = report.to_dict()
    note = (
        f"Replay settings: the default attempts cap ({replay.DEFAULT_MAX_ATTEMPTS}) and "
        f"retraining interval; the families replayed are {', '.join(replay.FAMILIES)} and the "
        "served chain, whatever --model says."
    )
    return reports, " ".join([note, *failures])


def _all_command(options: _AllOptions) -> str:
    """The command line that reproduces a run of `evaluate --all`."""
    parts = ["smartstudy evaluate --all"] + (["--report"] if options.report else [])
    parts += [f"--dataset {d}" for d in options.datasets]
    parts += [f"--model {m}" for m in options.models]
    parts.append(f"--seeds {options.seeds}")
    if options.first_seed:
        parts.append(f"--seed {options.first_seed}")
    if options.test_fraction != 0.2:
        parts.append(f"--test-fraction {options.test_fraction}")
    if options.max_users is not None:
        parts.append(f"--max-users {options.max_users}")
    if options.no_replay:
        parts.append("--no-replay")
    elif options.replay_learners is not None:
        parts.append(f"--replay-learners {options.replay_learners}")
    if options.report:
        parts.append(f"--out {options.out}")
    if options.readme is not None:
        parts.append(f"--readme {options.readme}")
    return " ".join(parts)


def _git_commit() -> str | None:
    """The checkout's commit (short hash, marked if files differ from it), or None."""
    import subprocess

    root = Path(__file__).resolve().parents[2]
    run: dict = {"cwd": root, "capture_output": True, "text": True, "timeout": 10, "check": True}
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], **run).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], **run
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head} with uncommitted changes" if dirty else head or None


def _evaluate_scenario(
    scenario: str,
    seed: int,
    as_json: bool,
    *,
    learners: int = 200,
    seeds: int = 5,
    days: int = 14,
) -> None:
    if scenario == "planner":
        _evaluate_planner(seed, as_json, learners, seeds, days)
        return
    if scenario != "dominant-user":
        raise fail(f"unknown scenario {scenario!r}; choose from dominant-user, planner")
    from smartstudy.eval import scenarios

    with console.status("training every strategy...") if not as_json else nullcontext():
        rows = scenarios.run_dominant_user(seed=seed)
    if as_json:
        sys.stdout.write(json.dumps([r.to_dict() for r in rows], indent=2) + "\n")
    else:
        sys.stdout.write(scenarios.format_dominant_user_table(rows) + "\n")


def _evaluate_planner(seed: int, as_json: bool, learners: int, seeds: int, days: int) -> None:
    from smartstudy.data.loaders import DatasetNotFoundError
    from smartstudy.eval import planner_sim

    if learners < 1 or seeds < 1 or days < 1:
        raise fail("--learners, --seeds and --days must be at least 1")
    status = console.status("planner study...") if not as_json else nullcontext()
    try:
        with status as shown:
            study = planner_sim.run_planner_study(
                learners=learners,
                seeds=tuple(range(seed, seed + seeds)),
                days=days,
                progress=None if shown is None else lambda m: shown.update(f"planner study: {m}"),
            )
    except DatasetNotFoundError as exc:
        raise fail(str(exc)) from None
    if as_json:
        sys.stdout.write(json.dumps(study.to_dict(), indent=2) + "\n")
    else:
        sys.stdout.write(planner_sim.format_planner_table(study) + "\n")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
