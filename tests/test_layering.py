"""Layering checked on the source, so a new module is covered the day it lands.

Routes hold no SQL and never commit: the layering the repositories and the unit of work give
(issue 11). ``models`` and ``data`` import nothing above them (docs/ARCHITECTURE.md, "Layers"),
so a researcher can use the models on a DataFrame without any server; ``testing`` (the contract
battery) needs nothing more than the models do (issue 14).
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
