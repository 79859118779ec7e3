"""Routes hold no SQL and never commit: the layering the repositories and the unit of work
give (issue 11). Checked on the source, so a new route module is covered the day it lands."""

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
