"""Direct tests of ``services.reports.prediction_quality``: the reliability diagram, ECE and
80% coverage (through ``smartstudy.eval.metrics``), weekly progress and the two queries, with
expected values worked out by hand."""

from __future__ import annotations

import math
import random
from datetime import UTC, date, datetime

import pytest

from smartstudy.eval import metrics
from smartstudy.services import accounts, catalogue
from smartstudy.services.context import AppContext
from smartstudy.services.reports import prediction_quality as pq
from smartstudy.services.reports.prediction_quality import CompletedRow
from smartstudy.store.db import session_scope
from smartstudy.store.orm import PracticeTask


def _row(
    p: float | None,
    correct: bool,
    *,
    at: datetime = datetime(2026, 11, 2, 12, 0),
    seconds: float = 60.0,
    interval: tuple[float, float, float] | None = None,
) -> CompletedRow:
    p10, median, p90 = interval or (None, None, None)
    return CompletedRow(at, "Algebra", "easy", correct, seconds, p, median, p10, p90, "baseline")


def _ece_as_the_page_defined_it(rows: list[CompletedRow], n_bins: int = 10) -> float:
    """The ECE the analytics page computed before it used ``eval.metrics``: the bins of the
    reliability diagram, each weighted by its share of the scored tasks."""
    scored = [r for r in rows if r.p_correct is not None]
    bins = pq.calibration(scored, n_bins)
    return sum(b.n / len(scored) * abs(b.mean_predicted - b.observed) for b in bins)


# -- calibration and ECE ---------------------------------------------------------------------
def test_a_calibration_bin_holds_the_mean_prediction_and_the_observed_rate():
    rows = [
        _row(0.72, True),
        _row(0.78, False),
        _row(0.70, True),  # 0.70 * 10 = 7.0: the bin [0.7, 0.8)
        _row(0.15, False),
        _row(1.0, True),  # p == 1 goes into the last bin
        _row(None, True),  # no prediction: not in any bin
    ]
    bins = pq.calibration(rows)
    assert [(b.lower, b.upper, b.n) for b in bins] == [(0.1, 0.2, 1), (0.7, 0.8, 3), (0.9, 1.0, 1)]
    middle = bins[1]
    assert middle.mean_predicted == pytest.approx((0.72 + 0.78 + 0.70) / 3)
    assert middle.observed == pytest.approx(2 / 3)
    assert bins[0].observed == 0.0 and bins[2].observed == 1.0


def test_the_ece_is_worked_out_by_hand():
    # Bin [0.2, 0.3): 0.25 twice, one correct -> |0.5 - 0.25| = 0.25, weight 2/6.
    # Bin [0.8, 0.9): 0.8 four times, all correct -> |1.0 - 0.8| = 0.2, weight 4/6.
    rows = [_row(0.25, True), _row(0.25, False)] + [_row(0.8, True) for _ in range(4)]
    expected = 2 / 6 * 0.25 + 4 / 6 * 0.2
    quality = pq.prediction_quality(rows)
    assert quality.ece == pytest.approx(expected, abs=1e-12)
    assert quality.brier == pytest.approx((0.75**2 + 0.25**2 + 4 * 0.2**2) / 6)
    assert quality.mean_predicted == pytest.approx((0.5 + 3.2) / 6)
    assert quality.accuracy == pytest.approx(5 / 6)


def test_the_ece_of_eval_metrics_equals_the_one_the_page_showed_before():
    rng = random.Random(7)
    rows = [_row(rng.random(), rng.random() < 0.6) for _ in range(500)]
    rows += [_row(1.0, True), _row(0.0, False), _row(0.5, True), _row(None, False)]
    for n_bins in (1, 5, 10, 20):
        shown = pq.prediction_quality(rows, n_bins).ece
        assert shown == pytest.approx(_ece_as_the_page_defined_it(rows, n_bins), abs=1e-12)


# -- time intervals --------------------------------------------------------------------------
def test_the_80_percent_coverage_and_the_median_log_ratio_by_hand():
    rows = [
        _row(0.5, True, seconds=60.0, interval=(30.0, 60.0, 120.0)),  # inside
        _row(0.5, True, seconds=120.0, interval=(30.0, 60.0, 120.0)),  # on the edge: inside
        _row(0.5, False, seconds=200.0, interval=(30.0, 100.0, 120.0)),  # above: outside
        _row(0.5, False, seconds=10.0, interval=(20.0, 40.0, 80.0)),  # below: outside
        _row(0.5, True, seconds=50.0),  # no predicted time: not counted
    ]
    quality = pq.prediction_quality(rows)
    assert quality.coverage80 == pytest.approx(2 / 4)
    # |log ratio|: 0, log 2, log 2, log 4; the upper median of four is log 2.
    assert quality.median_abs_log_ratio == pytest.approx(math.log(2))


def test_a_reversed_interval_is_left_out_of_coverage_not_counted_as_a_miss():
    """The one deliberate difference from the page's old loop: ``eval.metrics`` refuses an
    interval whose p10 exceeds its p90 (the service never stores one), so such a task is left
    out of the coverage instead of counting as outside."""
    rows = [
        _row(0.5, True, seconds=60.0, interval=(30.0, 60.0, 120.0)),
        _row(0.5, True, seconds=60.0, interval=(120.0, 60.0, 30.0)),
    ]
    assert pq.prediction_quality(rows).coverage80 == 1.0


def test_no_rows_and_no_predictions_give_no_numbers():
    assert pq.prediction_quality([]) == pq.Quality(0, None, None, None, None, None, None)
    quality = pq.prediction_quality([_row(None, True), _row(None, False)])
    assert (quality.n, quality.accuracy) == (2, 0.5)
    assert quality.ece is None and quality.brier is None and quality.coverage80 is None


def test_the_ece_is_set_against_what_chance_alone_gives_on_as_many_tasks():
    """Calibrated predictions on 40 tasks show an ECE of about 15% by chance alone, so such
    an ECE is no sign of miscalibration; predictions of 90% on 200 tasks of which a third
    were solved are miscalibrated beyond any chance."""
    rng = random.Random(4)
    p = [rng.uniform(0.3, 0.9) for _ in range(40)]
    calibrated = [_row(pi, rng.random() < pi) for pi in p] + [_row(None, True)]
    quality = pq.prediction_quality(calibrated)
    mean, p95 = metrics.calibrated_ece(p, draws=pq.CHANCE_DRAWS)
    assert (quality.ece_by_chance, quality.ece_by_chance_p95) == (mean, p95)
    assert 0.1 < quality.ece_by_chance < 0.2 and quality.scored == 40
    assert quality.ece is not None and quality.ece <= p95
    assert quality.ece_beyond_chance is False

    overconfident = [_row(0.9, k % 3 == 0) for k in range(200)]
    quality = pq.prediction_quality(overconfident)
    assert quality.ece == pytest.approx(0.9 - 67 / 200)
    assert quality.ece_by_chance is not None and quality.ece_by_chance < 0.05
    assert quality.ece_beyond_chance is True
    assert pq.prediction_quality([_row(None, True)]).ece_beyond_chance is None


def test_the_coverage_is_set_against_what_chance_alone_gives_on_as_many_tasks():
    # 40 tasks: exact 80% intervals cover 27 to 37 of them 95 times in 100 (binomial).
    assert metrics.coverage_by_chance(40) == (27 / 40, 37 / 40)
    low, high = metrics.coverage_by_chance(1000)
    assert 0.77 < low < 0.8 < high < 0.83
    for bad in (0, 2.5, -1):
        with pytest.raises(ValueError, match="n"):
            metrics.coverage_by_chance(bad)  # type: ignore[arg-type]

    def rows(inside: int, outside: int) -> list[CompletedRow]:
        interval = (30.0, 60.0, 120.0)
        return [_row(0.5, True, seconds=60.0, interval=interval) for _ in range(inside)] + [
            _row(0.5, True, seconds=600.0, interval=interval) for _ in range(outside)
        ]

    within = pq.prediction_quality([*rows(29, 11), _row(0.5, True)])  # 72.5%, one untimed
    assert within.timed == 40 and within.coverage_by_chance == (27 / 40, 37 / 40)
    assert within.coverage_beyond_chance is False
    assert pq.prediction_quality(rows(20, 20)).coverage_beyond_chance is True
    assert pq.prediction_quality(rows(40, 0)).coverage_beyond_chance is True
    assert pq.prediction_quality([_row(0.5, True)]).coverage_beyond_chance is None


def test_the_calibration_shortfall_counts_only_tasks_with_a_prediction():
    rows = [_row(0.5, True)] * 12 + [_row(None, True)] * 40
    assert pq.calibration_shortfall(rows) == pq.CALIBRATION_MIN_TASKS - 12
    assert pq.calibration_shortfall([_row(0.5, True)] * 31) == 0


# -- weekly progress -------------------------------------------------------------------------
def test_progress_by_week_adds_up_each_week_and_keeps_empty_weeks():
    rows = [
        _row(0.6, True, at=datetime(2026, 11, 2, 9), seconds=100.0),  # Monday, week of 2 Nov
        _row(None, False, at=datetime(2026, 11, 8, 23), seconds=50.0),  # Sunday, same week
        _row(0.2, False, at=datetime(2026, 11, 4, 9), seconds=30.0),
        _row(0.9, True, at=datetime(2026, 11, 17, 9), seconds=10.0),  # week of 16 Nov
    ]
    weeks = pq.progress_by_week(rows)
    assert [w.start for w in weeks] == [date(2026, 11, 2), date(2026, 11, 9), date(2026, 11, 16)]
    first, empty, last = weeks
    assert (first.tasks, first.correct, first.seconds) == (3, 1, 180.0)
    assert first.mean_predicted == pytest.approx(0.4)  # (0.6 + 0.2) / 2: one had none
    assert first.accuracy == pytest.approx(1 / 3)
    assert (empty.tasks, empty.accuracy, empty.mean_predicted) == (0, None, None)
    assert (last.tasks, last.correct, last.mean_predicted) == (1, 1, 0.9)
    assert pq.progress_by_week([]) == []


# -- the queries (each backend) --------------------------------------------------------------
def _completed(session, user_id, topic_id, difficulty, correct, seconds, p, at) -> None:
    session.add(
        PracticeTask(
            user_id=user_id,
            topic_id=topic_id,
            difficulty=difficulty,
            created_at=at,
            completed_at=at,
            is_correct=correct,
            actual_time_seconds=seconds,
            predicted_correct=p,
            predicted_time_median_s=None if p is None else 60.0,
            model_name="baseline",
        )
    )


def test_stats_by_topic_and_difficulty_and_the_completed_rows(context: AppContext):
    at = datetime(2026, 11, 25, 23, 30, tzinfo=UTC)
    with session_scope(context.sessions) as session:
        me = accounts.create_user(session, "quality@example.com", "correct horse 1")
        me.time_zone = "Asia/Tokyo"
        other = accounts.create_user(session, "other@example.com", "correct horse 1")
        algebra = catalogue.ensure_topic(session, "Mathematics", "Algebra")
        bio = catalogue.ensure_topic(session, "Biology", "Cells")
        session.flush()
        _completed(session, me.id, algebra.id, "hard", True, 100.0, 0.4, at)
        _completed(session, me.id, algebra.id, "easy", True, 30.0, 0.9, at)
        _completed(session, me.id, algebra.id, "easy", False, 50.0, 0.7, at)
        _completed(session, me.id, bio.id, "medium", False, 20.0, None, at)
        _completed(session, other.id, algebra.id, "easy", True, 999.0, 0.1, at)
        session.add(PracticeTask(user_id=me.id, topic_id=algebra.id, difficulty="easy"))  # open
        user_id = me.id
    with session_scope(context.sessions) as session:
        stats = pq.by_topic_and_difficulty(session, user_id)
        completed = pq.completed_rows(session, user_id)
    assert [(g.subject, g.topic, g.difficulty, g.n) for g in stats] == [
        ("Biology", "Cells", "medium", 1),
        ("Mathematics", "Algebra", "easy", 2),
        ("Mathematics", "Algebra", "hard", 1),
    ]
    easy = stats[1]
    assert (easy.n_correct, easy.accuracy, easy.mean_seconds) == (1, 0.5, 40.0)
    assert easy.mean_predicted == pytest.approx(0.8)
    assert easy.mean_predicted_seconds == pytest.approx(60.0)
    assert stats[0].mean_predicted is None
    assert len(completed) == 4  # the other user's task and the open one are not there
    # On the user's clock: 23:30 UTC on the 25th is 08:30 on the 26th in Tokyo.
    assert {(r.completed_at.date(), r.completed_at.hour) for r in completed} == {
        (date(2026, 11, 26), 8)
    }
    assert sorted(r.seconds for r in completed) == [20.0, 30.0, 50.0, 100.0]
