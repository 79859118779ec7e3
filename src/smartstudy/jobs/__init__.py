"""Background work: an in-process runner by default (see ``runner.py``)."""

from smartstudy.jobs.runner import InProcessRunner, JobRunner, SyncRunner

__all__ = ["InProcessRunner", "JobRunner", "SyncRunner"]
