"""No block of six or more lines is repeated in ``src/smartstudy`` (issue 14), checked on the
source so a new module is covered the day it lands.

Each line of every ``.py`` file is normalised: surrounding white space stripped, blank lines and
comment-only lines dropped (so a copy that differs only in indentation or comments still counts).
A window of six consecutive normalised lines that stands in two places (two files, or two places
in one file that do not overlap) is a repeat. Overlapping windows of one copied run are merged,
so each copy is listed once, as ``file:first-last ~ file:first-last`` (source line numbers).

Exempt, narrowly:

* Alembic migrations (``store/migrations/``): history that must not be edited.
* Boilerplate windows, where every line is one of: an import line (``import x``,
  ``from x import (``); a bare name followed by a comma (``name,``: an imported name, a
  positional argument passed on, or ``self,`` in a signature); a bare keyword argument
  (``name=other,``: a value passed on under a name); a parameter declaration in a signature
  (``name: T,``, ``name: T = default,``, ``*,``); a closing bracket (``)``, ``]``, ``}``,
  ``),`` and the like, with an optional ``:`` or ``-> T:``); or a docstring quote line
  (``\"\"\"``). A run of such lines only passes names along (two calls of one function, a wrapper
  declaring the parameters of what it wraps): there is no logic in it to extract. One line of
  anything else (an expression, a literal value, a statement) makes the window count; class
  fields without a trailing comma (``name: T``) are not exempt.
"""

from __future__ import annotations

import itertools
import re
from collections import defaultdict
from pathlib import Path

import pytest

import smartstudy

PACKAGE = Path(smartstudy.__file__).parent
WINDOW = 6
EXEMPT = (PACKAGE / "store" / "migrations",)

_BOILERPLATE = (
    re.compile(r"(from\s+\S+\s+)?import\s.*"),  # an import line
    re.compile(r"[A-Za-z_][A-Za-z_0-9]*( as [A-Za-z_][A-Za-z_0-9]*)?,"),  # an imported name
    re.compile(r"[A-Za-z_][A-Za-z_0-9]*=[A-Za-z_][A-Za-z_0-9]*,"),  # a bare keyword argument
    re.compile(r"\*,|\*?\*?[A-Za-z_][A-Za-z_0-9]*: [^=]+( = [^,]+)?,"),  # a parameter
    re.compile(r"[)\]}]+[,:]?( -> .*:)?"),  # a closing bracket
    re.compile(r'[rbuf]?"""'),  # a docstring's quote line
)


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if not any(p.is_relative_to(e) for e in EXEMPT))


def normalised_lines(source: str) -> list[tuple[int, str]]:
    """``(line number, stripped text)`` of each line that is neither blank nor a comment."""
    kept = []
    for number, line in enumerate(source.splitlines(), start=1):
        text = line.strip()
        if text and not text.startswith("#"):
            kept.append((number, text))
    return kept


def is_boilerplate(window: tuple[str, ...]) -> bool:
    """Whether every line of ``window`` is an import, a closing bracket, a passed-on keyword
    argument or a docstring quote (see the module docstring)."""
    return all(any(p.fullmatch(line) for p in _BOILERPLATE) for line in window)


def repeated_windows(sources: dict[str, str], size: int = WINDOW) -> list[str]:
    """Each run of ``size`` or more normalised lines standing in two non-overlapping places,
    as 'a.py:12-20 ~ b.py:40-48' (overlapping windows of one copied run reported once)."""
    places: dict[tuple[str, ...], list[tuple[str, int]]] = defaultdict(list)
    numbers = {name: normalised_lines(source) for name, source in sources.items()}
    for name, lines in numbers.items():
        for i in range(len(lines) - size + 1):
            window = tuple(text for _, text in lines[i : i + size])
            if not is_boilerplate(window):
                places[window].append((name, i))
    pairs = set()
    for spots in places.values():
        for (a, i), (b, j) in itertools.pairwise(spots):
            if a != b or j >= i + size:
                pairs.add((a, i, b, j))
    found = []
    for a, i, b, j in sorted(pairs):
        if (a, i - 1, b, j - 1) in pairs:
            continue  # inside a run already reported from its start
        n = size
        while (a, i + n - size + 1, b, j + n - size + 1) in pairs:
            n += 1
        first, second = numbers[a], numbers[b]
        found.append(
            f"{a}:{first[i][0]}-{first[i + n - 1][0]} ~ {b}:{second[j][0]}-{second[j + n - 1][0]}"
        )
    return found


def test_the_modules_are_found():
    names = {p.relative_to(PACKAGE).as_posix() for p in _modules()}
    assert {"testing.py", "models/lnirt/fit.py", "store/repositories/reports.py"} <= names
    assert not any(n.startswith("store/migrations/") for n in names)


def test_no_block_of_six_lines_is_repeated():
    sources = {p.relative_to(PACKAGE).as_posix(): p.read_text(encoding="utf-8") for p in _modules()}
    repeats = repeated_windows(sources)
    assert repeats == [], "\n".join(repeats)


_BLOCK = (
    "total = 0\nfor x in xs:\n    if x > 0:\n        total += x\nmean = total / n\nreturn mean\n"
)


@pytest.mark.parametrize(
    ("sources", "found"),
    [
        ({"a.py": _BLOCK, "b.py": "\n" + _BLOCK}, "a.py:1-6 ~ b.py:2-7"),
        ({"a.py": _BLOCK + "y = 1\n" + _BLOCK}, "a.py:1-6 ~ a.py:8-13"),
        # indentation, blank lines and comments do not hide a copy
        (
            {
                "a.py": _BLOCK,
                "b.py": "# copied\n" + "\n\n".join("    " + ln for ln in _BLOCK.splitlines()),
            },
            "a.py:1-6 ~ b.py:2-12",
        ),
    ],
)
def test_the_check_catches_a_repeat(sources: dict[str, str], found: str):
    assert found in repeated_windows(sources)


def test_the_check_allows_five_lines_and_overlapping_runs():
    five = "\n".join(_BLOCK.splitlines()[:5]) + "\n"
    assert repeated_windows({"a.py": five, "b.py": five}) == []
    same = "x = 1\n" * 7  # windows 1-6 and 2-7 are equal but overlap: one run, not a copy
    assert repeated_windows({"a.py": same}) == []


def test_a_longer_copy_is_reported_once_as_a_run():
    block = _BLOCK + "log(mean)\n"
    assert repeated_windows({"a.py": block, "b.py": block}) == ["a.py:1-7 ~ b.py:1-7"]


def test_the_check_passes_over_boilerplate_only():
    imports = "from x import (\n    a,\n    b,\n    c,\n    d,\n)\n"
    assert repeated_windows({"a.py": imports, "b.py": imports}) == []
    call = "    x,\n    y,\n    a=a,\n    b=other,\n    c=c,\n)\n"
    assert repeated_windows({"a.py": "f(\n" + call, "b.py": "g(\n" + call}) == []
    signature = "    self,\n    x: int,\n    *,\n    y: Mapping[str, float] | None = None,\n"
    signature += "    z: bool = False,\n) -> float:\n"
    assert repeated_windows({"a.py": "def f(\n" + signature, "b.py": "def g(\n" + signature}) == []
    with_logic = "    x,\n    y,\n    a=a,\n    b=b + 1,\n    c=c,\n)\n"
    assert repeated_windows({"a.py": with_logic, "b.py": with_logic}) != []
