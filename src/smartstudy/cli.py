"""The ``smartstudy`` command line (Typer + Rich)."""

from __future__ import annotations

import json
import logging
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from smartstudy import __version__
from smartstudy.config import Settings
from smartstudy.services.context import AppContext
from smartstudy.services.errors import ServiceError
from smartstudy.store.db import session_scope

app = typer.Typer(
    help="SmartStudy: study platform with a learner-modelling engine.",
    no_args_is_help=True,
    add_completion=False,
)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
users_app = typer.Typer(help="Accounts.", no_args_is_help=True)
simulate_app = typer.Typer(help="Simulated learners.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
app.add_typer(simulate_app, name="simulate")

console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


def _context() -> AppContext:
    context = AppContext.from_settings(Settings())
    context.migrate()
    return context


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
) -> None:
    """Start the web app and API (e.g. `smartstudy serve --demo`, then open http://127.0.0.1:8000/docs)."""
    import uvicorn

    from smartstudy.api.app import create_app

    context = _context()
    console.print(f"database: {context.settings.resolved_database_url}", highlight=False)
    if demo:
        _seed_demo(context)
    api = create_app(context=context)
    console.print(f"SmartStudy on http://{host}:{port}  (API docs: /docs)", highlight=False)
    uvicorn.run(api, host=host, port=port, log_level="info")


def _seed_demo(context: AppContext) -> None:
    from smartstudy.services.demo import seed_demo

    with console.status("adding demo data..."), session_scope(context.sessions) as session:
        result = seed_demo(session, context.predictor, context.settings.data_dir)
    creds = context.settings.data_dir / "demo-credentials.txt"
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
    _seed_demo(_context())


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create the database or bring it to the newest schema."""
    from smartstudy.store.migrate import current_revision

    context = AppContext.from_settings(Settings())
    context.migrate()
    console.print(
        f"database at revision {current_revision(context.engine)}: "
        f"{context.settings.resolved_database_url}",
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
    from smartstudy.services.accounts import create_user

    context = _context()
    try:
        with session_scope(context.sessions) as session:
            user = create_user(session, email, password, name, role="admin")
            email = user.email
    except ServiceError as exc:
        raise fail(str(exc)) from None
    console.print(f"admin {email} created", highlight=False)


@app.command("import")
def import_csv(
    file: Annotated[Path, typer.Argument(help="CSV of completed tasks (see README).")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only validate the file.")] = False,
) -> None:
    """Import completed practice tasks from a CSV: every row is checked, then all or nothing.

    Columns: email, subject, topic, difficulty, correct, rt_seconds[, completed_at][, description].
    """
    from smartstudy.services.importing import ImportErrors, import_tasks_csv

    context = _context()
    session = context.sessions()
    try:
        result = import_tasks_csv(session, file)
        if dry_run:
            session.rollback()
            console.print(f"{file}: {result.rows} rows are valid (nothing written)")
            return
        # Imported rows are back-dated; retrain so every served model includes them.
        for name in context.predictor.chain:
            context.predictor.train(session, name)
        session.commit()
    except ImportErrors as exc:
        session.rollback()
        err.print(f"[bold red]{file}: import refused, nothing was written[/]", highlight=False)
        err.print(str(exc), highlight=False, markup=False)
        raise typer.Exit(1) from None
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
    console.print(
        f"imported {result.rows} tasks ({result.subjects_created} new subjects, "
        f"{result.topics_created} new topics)",
        highlight=False,
    )


@app.command()
def train(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Train every model family of the prediction chain on all completed tasks, now."""
    from smartstudy.services.training import run_training

    context = _context()
    with console.status("training...") if not as_json else nullcontext():
        job = run_training(context)
    if as_json:
        sys.stdout.write(json.dumps({"status": job.status, "summary": job.summary}) + "\n")
    else:
        for name in context.predictor.chain:
            info = job.summary.get(name, {})
            if "error" in info:
                err.print(f"{name}: failed: {info['error']}", highlight=False, markup=False)
            else:
                console.print(
                    f"{name}: version {info.get('version')} on {job.summary.get('rows', 0)} "
                    f"tasks in {info.get('fit_seconds')} s",
                    highlight=False,
                )
    if job.status != "succeeded":
        raise typer.Exit(1)


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


@app.command()
def evaluate(
    dataset: Annotated[
        str,
        typer.Option(
            help="assistments09, assistments09_dkt, cognitive_tutor, credential_form1 or mars_ib."
        ),
    ],
    model: Annotated[
        list[str], typer.Option(help="Model name (repeat for several), e.g. --model baseline.")
    ],
    split: Annotated[
        str, typer.Option(help="auto (the data set's own split if any), own, or student.")
    ] = "auto",
    test_fraction: Annotated[float, typer.Option(help="Share of students held out.")] = 0.2,
    seed: Annotated[int, typer.Option(help="Seed of the split by student.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Fit on training students, predict held-out students one step ahead, print metrics.

    Example: `smartstudy evaluate --dataset credential_form1 --model baseline`.
    """
    from smartstudy.data.loaders import DATASETS, DatasetNotFoundError
    from smartstudy.eval import run_evaluation
    from smartstudy.models import MODEL_CLASSES

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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
