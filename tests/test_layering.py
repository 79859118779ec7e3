"""Layering checked on the source, so a new module is covered the day it lands.

Routes hold no SQL and never commit: the layering the repositories and the unit of work give
(issue 11). ``models`` and ``data`` import nothing above them (docs/ARCHITECTURE.md, "Layers"),
so a researcher can use the models on a DataFrame without any server; ``testing`` (the contract
battery) needs nothing more than the models do (issue 14).

Every layer (issue 14): each module of ``src/smartstudy`` belongs to the layer named by its first
path part (``services/tasks.py`` to ``services``, ``cli.py`` to ``cli``), and imports from
``smartstudy`` only its own layer and the layers below it (``ALLOWED``, from the edges in
``DEPENDS_ON``). Every import counts: at module level, inside functions (lazy imports), relative
ones (resolved), and those under ``if TYPE_CHECKING:``, since a type names a dependency as much
as a call does. The one deliberate exception is ``TYPE_ONLY_EXCEPTIONS``, which holds for
``TYPE_CHECKING`` imports only.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import smartstudy

PACKAGE = Path(smartstudy.__file__).parent
ROUTE_DIRS = (PACKAGE / "api" / "routers", PACKAGE / "web" / "routes")
#: SQL building blocks a route may not import from SQLAlchemy.
FORBIDDEN_NAMES = {
    "select",
    "update",
    "insert",
    "delete",
    "func",
    "text",
    "selectinload",
    "joinedload",
}
#: Session methods a route may not call: the unit of work commits, repositories query.
FORBIDDEN_CALLS = {"commit", "execute"}


#: Packages above ``models`` and ``data``: neither may import from any of them.
UPPER_LAYERS = (
    "eval",
    "services",
    "store",
    "api",
    "web",
    "jobs",
    "cli",
    "planning",
    "observability",
)
#: Lower layers and the modules that must stay in them.
LOWER_LAYER_MODULES = (PACKAGE / "models", PACKAGE / "data", PACKAGE / "testing.py")


def _route_modules() -> list[Path]:
    return sorted(p for d in ROUTE_DIRS for p in d.glob("*.py"))


def layering_problems(source: str, name: str = "<route>") -> list[str]:
    """Each SQL import or commit/execute call in ``source``, as 'name:line: what'."""
    problems = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy"):
            for alias in node.names:
                if alias.name in FORBIDDEN_NAMES or alias.name == "*":
                    problems.append(f"{name}:{node.lineno}: imports {alias.name} from SQLAlchemy")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "sqlalchemy" or alias.name.startswith("sqlalchemy."):
                    problems.append(f"{name}:{node.lineno}: imports {alias.name}")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in FORBIDDEN_CALLS
        ):
            problems.append(f"{name}:{node.lineno}: calls .{node.func.attr}()")
    return problems


def test_the_route_modules_are_found():
    names = {p.name for p in _route_modules()}
    assert {"tasks.py", "study.py", "admin.py", "progress.py", "models.py"} <= names


@pytest.mark.parametrize("path", _route_modules(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_route_module_holds_no_sql_and_never_commits(path: Path):
    assert layering_problems(path.read_text(encoding="utf-8"), path.name) == []


@pytest.mark.parametrize(
    ("snippet", "found"),
    [
        ("from sqlalchemy import select\n", "imports select from SQLAlchemy"),
        ("from sqlalchemy import func, update\n", "imports func from SQLAlchemy"),
        ("from sqlalchemy.sql.expression import delete\n", "imports delete from SQLAlchemy"),
        ("import sqlalchemy as sa\n", "imports sqlalchemy"),
        ("def route(db):\n    db.commit()\n", "calls .commit()"),
        ("def route(session):\n    session.execute(q)\n", "calls .execute()"),
    ],
)
def test_the_check_catches_sql_in_a_route(snippet: str, found: str):
    problems = layering_problems(snippet)
    assert any(found in p for p in problems), problems


def test_the_check_allows_what_routes_may_do():
    ok = (
        "from sqlalchemy.orm import Session\n"
        "def route(uow, db):\n"
        "    uow.rollback()\n"
        "    uow.after_commit(lambda: None)\n"
    )
    assert layering_problems(ok) == []


# -- models and data import nothing above them -------------------------------------------------
def _lower_modules() -> list[Path]:
    found: list[Path] = []
    for path in LOWER_LAYER_MODULES:
        found.extend(sorted(path.rglob("*.py")) if path.is_dir() else [path])
    return found


def upward_imports(source: str, name: str = "<module>") -> list[str]:
    """Each import of ``smartstudy.<upper layer>`` in ``source`` (at any depth, lazy imports
    inside functions included), as 'name:line: imports what'."""
    problems = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.level == 0:
            targets = [node.module or ""]
            if node.module == "smartstudy":
                targets = [f"smartstudy.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            continue
        for target in targets:
            parts = target.split(".")
            if len(parts) > 1 and parts[0] == "smartstudy" and parts[1] in UPPER_LAYERS:
                problems.append(f"{name}:{node.lineno}: imports {target}")
    return problems


def test_the_lower_layer_modules_are_found():
    names = {p.relative_to(PACKAGE).as_posix() for p in _lower_modules()}
    assert {
        "testing.py",
        "models/base.py",
        "models/bkt/model.py",
        "models/lnirt/topic.py",
        "models/neural/predictor.py",
        "data/schema.py",
    } <= names


@pytest.mark.parametrize("path", _lower_modules(), ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_models_and_data_import_nothing_above_them(path: Path):
    assert upward_imports(path.read_text(encoding="utf-8"), path.name) == []


@pytest.mark.parametrize(
    ("snippet", "found"),
    [
        ("from smartstudy.eval.metrics import auc\n", "imports smartstudy.eval.metrics"),
        ("import smartstudy.services.errors\n", "imports smartstudy.services.errors"),
        ("from smartstudy import store\n", "imports smartstudy.store"),
        ("def f():\n    from smartstudy.api import app\n", "imports smartstudy.api"),
        ("from smartstudy.jobs.runner import run\n", "imports smartstudy.jobs.runner"),
    ],
)
def test_the_check_catches_an_upward_import(snippet: str, found: str):
    problems = upward_imports(snippet)
    assert any(found in p for p in problems), problems


def test_the_check_allows_imports_within_the_lower_layers():
    ok = (
        "from smartstudy.models.base import LearnerModel\n"
        "from smartstudy.data.schema import validate_interactions\n"
        "from smartstudy import models\n"
        "from . import core\n"
        "import numpy as np\n"
    )
    assert upward_imports(ok) == []


# -- every layer imports only itself and the layers below it -----------------------------------
#: The layers each layer may import directly (docs/ARCHITECTURE.md, "Layers"). ``api`` builds the
#: whole ASGI app, so it mounts ``web``'s pages and renders its error pages; ``cli`` serves it.
#: ``planning`` is pure functions, like ``models``; ``eval`` simulates the planner with it.
DEPENDS_ON: dict[str, frozenset[str]] = {
    "cli": frozenset({"api", "services", "threads"}),
    "api": frozenset({"web", "services"}),
    "web": frozenset({"services"}),
    "services": frozenset(
        {"store", "jobs", "observability", "models", "data", "eval", "planning", "config"}
    ),
    "jobs": frozenset({"store", "config"}),
    "observability": frozenset({"store", "config"}),
    "store": frozenset({"config"}),
    "eval": frozenset({"models", "data", "planning"}),
    "testing": frozenset({"models", "data"}),
    "models": frozenset({"data"}),
    "planning": frozenset(),
    "data": frozenset(),
    "config": frozenset(),
    "threads": frozenset(),
}


def _closure(layer: str) -> frozenset[str]:
    seen = {layer}
    todo = [layer]
    while todo:
        for below in DEPENDS_ON[todo.pop()]:
            if below not in seen:
                seen.add(below)
                todo.append(below)
    return frozenset(seen)


#: What a module of each layer may import from ``smartstudy``: itself and everything below it.
ALLOWED = {layer: _closure(layer) for layer in DEPENDS_ON}

#: Deliberate exceptions, for imports under ``if TYPE_CHECKING:`` only: (layer, module).
TYPE_ONLY_EXCEPTIONS = {
    # The job registry, the runners and the durable queue are handed the ``AppContext`` and
    # pass it on to the job functions (which live in ``services``); they name it in
    # annotations but use nothing of ``services`` at run time. A Protocol restating its fields
    # would only copy it.
    ("jobs", "smartstudy.services.context"),
}


def layer_of(relative: str) -> str:
    """The layer of a module by its path below the package, e.g. 'services/tasks.py' ->
    'services'; the package's own ``__init__.py`` is the root, ''."""
    first = relative.split("/")[0]
    return "" if first == "__init__.py" else first.removesuffix(".py")


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    """The ids of the nodes under an ``if TYPE_CHECKING:`` (or ``typing.TYPE_CHECKING``)."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) in {
            "TYPE_CHECKING",
            "typing.TYPE_CHECKING",
        }:
            inside.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return inside


def _imported_modules(node: ast.Import | ast.ImportFrom, relative: str) -> list[str]:
    """The absolute names ``node`` imports; relative imports resolved against ``relative``
    (the importing module's path below the package)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    module = node.module or ""
    if node.level:
        package = ["smartstudy", *relative.split("/")[:-1]]
        base = package[: len(package) - node.level + 1]
        module = ".".join([*base, module] if module else base)
    if module == "smartstudy" or not node.module:  # from smartstudy import web; from . import x
        return [f"{module}.{alias.name}" for alias in node.names]
    return [module]


def _target_layer(module: str) -> str | None:
    """The layer of an imported ``smartstudy`` module ('' for the root package's own names,
    e.g. ``__version__``); None for a module outside ``smartstudy``."""
    parts = module.split(".")
    if parts[0] != "smartstudy":
        return None
    return "" if len(parts) == 1 or parts[1].startswith("__") else parts[1]


def layer_violations(source: str, relative: str) -> list[str]:
    """Each import in ``source`` (the module at ``relative`` below the package) of a
    ``smartstudy`` layer its layer may not import, as 'path:line: <layer> imports <module>'."""
    layer = layer_of(relative)
    allowed = ALLOWED.get(layer, frozenset()) | {""}
    tree = ast.parse(source)
    type_only = _type_checking_nodes(tree)
    problems = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Import | ast.ImportFrom):
            continue
        for module in _imported_modules(node, relative):
            target = _target_layer(module)
            if target is None or target in allowed:
                continue
            excepted = id(node) in type_only and any(
                layer == ex_layer and (module == ex_module or module.startswith(ex_module + "."))
                for ex_layer, ex_module in TYPE_ONLY_EXCEPTIONS
            )
            if not excepted:
                problems.append(
                    f"{relative}:{node.lineno}: {layer or 'smartstudy'} imports {module}"
                )
    return problems


def _all_modules() -> list[Path]:
    exempt = PACKAGE / "store" / "migrations"
    return sorted(p for p in PACKAGE.rglob("*.py") if not p.is_relative_to(exempt))


def test_every_top_level_module_has_a_layer():
    """A new package or top-level module must be placed in ``DEPENDS_ON`` before it lands."""
    tops = {layer_of(p.relative_to(PACKAGE).as_posix()) for p in _all_modules()} - {""}
    assert tops - set(DEPENDS_ON) == set()
    assert {"api", "web", "cli", "services", "store", "jobs", "models", "data", "eval"} <= tops


def test_the_layers_form_no_cycle():
    for layer, below in DEPENDS_ON.items():
        for other in below:
            assert layer not in ALLOWED[other], f"{layer} and {other} may import each other"


@pytest.mark.parametrize("path", _all_modules(), ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_every_module_imports_only_its_layer_and_below(path: Path):
    relative = path.relative_to(PACKAGE).as_posix()
    assert layer_violations(path.read_text(encoding="utf-8"), relative) == []


@pytest.mark.parametrize(
    ("snippet", "relative", "found"),
    [
        # upwards
        (
            "from smartstudy.services.tasks import x\n",
            "store/db.py",
            "store imports smartstudy.services.tasks",
        ),
        ("import smartstudy.api.app\n", "services/tasks.py", "services imports smartstudy.api.app"),
        ("from smartstudy import web\n", "services/tasks.py", "services imports smartstudy.web"),
        (
            "from smartstudy.config import Settings\n",
            "models/base.py",
            "models imports smartstudy.config",
        ),
        # sideways: beside, not below
        (
            "from smartstudy.store.orm import Job\n",
            "eval/metrics.py",
            "eval imports smartstudy.store.orm",
        ),
        ("from smartstudy.api.deps import DB\n", "web/deps.py", "web imports smartstudy.api.deps"),
        (
            "from smartstudy.services import x\n",
            "observability/metrics.py",
            "observability imports",
        ),
        # lazy, relative and type-only imports count
        ("def f():\n    from smartstudy.services import audit\n", "jobs/runner.py", "jobs imports"),
        (
            "from ..services import tasks\n",
            "store/repositories.py",
            "store imports smartstudy.services",
        ),
        (
            "from ...services.tasks import x\n",
            "store/repositories/reports.py",
            "imports smartstudy.services.tasks",
        ),
        (
            "if typing.TYPE_CHECKING:\n    from smartstudy.web import charts\n",
            "services/tasks.py",
            "services imports smartstudy.web",
        ),
        # the jobs exception holds for TYPE_CHECKING imports only
        ("from smartstudy.services.context import AppContext\n", "jobs/runner.py", "jobs imports"),
        (
            "if TYPE_CHECKING:\n    from smartstudy.services.tasks import complete_task\n",
            "jobs/runner.py",
            "jobs imports smartstudy.services.tasks",
        ),
        ("from smartstudy.nowhere import x\n", "services/tasks.py", "imports smartstudy.nowhere"),
    ],
)
def test_the_check_catches_an_import_against_the_layers(snippet: str, relative: str, found: str):
    problems = layer_violations(snippet, relative)
    assert any(found in p for p in problems), problems


@pytest.mark.parametrize(
    ("snippet", "relative"),
    [
        (
            "from smartstudy.store.orm import Job\nfrom smartstudy.models import Baseline\n",
            "web/routes/study.py",
        ),
        ("from smartstudy import __version__\nfrom smartstudy.web import render\n", "api/app.py"),
        ("from smartstudy.api.app import create_app\n", "cli.py"),
        (
            "from smartstudy.planning import core\nfrom smartstudy.data import schema\n",
            "eval/planner_sim.py",
        ),
        ("from smartstudy.store.orm import Job\n", "observability/metrics.py"),
        ("from . import durable\nfrom .runner import SyncRunner\n", "jobs/registry.py"),
        ("from smartstudy.models.base import LearnerModel\n", "testing.py"),
        (
            "if TYPE_CHECKING:\n    from smartstudy.services.context import AppContext\n",
            "jobs/durable.py",
        ),
        ("import numpy as np\nfrom sqlalchemy import select\n", "models/base.py"),
    ],
)
def test_the_check_allows_imports_of_the_layer_and_below(snippet: str, relative: str):
    assert layer_violations(snippet, relative) == []
