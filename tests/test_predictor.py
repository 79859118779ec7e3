"""The prediction chain: fallbacks, broken artifacts, several processes on one database."""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid

import pytest
from sqlalchemy import select

from smartstudy.models.baseline import Baseline
from smartstudy.services import accounts, catalogue, tasks
from smartstudy.services import predictor as predictor_module
from smartstudy.services.predictor import PredictionService, PredictionUnavailableError
from smartstudy.store.db import UnitOfWork, session_scope
from smartstudy.store.orm import ModelVersion


class Exploding(Baseline):
    """A model that trains fine and then fails to predict."""

    def _predict_validated(self, data):
        raise RuntimeError("boom")


@pytest.fixture
def world(context):
    with session_scope(context.sessions) as session:
        user = accounts.create_user(session, "ada@example.com", "password 123")
        subject = catalogue.create_subject(session, "Maths")
        topic = catalogue.create_topic(session, subject.id, "Calculus")
        return user, topic


def _complete(context, session, service, user, topic, correct, seconds, difficulty="medium"):
    """Create and complete one task through the completion use case, served by ``service``
    (no training: the counter's threshold is out of reach)."""
    served = dataclasses.replace(
        context,
        predictor=service,
        settings=context.settings.model_copy(update={"retrain_every": 10**9}),
    )
    task = tasks.create_task(session, service, user, topic.id, difficulty)
    return tasks.complete_task(served, UnitOfWork(session), user, task.id, correct, seconds)


def test_chain_falls_back_and_logs(context, world, caplog):
    user, topic = world
    service = PredictionService(
        chain=("exploding", "baseline"),
        factories={"exploding": Exploding, "baseline": Baseline},
        fixed_order=True,  # "exploding" is asked first, though nothing is held out
    )
    with context.sessions() as session, caplog.at_level(logging.ERROR):
        p = service.predict(session, user.id, topic.id, "easy")
        session.commit()
    assert p.model_name == "baseline"
    assert "exploding failed to predict" in caplog.text


def test_nothing_left_raises_unavailable(context, world):
    user, topic = world
    service = PredictionService(chain=("exploding",), factories={"exploding": Exploding})
    with context.sessions() as session, pytest.raises(PredictionUnavailableError, match="boom"):
        service.predict(session, user.id, topic.id, "easy")


def test_corrupt_artifact_is_retired_and_rebuilt(context, world, caplog):
    user, topic = world
    with context.sessions() as session:
        first = PredictionService().predict(session, user.id, topic.id, "easy")
        session.commit()
        row = session.scalar(
            select(ModelVersion).where(
                ModelVersion.is_active.is_(True), ModelVersion.model_name == "baseline"
            )
        )
        row.artifact = b"not a zip file"
        session.commit()
    with context.sessions() as session, caplog.at_level(logging.ERROR):
        again = PredictionService().predict(session, user.id, topic.id, "easy")
        session.commit()
        versions = session.scalars(
            select(ModelVersion)
            .where(ModelVersion.model_name == "baseline")
            .order_by(ModelVersion.version)
        ).all()
    assert "unusable" in caplog.text
    assert [(v.version, v.status, v.is_active) for v in versions] == [
        (1, "corrupt", False),
        (2, "active", True),
    ]
    assert again.model_version == "2"
    assert again.p_correct == pytest.approx(first.p_correct)


def test_a_corrupt_non_final_model_falls_back(context, world):
    user, topic = world
    factories = {"first": Baseline, "baseline": Baseline}
    with context.sessions() as session:
        PredictionService(
            chain=("first", "baseline"), factories=factories, fixed_order=True
        ).predict(session, user.id, topic.id, "easy")
        for row in session.scalars(select(ModelVersion).where(ModelVersion.model_name == "first")):
            row.artifact = b"garbage"
        session.commit()
    with context.sessions() as session:
        p = PredictionService(
            chain=("first", "baseline"), factories=factories, fixed_order=True
        ).predict(session, user.id, topic.id, "easy")
    assert p.model_name == "baseline"


def test_another_process_sees_completions(context, world):
    """Two services on one database: B completes tasks, A's predictions follow."""
    user, topic = world
    a, b = PredictionService(), PredictionService()
    with context.sessions() as session:
        before = a.predict(session, user.id, topic.id, "hard")
        session.commit()
    with context.sessions() as session:
        for _ in range(5):
            _complete(context, session, b, user, topic, correct=True, seconds=20, difficulty="hard")
    with context.sessions() as session:
        after_a = a.predict(session, user.id, topic.id, "hard")
        after_b = b.predict(session, user.id, topic.id, "hard")
    assert after_a.p_correct > before.p_correct
    assert after_a.time_median_s < before.time_median_s
    assert after_a.p_correct == pytest.approx(after_b.p_correct)
    assert after_a.time_median_s == pytest.approx(after_b.time_median_s)


def test_a_server_reads_other_processes_at_most_every_sync_interval(context, world, monkeypatch):
    """With a sync interval, A answers from what it last read until the interval has
    passed (or a forced sync); then it has learnt B's completions, each once, and reads
    only the tasks it has not taken in yet."""
    user, topic = world
    a, b = PredictionService(sync_interval=30.0), PredictionService()
    with context.sessions() as session:
        before = a.predict(session, user.id, topic.id, "hard")
        session.commit()
    with context.sessions() as session:
        for _ in range(5):
            _complete(context, session, b, user, topic, correct=True, seconds=20, difficulty="hard")
    with context.sessions() as session:
        stale = a.predict(session, user.id, topic.id, "hard")
        assert stale == before  # within the interval: nothing read
        read = []
        real = predictor_module._unseen_completions

        def spy(session, seen, since):
            out = real(session, seen, since)
            read.append(len(out))
            return out

        monkeypatch.setattr(predictor_module, "_unseen_completions", spy)
        a.sync(session, force=True)
        a.sync(session, force=True)  # nothing new: nothing read whole
        assert read == [5, 0]
        after_a = a.predict(session, user.id, topic.id, "hard")
        after_b = b.predict(session, user.id, topic.id, "hard")
    assert after_a.p_correct > before.p_correct
    assert after_a.p_correct == pytest.approx(after_b.p_correct)
    assert after_a.time_median_s == pytest.approx(after_b.time_median_s)


def test_a_following_server_learns_other_processes_without_a_request(context, world):
    """A server's follower thread reads the completions of other processes every interval,
    so that no request pays for that read; once it has stopped, requests read again."""
    user, topic = world
    a, b = PredictionService(sync_interval=0.05), PredictionService()
    with context.sessions() as session:
        before = a.predict(session, user.id, topic.id, "hard")
        session.commit()
    a.follow(context.sessions)
    try:
        with context.sessions() as session:
            for _ in range(5):
                _complete(
                    context, session, b, user, topic, correct=True, seconds=20, difficulty="hard"
                )
        with context.sessions() as session:
            expected = b.predict(session, user.id, topic.id, "hard")
        # The follower may read the five completions over several intervals.
        deadline = time.monotonic() + 10
        learnt = before
        while abs(learnt.p_correct - expected.p_correct) > 1e-9 and time.monotonic() < deadline:
            time.sleep(0.02)
            with context.sessions() as session:  # answers from what A has read: no read
                learnt = a._predict_synced(session, user.id, topic.id, "hard")
        assert learnt.p_correct > before.p_correct
        assert learnt.p_correct == pytest.approx(expected.p_correct)
    finally:
        a.stop_following()
    assert a._follower is None
    with context.sessions() as session:
        _complete(context, session, b, user, topic, correct=False, seconds=20, difficulty="hard")
        time.sleep(0.06)
        after = a.predict(session, user.id, topic.id, "hard")  # reads it itself
        assert after.p_correct == pytest.approx(
            b.predict(session, user.id, topic.id, "hard").p_correct
        )
        assert after.p_correct < learnt.p_correct


def test_a_server_stopped_before_its_warm_up_ended_starts_no_follower(context):
    """The warm-up thread starts the follower when it is done; a server told to stop before
    that (a short-lived process, a test's client) must neither fail to stop nor leave a
    follower reading through a closed engine."""
    service = PredictionService(sync_interval=0.05)
    service.stop_following()
    service.follow(context.sessions)
    assert service._follower is None
    service.stop_following()


def test_a_completion_committed_late_is_learnt_by_the_next_whole_window_read(
    context, world, monkeypatch
):
    """Most syncs read only the newest ``SYNC_RECENT`` of the catch-up window; one whose
    completion time is older than that when it becomes visible (another process committed
    it late) is learnt by the next read of the whole window, at most ``SYNC_FULL_EVERY``
    seconds later, and once."""
    user, topic = world
    a, b = PredictionService(), PredictionService()
    read = []
    real = predictor_module._unseen_completions

    def spy(session, seen, since):
        out = real(session, seen, since)
        read.append([r["task_id"] for r in out])
        return out

    with context.sessions() as session:
        # A's models have learnt a completion: what they learn next comes from its syncs.
        _complete(context, session, a, user, topic, correct=True, seconds=30)
        b.predict(session, user.id, topic.id, "hard")
        on_time = _complete(context, session, b, user, topic, correct=True, seconds=20)
        late = _complete(context, session, b, user, topic, correct=False, seconds=40)
        late.completed_at = on_time.completed_at - 2 * predictor_module.SYNC_RECENT
        session.commit()
        monkeypatch.setattr(predictor_module, "_unseen_completions", spy)
        a._full_sync_at = time.monotonic()  # a whole-window read just happened
        a.sync(session)
        assert read == [[on_time.id]]
        assert late.id not in a._feed.seen
        a._full_sync_at -= predictor_module.SYNC_FULL_EVERY
        a.sync(session)
        a.sync(session, force=True)
        assert read[1:] == [[late.id], []]
        after_a = a.predict(session, user.id, topic.id, "medium")
        after_b = b.predict(session, user.id, topic.id, "medium")
    assert after_a.p_correct == pytest.approx(after_b.p_correct)


def test_each_completion_is_learnt_once(context, world):
    user, topic = world
    service = PredictionService()
    with context.sessions() as session:
        task = _complete(context, session, service, user, topic, correct=False, seconds=600)
        once = service.predict(session, user.id, topic.id, "medium")
        service.observe(task)  # a repeated notification changes nothing
        twice = service.predict(session, user.id, topic.id, "medium")
    assert once == twice


def test_new_user_gets_population_prediction(context, world):
    user, topic = world
    service = PredictionService()
    with context.sessions() as session:
        for _ in range(4):
            _complete(context, session, service, user, topic, correct=True, seconds=30)
        stranger = service.predict(session, uuid.uuid4(), topic.id, "medium")
        known = service.predict(session, user.id, topic.id, "medium")
    assert 0 < stranger.p_correct < 1
    assert known.p_correct > stranger.p_correct


def test_predict_cells_answers_like_predict_after_one_sync(context, world, monkeypatch):
    user, topic = world
    service = PredictionService()
    with context.sessions() as session:
        for k in range(6):
            _complete(context, session, service, user, topic, k % 2 == 0, 60.0 + k, "easy")
        session.commit()
        cells = [(topic.id, d) for d in ("easy", "medium", "hard")]
        one_by_one = [service.predict(session, user.id, t, d) for t, d in cells]
        syncs = []
        real_sync = service.sync
        monkeypatch.setattr(service, "sync", lambda s, **kw: syncs.append(1) or real_sync(s, **kw))
        together = service.predict_cells(session, user.id, cells)
    assert len(syncs) == 1
    assert together == one_by_one
