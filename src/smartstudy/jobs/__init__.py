"""Background work: named jobs (``registry``), runners (``runner``: in-process by default,
``celery_app`` for ``smartstudy worker``) and durable job rows (``durable``)."""

from smartstudy.jobs import durable
from smartstudy.jobs.registry import JOBS, JobError, check_job, run_job
from smartstudy.jobs.runner import InProcessRunner, JobRunner, SyncRunner

__all__ = [
    "JOBS",
    "InProcessRunner",
    "JobError",
    "JobRunner",
    "SyncRunner",
    "check_job",
    "durable",
    "run_job",
]
