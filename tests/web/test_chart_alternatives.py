"""Every chart has a text alternative (issue 16): each figure builder's data table holds its
traces' numbers, the scatter has a summary of its key numbers, and every page that draws a
chart shows the alternative next to it (a captioned table with headers, a summary sentence,
or a link to a table of the same numbers on the page)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from typing import Any

import pytest

from smartstudy.services.reports.dashboard import DayStat
from smartstudy.services.reports.prediction_quality import (
    CalibrationBin,
    CompletedRow,
    GroupStat,
    PeriodStat,
)
from smartstudy.store.orm import MasterySnapshot
from smartstudy.web import charts
from tests.web.conftest import Web, complete_task, create_task, make_admin, take_quiz
from tests.web.test_preparation import _add_exam, _built_plan, _exam_form

DAY = date(2026, 11, 2)


def _group(topic: str, difficulty: str, n: int, correct: int, seconds: float) -> GroupStat:
    return GroupStat("Maths", topic, difficulty, n, correct, seconds, 0.6, seconds * 1.1)


def _row(correct: bool, seconds: float, median_s: float | None) -> CompletedRow:
    at = datetime(2026, 11, 2, 9, tzinfo=UTC)
    return CompletedRow(at, "Calculus", "easy", correct, seconds, 0.6, median_s, 30, 600, "lnirt")


def _builders() -> dict[str, dict[str, Any]]:
    """One figure per builder, from small hand-made inputs."""
    days = [DayStat(DAY + timedelta(days=i), i % 3, i % 2, 60.0 * i) for i in range(5)]
    groups = [
        _group("Calculus", "easy", 4, 3, 90.0),
        _group("Calculus", "hard", 2, 0, 400.0),
        _group("Algebra", "medium", 3, 2, 150.0),
    ]
    weeks = [PeriodStat(DAY + timedelta(weeks=i), 3 + i, 2, 900.0 * (i + 1), 0.55) for i in (0, 1)]
    bins = [CalibrationBin(0.2, 0.3, 4, 0.25, 0.5), CalibrationBin(0.7, 0.8, 9, 0.74, 0.6667)]
    snapshots = [
        MasterySnapshot(
            n_attempts=k, p_mastery=0.2 * k, created_at=datetime(2026, 11, k, 8, tzinfo=UTC)
        )
        for k in (1, 2, 3)
    ]
    edges = [round(i / 10, 2) for i in range(11)]
    distribution = [
        {
            "model_name": "neural",
            "histogram": {"edges": edges, "counts": [5, 0, 0, 0, 0, 0, 0, 0, 1, 4]},
        },
        {
            "model_name": "lnirt",
            "histogram": {"edges": edges, "counts": [0, 0, 1, 3, 5, 1, 0, 0, 0, 0]},
        },
    ]
    plan = _built_plan()
    return {
        "daily_trend": charts.daily_trend(days),
        "accuracy_by_topic": charts.accuracy_by_topic(groups),
        "time_by_topic": charts.time_by_topic(groups),
        "weekly_progress": charts.weekly_progress(weeks),
        "calibration_chart": charts.calibration_chart(bins),
        "mastery_history": charts.mastery_history(snapshots, 0.1),
        "prediction_histogram": charts.prediction_histogram(distribution),
        "readiness_over_days": charts.readiness_over_days(plan),
        "workload_curve": charts.workload_curve(plan),
    }


def _column(headers: list[str], name: str) -> int:
    assert name in headers, (name, headers)
    return headers.index(name)


@pytest.mark.parametrize("name", list(_builders()))
def test_each_builders_table_holds_its_traces(name: str):
    fig = _builders()[name]
    headers, rows = fig["alt"]["headers"], fig["alt"]["rows"]
    assert rows and all(len(row) == len(headers) for row in rows)
    layout = fig["layout"]
    traces = [t for t in fig["data"] if charts.is_data(t)]
    assert traces
    by_x = {row[0]: row for row in rows}
    assert len(by_x) == len(rows)  # one row per x value
    for trace in traces:
        y_axis = layout["yaxis" + str(trace.get("yaxis", "y"))[1:]]
        points = [
            (by_x[_x_label(fig, x)], charts.format_cell(y, y_axis))
            for x, y in zip(trace["x"], trace["y"], strict=True)
        ]
        # Its column (under a header of its own): the one holding its value at each x.
        columns = [i for i in range(1, len(headers)) if all(row[i] == cell for row, cell in points)]
        assert columns, f"no column of {name} holds the values of {trace['name']!r}"
    # Reference lines (targets, diagonals) are not data columns.
    references = [t for t in fig["data"] if not charts.is_data(t)]
    assert len(headers) >= 1 + len(traces)
    for ref in references:
        assert ref["name"] not in headers


def _x_label(fig: dict[str, Any], x: Any) -> str:
    """The first cell of the row of ``x``: as the x axis shows it; a histogram's bin range."""
    if fig["layout"].get("grid"):  # the distribution's rows are its bins, 10 points wide
        low = round(x - 0.05, 2)
        return f"{low:.0%}–{low + 0.1:.0%}"
    return charts.format_cell(x, fig["layout"]["xaxis"])


def test_tables_name_their_columns_and_units():
    figs = _builders()
    trend = figs["daily_trend"]["alt"]
    assert trend["headers"] == ["day", "tasks per day", "accuracy, last 7 days"]
    assert trend["rows"][1] == ["3 Nov 2026", "1", "100%"]
    accuracy = figs["accuracy_by_topic"]["alt"]
    assert accuracy["headers"][0] == "topic"
    row = accuracy["rows"][
        accuracy["rows"].index(next(r for r in accuracy["rows"] if r[0] == "Calculus"))
    ]
    assert row[_column(accuracy["headers"], "easy: solved")] == "75%"
    assert row[_column(accuracy["headers"], "easy: tasks")] == "4"
    assert row[_column(accuracy["headers"], "medium: solved")] == "—"  # no medium Calculus
    calibration = figs["calibration_chart"]["alt"]
    assert calibration["headers"] == ["predicted chance of success", "observed success", "tasks"]
    assert calibration["rows"] == [["25%", "50%", "4"], ["74%", "67%", "9"]]
    mastery = figs["mastery_history"]["alt"]
    assert mastery["headers"] == ["answers", "mastery", "when"]
    assert mastery["rows"][0] == ["0", "10%", "before the first answer"]
    assert mastery["rows"][-1][:2] == ["3", "60%"]
    workload = figs["workload_curve"]["alt"]
    assert workload["headers"][:3] == [
        "daily minutes",
        "predicted readiness",
        "topics at target (of 2)",
    ]


def test_prediction_distribution_is_small_multiples_not_overlaid_histograms():
    fig = _builders()["prediction_histogram"]
    layout = fig["layout"]
    assert layout.get("barmode") != "overlay"
    assert layout["grid"]["rows"] == 2 and layout["grid"]["pattern"] == "coupled"
    names = [t["name"] for t in fig["data"]]
    assert names == ["neural", "lnirt"]  # one trace per family
    assert [t["yaxis"] for t in fig["data"]] == ["y", "y2"]  # each in its own row
    assert all(t["type"] == "bar" and "opacity" not in t for t in fig["data"])
    # One y scale for every row, so that heights compare across families.
    assert layout["yaxis"]["range"] == layout["yaxis2"]["range"]
    assert layout["yaxis"]["range"][1] >= 0.5  # neural's largest share (5 of 10)
    # Each row is labelled with its family and its number of predictions.
    labels = [a["text"] for a in layout["annotations"]]
    assert labels == ["<b>neural</b> · 10 predictions", "<b>lnirt</b> · 10 predictions"]
    assert [a["yref"] for a in layout["annotations"]] == ["y domain", "y2 domain"]
    table = fig["alt"]
    assert table["headers"] == [
        "predicted chance of success",
        "neural: share",
        "neural: predictions",
        "lnirt: share",
        "lnirt: predictions",
    ]
    assert table["rows"][0] == ["0%–10%", "50%", "5", "0%", "0"]
    assert table["rows"][-1] == ["90%–100%", "40%", "4", "0%", "0"]


def test_the_scatter_has_a_summary_of_its_key_numbers():
    rows = [
        _row(True, 120, 60),  # twice as long as predicted
        _row(True, 60, 60),
        _row(False, 300, 100),  # three times
        _row(True, 30, 60),
        _row(False, 90, None),  # no prediction: not on the chart
    ]
    fig = charts.predicted_vs_actual(rows)
    summary = fig["alt"]["summary"]
    assert summary.startswith("4 tasks with a predicted time (3 correct, 1 wrong).")
    assert "2 of them (50%) took longer than their predicted median" in summary
    # Ratios 2, 1, 3, 0.5: median 1.5; predicted 1, 1, 1.67, 1 min; taken 2, 1, 5, 0.5 min.
    assert "took 1.5 times its predicted time" in summary
    assert "median predicted 1 min, median taken 1.5 min" in summary
    assert "headers" not in fig["alt"]
    empty = charts.predicted_vs_actual([_row(True, 60, None)])
    assert empty["alt"]["summary"] == "No completed task has a predicted time yet."


def test_format_cell_writes_values_as_their_axis_shows_them():
    share = {"tickformat": ".0%"}
    assert charts.format_cell(0.6667, share) == "67%"
    assert charts.format_cell(None, share) == "—"
    assert charts.format_cell("2026-11-30", {"type": "date"}) == "30 Nov 2026"
    assert charts.format_cell(2.345, {}) == "2.35"
    assert charts.format_cell(3.0, {}) == "3"
    assert charts.format_cell(12, {}) == "12"


class _Charts(HTMLParser):
    """The charts of a page and what stands next to them: per chart id its attributes, the
    ids on the page, and per alternative its tables' captions and header cells."""

    def __init__(self) -> None:
        super().__init__()
        self.charts: dict[str, dict[str, str]] = {}
        self.ids: dict[str, dict[str, str]] = {}
        self.text: dict[str, str] = {}
        self.tables: dict[str, dict[str, Any]] = {}
        self.links: dict[str, str] = {}
        self.pointers: dict[str, str] = {}
        self._open: list[tuple[str, str]] = []  # (tag, id) of open elements with an id
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if "data-figure" in a:
            self.charts[a["id"]] = a
        if "id" in a:
            self.ids[a["id"]] = {"tag": tag, **a}
            self._open.append((tag, a["id"]))
            self.text[a["id"]] = ""
        owner = next((i for t, i in reversed(self._open) if i.endswith(("-alt", "-summary"))), None)
        if owner and tag == "table":
            self.tables[owner] = {"caption": "", "col": 0, "row": 0, "cells": 0}
        if owner in self.tables and tag == "th":
            scope = a.get("scope")
            self.tables[owner]["col" if scope == "col" else "row" if scope == "row" else "x"] += 1
        if owner in self.tables and tag == "td":
            self.tables[owner]["cells"] += 1
        if tag == "caption":
            self._in = owner
        if owner and tag == "a":
            self.links[owner] = a.get("href", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "caption":
            self._in = None
        if self._open and self._open[-1][0] == tag:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        for _, i in self._open:
            self.text[i] += data
        if self._in in self.tables:
            self.tables[self._in]["caption"] += data


def _check_alternatives(html: str, path: str) -> _Charts:
    """Each chart's alternative is on the page; the page's charts."""
    page = _Charts()
    page.feed(html)
    assert page.charts, f"{path} draws no chart"
    for chart_id, attrs in page.charts.items():
        assert attrs.get("role") == "img" and attrs.get("aria-label"), (path, chart_id)
        alt, summary = page.ids.get(f"{chart_id}-alt"), page.ids.get(f"{chart_id}-summary")
        if summary is not None:
            assert attrs.get("aria-describedby") == f"{chart_id}-summary"
            assert any(ch.isdigit() for ch in page.text[f"{chart_id}-summary"]), path
        elif alt is not None and alt["tag"] == "details":
            assert "Data as a table" in page.text[f"{chart_id}-alt"], (path, chart_id)
            table = page.tables[f"{chart_id}-alt"]
            assert table["caption"].strip(), (path, chart_id)
            assert table["col"] >= 2 and table["row"] >= 1 and table["cells"] >= 1, (path, table)
        else:
            assert alt is not None, f"{path}: {chart_id} has no text alternative"
            # A pointer to a table of the same numbers elsewhere on the page.
            target = page.links.get(f"{chart_id}-alt", "").removeprefix("#")
            assert page.ids.get(target, {}).get("tag") == "table", (path, chart_id, target)
            page.pointers[chart_id] = target
    return page


def test_every_chart_on_every_page_has_its_alternative(web: Web, context, maths):
    web.signup("robin@example.com", name="Robin")
    for i, difficulty in enumerate(("easy", "medium", "hard", "medium", "easy", "hard")):
        topic = maths.topic_id if i % 2 == 0 else maths.other_topic_id
        complete_task(
            web, create_task(web, topic, difficulty), correct=i % 3 != 0, minutes=str(i + 1)
        )
    take_quiz(web, maths.topic_id)
    exam = _add_exam(web, _exam_form(maths.subject_id))
    pages = {
        "/dashboard": {"chart-trend"},
        "/analytics": {"chart-accuracy", "chart-time", "chart-scatter", "chart-progress"},
        f"/concepts/{maths.concept_ids[0]}": {"chart-mastery"},
        exam: {"chart-readiness", "chart-workload"},
    }
    for path, expected in pages.items():
        r = web.get(path)
        assert r.status_code == 200, path
        assert set(_check_alternatives(r.text, path).charts) == expected
    # The workload chart points to the table of its numbers right below it.
    assert _check_alternatives(web.get(exam).text, exam).pointers == {
        "chart-workload": "workload-table"
    }
    analytics = web.get("/analytics").text
    assert 'id="chart-scatter-summary"' in analytics and "took longer than" in analytics
    # The figure sent to Plotly is the figure, without its alternative.
    assert '"alt"' not in analytics

    make_admin(context)
    web.login("admin@example.com")
    admin = web.get("/admin/models")
    assert set(_check_alternatives(admin.text, "/admin/models").charts) == {"chart-distribution"}
    assert ": share</th>" in admin.text and ": predictions</th>" in admin.text
