"""The long-lived objects one running SmartStudy needs, built once from ``Settings``."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from smartstudy.config import Settings
from smartstudy.jobs.runner import InProcessRunner, JobRunner
from smartstudy.services.history import TrainingHistory
from smartstudy.services.predictor import PredictionService
from smartstudy.services.registry import HeldOutMemo
from smartstudy.store import migrate
from smartstudy.store.db import make_engine, make_session_factory


def make_runner(settings: Settings) -> JobRunner:
    """The runner ``SMARTSTUDY_JOBS`` selects: in this process, or sent to Celery workers
    (``jobs.celery_app.BrokerError`` when Celery lacks its Redis URL)."""
    if settings.jobs == "celery":
        from smartstudy.jobs.celery_app import CeleryRunner

        return CeleryRunner(settings)
    return InProcessRunner()


@dataclass
class AppContext:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    predictor: PredictionService = field(default_factory=PredictionService)
    runner: JobRunner = field(default_factory=InProcessRunner)
    #: What the trainings of this process predicted of the held-out students.
    held_out: HeldOutMemo = field(default_factory=HeldOutMemo)
    #: The completed tasks its last training read (``services.history``).
    history: TrainingHistory = field(default_factory=TrainingHistory)

    def __setattr__(self, name: str, value: object) -> None:
        # A runner that runs jobs in this process runs them against the context holding it,
        # however it got there (the constructor, or a test swapping it).
        super().__setattr__(name, value)
        if name == "runner":
            bind = getattr(value, "bind", None)
            if callable(bind):
                bind(self)

    @classmethod
    def from_settings(cls, settings: Settings) -> AppContext:
        engine = make_engine(settings.resolved_database_url)
        return cls(
            settings=settings,
            engine=engine,
            sessions=make_session_factory(engine),
            runner=make_runner(settings),
        )

    def migrate(self) -> None:
        migrate.upgrade(self.engine)

    def close(self) -> None:
        self.predictor.stop_following()  # its thread reads through the engine
        self.runner.shutdown()
        self.engine.dispose()
