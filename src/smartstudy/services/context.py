"""The long-lived objects one running SmartStudy needs, built once from ``Settings``."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from smartstudy.config import Settings
from smartstudy.jobs.runner import InProcessRunner, JobRunner
from smartstudy.services.predictor import PredictionService
from smartstudy.store import migrate
from smartstudy.store.db import make_engine, make_session_factory


@dataclass
class AppContext:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    predictor: PredictionService = field(default_factory=PredictionService)
    runner: JobRunner = field(default_factory=InProcessRunner)

    @classmethod
    def from_settings(cls, settings: Settings) -> AppContext:
        engine = make_engine(settings.resolved_database_url)
        return cls(settings=settings, engine=engine, sessions=make_session_factory(engine))

    def migrate(self) -> None:
        migrate.upgrade(self.engine)

    def close(self) -> None:
        self.runner.shutdown()
        self.engine.dispose()
