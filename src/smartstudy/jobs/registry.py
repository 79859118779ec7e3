"""Named jobs: a job is a name and JSON keyword arguments, never a closure.

A name stands for a job function ``fn(context, **args)``. The same call runs in the serving
process (``InProcessRunner``), inline (``SyncRunner``) or in a ``smartstudy worker`` (Celery):
only a name and plain JSON travel, so a job can cross a process boundary, be stored in the
``jobs`` table and be run again after a crash. Functions are imported on first use, so this
module imports nothing from ``services`` (which imports the runners).
"""

from __future__ import annotations

import importlib
import json
import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from smartstudy.services.context import AppContext

JobFunction = Callable[..., object]

#: Every job: its name and the ``module:function`` that runs it (or the function itself).
JOBS: dict[str, str | JobFunction] = {
    "training": "smartstudy.services.training:run_queued_trainings",
    "fit_bkt": "smartstudy.services.bkt_job:fit_bkt",
}


class JobError(ValueError):
    """A job that cannot be submitted: an unknown name or arguments that are not JSON."""


def job_function(name: str) -> JobFunction:
    """The function behind ``name``."""
    target = JOBS.get(name)
    if target is None:
        raise JobError(f"unknown job {name!r}; known jobs: {', '.join(sorted(JOBS))}")
    if callable(target):
        return target
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def check_job(name: str, args: Mapping[str, Any] | None) -> dict[str, Any]:
    """``args`` as the plain JSON object a job receives, or ``JobError`` saying what is wrong:
    the job must be known, and the arguments an object of JSON values that survives a trip
    through JSON unchanged (no tuples, dates, sets, NaN or non-string keys)."""
    if name not in JOBS:
        raise JobError(f"unknown job {name!r}; known jobs: {', '.join(sorted(JOBS))}")
    if args is None:
        return {}
    if not isinstance(args, Mapping):
        raise JobError(f"job {name}: arguments must be a JSON object, not {type(args).__name__}")
    for key, value in args.items():
        if not isinstance(key, str) or not key.isidentifier():
            raise JobError(f"job {name}: argument name {key!r} is not a keyword")
        problem = _json_problem(value)
        if problem is not None:
            raise JobError(f"job {name}: argument {key!r} is not JSON: {problem}")
    return json.loads(json.dumps(dict(args)))


def _json_problem(value: object) -> str | None:
    """Why ``value`` would not come back from JSON as it is, or None."""
    if value is None or isinstance(value, (bool, int, str)):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{value} is not a finite number"
    if isinstance(value, list):
        for item in value:
            if (problem := _json_problem(item)) is not None:
                return problem
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"key {key!r} is not a string"
            if (problem := _json_problem(item)) is not None:
                return problem
        return None
    return f"{type(value).__name__} value {value!r}"


def run_job(context: AppContext, name: str, args: Mapping[str, Any] | None = None) -> object:
    """Run the job ``name`` with ``args`` in this thread (what every runner ends up doing)."""
    clean = check_job(name, args)
    return job_function(name)(context, **clean)
