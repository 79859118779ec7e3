"""docs/ARCHITECTURE.md stays true as the code changes (issue 14): every file and every
``module.name`` it writes in backticks, or in its diagrams, exists.

In the text, a backticked name is checked when it is

* a path: a ``.py`` file (``cli.py``, ``api/app.py``), or a name with ``/`` that ends in
  ``/`` (a folder: ``web/templates/``) or in an extension; it must exist below
  ``src/smartstudy/`` or below the repository root (``tests/...``, ``docs/...``);
* a dotted name of Python identifiers (``services.tasks.complete_task``): the longest prefix
  that imports as a module of ``smartstudy`` (``smartstudy.`` may be left out), and the rest
  as attributes (or fields of a pydantic model or dataclass) of it.

Names with a placeholder (``<family>``, ``{id}``) or a space are not checked; a dotted name
that is no module at all (``uow.commit``) fails, so write names from the package root. In the
fenced blocks (the diagrams), every word that starts with a layer's name followed by ``.`` or
``/`` (``services.tasks.complete_task``, ``jobs/runner.py``) is checked the same way.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import smartstudy

PACKAGE = Path(smartstudy.__file__).parent
ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "ARCHITECTURE.md"

_BACKTICKED = re.compile(r"`([^`\n]+)`")
_DOTTED = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+")
_FILE_SUFFIX = re.compile(r"\.(py|html|md|js|css|toml|ini|cfg)$")


_FENCED = re.compile(r"```.*?```", flags=re.DOTALL)
_LAYERS = "api|web|cli|services|store|jobs|models|data|eval|planning|observability|testing|config"
_IN_DIAGRAM = re.compile(rf"\b(?:{_LAYERS})[./][\w./]*\w/?")


def backticked(text: str) -> list[str]:
    """Every backticked span outside fenced code blocks, and every name in those blocks
    that starts with a layer (see the module docstring)."""
    names = _BACKTICKED.findall(_FENCED.sub("", text))
    for block in _FENCED.findall(text):
        names += _IN_DIAGRAM.findall(block)
    return names


def is_path(name: str) -> bool:
    if re.fullmatch(r"[\w/.]+\.py", name):
        return True
    return "/" in name and (name.endswith("/") or bool(_FILE_SUFFIX.search(name)))


def is_dotted(name: str) -> bool:
    return bool(_DOTTED.fullmatch(name)) and not _FILE_SUFFIX.search(name)


def checked(name: str) -> bool:
    return not any(c in name for c in "<>{} ") and (is_path(name) or is_dotted(name))


def path_problem(name: str) -> str | None:
    """None when ``name`` exists below the package or the repository root."""
    if (PACKAGE / name).exists() or (ROOT / name).exists():
        return None
    return f"{name}: no such file or folder in src/smartstudy/ or the repository"


def _module(parts: list[str]) -> tuple[ModuleType, list[str]] | None:
    """The longest importable ``smartstudy`` module made of a prefix of ``parts``, and the
    rest of them."""
    for cut in range(len(parts), 0, -1):
        try:
            return importlib.import_module(".".join(["smartstudy", *parts[:cut]])), parts[cut:]
        except ModuleNotFoundError:
            continue
    return None


def _has(obj: Any, attribute: str) -> bool:
    fields = {**getattr(obj, "model_fields", {}), **getattr(obj, "__dataclass_fields__", {})}
    return hasattr(obj, attribute) or attribute in fields


def name_problem(name: str) -> str | None:
    """None when the dotted ``name`` resolves to a module of smartstudy and its attributes."""
    parts = name.split(".")
    if parts[0] == "smartstudy":
        parts = parts[1:]
    found = _module(parts)
    if found is None:
        return f"{name}: no module smartstudy.{parts[0]}"
    obj, rest = found
    for attribute in rest:
        if not _has(obj, attribute):
            return f"{name}: {getattr(obj, '__name__', obj)!s} has no {attribute!r}"
        obj = getattr(obj, attribute, None)
    return None


def problems(text: str) -> list[str]:
    found = []
    for name in dict.fromkeys(n for n in backticked(text) if checked(n)):
        problem = path_problem(name) if is_path(name) else name_problem(name)
        if problem:
            found.append(problem)
    return found


def test_the_doc_names_enough_to_be_checked():
    names = [n for n in backticked(DOC.read_text(encoding="utf-8")) if checked(n)]
    assert sum(map(is_path, names)) >= 15
    assert sum(map(is_dotted, names)) >= 15
    assert "services.tasks.complete_task" in names and "services.training.run_training" in names


def test_every_name_in_the_doc_exists():
    assert problems(DOC.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("see `services/nowhere.py`", "services/nowhere.py: no such file"),
        ("see `nowhere.py`", "nowhere.py: no such file"),
        ("see `web/no_templates/`", "web/no_templates/: no such file"),
        ("call `services.tasks.no_such_function`", "has no 'no_such_function'"),
        ("call `services.no_such_module.f`", "has no 'no_such_module'"),
        ("call `uow.commit`", "uow.commit: no module smartstudy.uow"),
        ("see `smartstudy.config.Settings.no_field`", "has no 'no_field'"),
        ("```\nrequest\n  └─ services.tasks.gone()\n```\n", "has no 'gone'"),
        ("```\n  web/routes/gone.py ─► x\n```\n", "web/routes/gone.py: no such file"),
    ],
)
def test_the_check_catches_a_stale_name(text: str, found: str):
    assert any(found in p for p in problems(text)), problems(text)


def test_the_check_accepts_real_names_and_skips_the_rest():
    text = (
        "`services/tasks.py`, `cli.py`, `tests/test_layering.py`, `web/templates/`, "
        "`smartstudy.services.tasks.complete_task`, `config.Settings.retrain_every`, "
        "`services.tasks.Completion.task_id`, `models/<family>/`, `smartstudy worker`, "
        "`SMARTSTUDY_JOBS`, `base.html`\n```\nnot/checked.py\njobs/runner.py: runner\n"
        "  └─ services.training.run_training(context)\n```\n"
    )
    assert problems(text) == []
