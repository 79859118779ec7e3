"""Function shape checked on the source, so a new module is covered the day it lands (issue 14):
no function in ``src/smartstudy`` is longer than 80 lines or nests blocks deeper than 4.

Length: the lines from ``def`` to the function's last line (decorators not counted, the
docstring and blank lines inside counted), i.e. ``end_lineno - lineno + 1``.

Depth: the number of blocks around the deepest statement of the function body. A block is
an ``if``, ``for``, ``while``, ``with``, ``try`` or ``match`` statement (async forms
included); each adds one level for everything inside it (its body, ``else``, ``except``
handlers, ``finally`` and ``case`` clauses). An ``elif`` stays at its ``if``'s level, since it
is written as one chain (as does an ``else`` whose only statement is an ``if``: the syntax tree
does not tell them apart). A nested function or class starts again at 0 (it is checked as a
function of its own); lambdas and comprehensions are expressions, not blocks. So a body with
an ``if`` inside a ``for`` has depth 2.

Alembic migrations are checked too: their long ``upgrade`` functions were split into one
function per table (the schema they build on SQLite and PostgreSQL was compared before and
after, and is the same).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import smartstudy

PACKAGE = Path(smartstudy.__file__).parent
MAX_LINES = 80
MAX_DEPTH = 4

_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)
_SCOPES = (*_FUNCTIONS, ast.ClassDef)
_BLOCKS = (
    ast.If,
    ast.For,
    ast.AsyncFor,
    ast.While,
    ast.With,
    ast.AsyncWith,
    ast.Try,
    ast.TryStar,
    ast.Match,
)


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _inner_bodies(node: ast.stmt) -> list[list[ast.stmt]]:
    """The statement lists one level inside the block ``node`` (an ``elif`` excluded)."""
    if isinstance(node, ast.Match):
        return [case.body for case in node.cases]
    bodies = [node.body]
    if not _is_elif_chain(node):
        bodies.append(getattr(node, "orelse", []))
    bodies.extend(handler.body for handler in getattr(node, "handlers", []))
    bodies.append(getattr(node, "finalbody", []))
    return bodies


def _is_elif_chain(node: ast.stmt) -> bool:
    return isinstance(node, ast.If) and len(node.orelse) == 1 and isinstance(node.orelse[0], ast.If)


def _depth(statements: list[ast.stmt], level: int = 0) -> int:
    """The deepest block level reached by ``statements``, which sit at ``level``."""
    deepest = level
    for node in statements:
        if isinstance(node, _SCOPES) or not isinstance(node, _BLOCKS):
            continue
        for body in _inner_bodies(node):
            deepest = max(deepest, _depth(body, level + 1))
        if _is_elif_chain(node):
            deepest = max(deepest, _depth(node.orelse, level))
    return deepest


def function_depth(function: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """How many blocks deep the function's deepest statement is (see the module docstring)."""
    return _depth(function.body)


def shape_problems(source: str, name: str = "<module>") -> list[str]:
    """Each function of ``source`` over ``MAX_LINES`` lines or ``MAX_DEPTH`` blocks deep, as
    'name:line: function is N lines' or '... nests N blocks deep'."""
    problems = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, _FUNCTIONS):
            continue
        assert node.end_lineno is not None
        length = node.end_lineno - node.lineno + 1
        if length > MAX_LINES:
            problems.append(
                f"{name}:{node.lineno}: {node.name} is {length} lines (most {MAX_LINES})"
            )
        depth = function_depth(node)
        if depth > MAX_DEPTH:
            problems.append(
                f"{name}:{node.lineno}: {node.name} nests {depth} blocks deep (most {MAX_DEPTH})"
            )
    return problems


def test_the_modules_are_found_migrations_included():
    names = {p.relative_to(PACKAGE).as_posix() for p in _modules()}
    assert {"cli.py", "services/mastery.py", "data/simulate.py", "store/orm.py"} <= names
    assert "store/migrations/versions/0001_initial_schema.py" in names
    assert "store/migrations/env.py" in names


@pytest.mark.parametrize("path", _modules(), ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_no_function_is_too_long_or_too_deep(path: Path):
    name = path.relative_to(PACKAGE).as_posix()
    assert shape_problems(path.read_text(encoding="utf-8"), name) == []


# -- the check itself ------------------------------------------------------------------------
def _nested(blocks: list[str], body: str = "x = 1") -> str:
    """A function whose body is ``blocks`` nested one inside the next around ``body`` (a
    ``try:`` gets an ``except`` clause after what it holds)."""
    lines = ["def f(a, b, c):"]
    closing: list[str] = []
    for level, header in enumerate(blocks, start=1):
        lines.append("    " * level + header)
        if header == "try:":
            closing.append("    " * level + "except ValueError:\n" + "    " * (level + 1) + "pass")
    lines.append("    " * (len(blocks) + 1) + body)
    lines.extend(reversed(closing))
    return "\n".join(lines) + "\n"


def _depth_of(source: str) -> int:
    function = ast.parse(source).body[0]
    assert isinstance(function, _FUNCTIONS)
    return function_depth(function)


@pytest.mark.parametrize(
    ("blocks", "depth"),
    [
        ([], 0),
        (["if a:"], 1),
        (["for x in a:", "if x:"], 2),
        (["with a:", "try:", "while b:", "match c:", "case 1:"], 4),
        (["async with a:", "async for x in b:"], 2),
        (["for x in a:", "with b:", "if x:", "try:", "if c:"], 5),
    ],
)
def test_depth_counts_each_enclosing_block(blocks: list[str], depth: int):
    source = _nested(blocks)
    if any(b.startswith("async") for b in blocks):
        source = "async " + source
    assert _depth_of(source) == depth


def test_elif_else_except_and_finally_count_like_the_block_they_belong_to():
    chain = "def f(a):\n    if a == 1:\n        x = 1\n" + "".join(
        f"    elif a == {k}:\n        x = {k}\n" for k in range(2, 9)
    )
    assert _depth_of(chain) == 1
    # An ``else`` whose only statement is an ``if`` is an ``elif`` in the syntax tree.
    only_if = (
        "def f(a, b):\n    if a:\n        x = 1\n    else:\n        if b:\n            x = 2\n"
    )
    assert _depth_of(only_if) == 1
    assert _depth_of(only_if + "        x = 3\n") == 2  # a nested block inside the else
    handlers = (
        "def f(a):\n    try:\n        x = 1\n    except ValueError:\n        for y in a:\n"
        "            x = y\n    finally:\n        if a:\n            x = 0\n"
    )
    assert _depth_of(handlers) == 2


def test_nested_functions_and_expressions_start_again():
    inner = _nested(["for x in a:", "if x:", "with b:"], "def g():\n" + " " * 20 + "return 1")
    assert _depth_of(inner) == 3
    comprehension = "def f(a):\n    if a:\n        return [x for x in a if x]\n"
    assert _depth_of(comprehension) == 1


def test_the_check_reports_a_long_and_a_deep_function():
    long = "def long():\n" + "    x = 1\n" * MAX_LINES
    assert shape_problems(long, "m.py") == ["m.py:1: long is 81 lines (most 80)"]
    assert shape_problems("def ok():\n" + "    x = 1\n" * (MAX_LINES - 1)) == []
    deep = _nested(["for x in a:", "with b:", "if x:", "try:", "if c:"])
    assert shape_problems(deep, "m.py") == ["m.py:1: f nests 5 blocks deep (most 4)"]
    method = "class C:\n    " + _nested(["if a:"] * 5).replace("\n", "\n    ")
    assert shape_problems(method, "m.py") == ["m.py:2: f nests 5 blocks deep (most 4)"]
