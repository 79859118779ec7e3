"""Plotly figures as plain dicts (``{"data": [...], "layout": {...}}``), built on the server.

Plain dicts rather than ``plotly.graph_objects``: the figures are small and fixed, and
skipping the validation layer keeps page rendering fast. ``static/charts.js`` draws each one
with ``Plotly.newPlot``.

Every figure also carries its text alternative under ``"alt"`` (issue 16), built from its own
traces: ``{"headers": [...], "rows": [[...]]}`` for a data table (``figure_table``), or
``{"summary": "..."}`` where a table would be huge (the scatter of predicted against actual
time). The ``chart`` macro shows it under the chart; Plotly never sees it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import date, timedelta
from itertools import pairwise
from statistics import median
from typing import TYPE_CHECKING, Any

from smartstudy.services import localtime
from smartstudy.services.reports.dashboard import DayStat
from smartstudy.services.reports.prediction_quality import (
    CalibrationBin,
    CompletedRow,
    GroupStat,
    PeriodStat,
)
from smartstudy.store.orm import DIFFICULTIES, MasterySnapshot

if TYPE_CHECKING:
    from smartstudy.planning import Plan

#: Whose clock dates are written on: (IANA time zone, locale), e.g. ("Asia/Tokyo", "en-US").
Clock = tuple[str, str]
UTC_CLOCK: Clock = (localtime.DEFAULT_TIME_ZONE, localtime.DEFAULT_LOCALE)

Figure = dict[str, Any]

COLOURS = {"easy": "#1b9e77", "medium": "#7570b3", "hard": "#d95f02"}
ACCENT = "#2563eb"
MUTED = "#94a3b8"
CORRECT = "#15803d"
WRONG = "#b91c1c"
PROBABILITY_AXIS = {
    "title": {"text": "predicted chance of success"},
    "tickformat": ".0%",
    "range": [0, 1],
}
#: No mode bar: it sat over the legend on every chart (issue 16), and a student's charts need
#: no zoom or export buttons; hover still shows the values.
CONFIG = {
    "responsive": True,
    "displaylogo": False,
    "displayModeBar": False,
}


def _layout(**extra: Any) -> dict[str, Any]:
    layout: dict[str, Any] = {
        "margin": {"l": 56, "r": 24, "t": 36, "b": 48},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "font": {
            "family": "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif",
            "size": 13,
            "color": "#1e293b",
        },
        "legend": {"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom"},
        "hovermode": "closest",
        "xaxis": {"gridcolor": "#e2e8f0", "zerolinecolor": "#cbd5e1", "automargin": True},
        "yaxis": {"gridcolor": "#e2e8f0", "zerolinecolor": "#cbd5e1", "automargin": True},
    }
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(layout.get(key), dict):
            layout[key] = {**layout[key], **value}
        else:
            layout[key] = value
    return layout


def figure(data: list[dict[str, Any]], **layout: Any) -> Figure:
    return {"data": data, "layout": _layout(**layout), "config": CONFIG}


# -- text alternatives -----------------------------------------------------------------
#: A data table: column headers, then rows of cells (the first cell of a row is its header).
Table = tuple[list[str], list[list[str]]]
#: An extra column from a trace attribute: trace name -> (attribute, column header), e.g.
#: ``{"easy": ("customdata", "easy: tasks")}`` for the counts behind a bar.
Extra = Mapping[str, tuple[str, str]]
MISSING = "—"


def is_data(trace: dict[str, Any]) -> bool:
    """Whether a trace shows data; reference lines (a target, the diagonal) skip the hover
    and are left out of the tables."""
    return trace.get("hoverinfo") != "skip"


def _axis_of(layout: dict[str, Any], trace: dict[str, Any], letter: str) -> dict[str, Any]:
    """The layout axis a trace is drawn on: ``yaxis`` for "y", ``yaxis2`` for "y2"."""
    ref = str(trace.get(f"{letter}axis", letter))
    return layout.get(f"{letter}axis{ref[1:]}", {})


def _axis_title(axis: dict[str, Any]) -> str:
    title = axis.get("title")
    return str(title.get("text", "")) if isinstance(title, dict) else str(title or "")


def format_cell(value: Any, axis: dict[str, Any], clock: Clock = UTC_CLOCK) -> str:
    """A value as its axis shows it: a share as "62%", a date as the user writes it ("30 Nov
    2026" in en-GB), a number with at most two decimals; None as a dash."""
    if value is None:
        return MISSING
    if "%" in str(axis.get("tickformat", "")):
        return f"{100 * value:.0f}%"
    if axis.get("type") == "date":
        return localtime.format_date(date.fromisoformat(str(value)[:10]), *clock)
    if isinstance(value, float):
        return f"{round(value, 2):g}"
    return str(value)


def _columns_by_x(
    traces: list[dict[str, Any]],
) -> tuple[list[Any], list[list[int | None]]]:
    """The x values of the table (in order of first appearance) and, per trace, its index
    of each (None where it has no point there)."""
    if all(t.get("x") == traces[0].get("x") for t in traces):
        xs = list(traces[0].get("x") or [])
        return xs, [list(range(len(xs))) for _ in traces]
    xs = list(dict.fromkeys(x for t in traces for x in t.get("x") or []))
    where = [{x: i for i, x in enumerate(t.get("x") or [])} for t in traces]
    return xs, [[w.get(x) for x in xs] for w in where]


def figure_table(
    fig: Figure,
    *,
    x_header: str | None = None,
    names: Mapping[str, str] | None = None,
    extra: Extra | None = None,
    x_text: Callable[[Any], str] | None = None,
    clock: Clock = UTC_CLOCK,
) -> Table:
    """The data of a figure as a table: one row per x value, one column per data trace (its
    y values, formatted as its axis shows them), plus ``extra`` columns from the traces'
    other attributes. ``names`` renames a trace's column (a legend entry is not always a
    good column header); ``x_text`` writes the x values (default: as the x axis shows them).
    """
    layout = fig["layout"]
    traces = [t for t in fig["data"] if is_data(t) and "x" in t and "y" in t]
    if not traces:
        return [x_header or _axis_title(layout.get("xaxis", {}))], []
    names, extra = names or {}, extra or {}
    x_axis = layout.get("xaxis", {})
    headers = [x_header or _axis_title(x_axis)]
    columns: list[Callable[[int], str]] = []
    xs, positions = _columns_by_x(traces)
    for trace, index in zip(traces, positions, strict=True):
        name = str(trace.get("name", ""))
        axis = _axis_of(layout, trace, "y")
        ys = trace["y"]
        headers.append(names.get(name, name))
        columns.append(_column(index, lambda i, ys=ys, axis=axis: format_cell(ys[i], axis, clock)))
        if name in extra:
            key, header = extra[name]
            values = trace.get(key) or []
            headers.append(header)
            columns.append(
                _column(index, lambda i, v=values: MISSING if v[i] is None else str(v[i]))
            )
    write_x = x_text or (lambda x: format_cell(x, x_axis, clock))
    rows = [[write_x(x)] + [column(row) for column in columns] for row, x in enumerate(xs)]
    return headers, rows


def _column(index: list[int | None], cell: Callable[[int], str]) -> Callable[[int], str]:
    """A column's cell for table row ``row``: the trace's point at that x, or a dash."""
    return lambda row: MISSING if index[row] is None else cell(index[row])


def with_table(fig: Figure, **options: Any) -> Figure:
    """``fig`` with its data table (``figure_table``'s options) as its text alternative."""
    headers, rows = figure_table(fig, **options)
    fig["alt"] = {"headers": headers, "rows": rows}
    return fig


def with_summary(fig: Figure, summary: str) -> Figure:
    """``fig`` with a sentence of its key numbers as its text alternative."""
    fig["alt"] = {"summary": summary}
    return fig


def _iso(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def rolling_accuracy(days: list[DayStat], window: int = 7) -> list[float | None]:
    """Share correct over each day and the ``window - 1`` days before it (None if no task)."""
    out: list[float | None] = []
    for i in range(len(days)):
        part = days[max(0, i - window + 1) : i + 1]
        n = sum(d.tasks for d in part)
        out.append(round(sum(d.correct for d in part) / n, 4) if n else None)
    return out


def _count_axis(title: str, largest: float) -> dict[str, Any]:
    """The base axis of a bar-and-line chart: counts on the right, whole numbers, no grid.

    The line goes on the overlaying axis (``_share_axis``) so that it is drawn above the bars.
    """
    axis: dict[str, Any] = {
        "title": {"text": title},
        "side": "right",
        "showgrid": False,
        "rangemode": "tozero",
        "tickformat": "d",
    }
    if largest <= 5:  # automatic ticks would fall on halves
        axis.update(tickmode="linear", tick0=0, dtick=1, range=[0, max(1, largest) + 0.5])
    return axis


SHARE_AXIS = {
    "title": {"text": "accuracy"},
    "tickformat": ".0%",
    "range": [0, 1.05],
    "overlaying": "y",
    "side": "left",
    "gridcolor": "#e2e8f0",
    # Its own ticks (an overlaying axis otherwise follows the count axis' ticks).
    "tickmode": "linear",
    "tick0": 0,
    "dtick": 0.2,
}


def daily_trend(days: list[DayStat], clock: Clock = UTC_CLOCK) -> Figure:
    """Tasks per day (bars) and the 7-day accuracy (line) over the last weeks."""
    x = [_iso(d.day) for d in days]
    fig = figure(
        [
            {
                "type": "bar",
                "name": "tasks per day",
                "x": x,
                "y": [d.tasks for d in days],
                "marker": {"color": "#cbd5e1"},
                "hovertemplate": "%{x|%d %b}: %{y} tasks<extra></extra>",
            },
            {
                "type": "scatter",
                "mode": "lines+markers",
                "marker": {"size": 4},
                "name": "accuracy, last 7 days",
                "yaxis": "y2",
                "x": x,
                "y": rolling_accuracy(days),
                "connectgaps": False,
                "line": {"color": ACCENT, "width": 3, "shape": "spline", "smoothing": 0.6},
                "hovertemplate": "7 days to %{x|%d %b}: %{y:.0%} correct<extra></extra>",
            },
        ],
        yaxis=_count_axis("tasks", max((d.tasks for d in days), default=0)),
        yaxis2=SHARE_AXIS,
        xaxis={"type": "date"},
        margin={"r": 56},
        height=280,
    )
    return with_table(fig, x_header="day", clock=clock)


def _topics(stats: list[GroupStat]) -> list[str]:
    return list(dict.fromkeys(g.topic for g in stats))


def _by_difficulty(stats: list[GroupStat]) -> Iterator[tuple[str, dict[str, GroupStat]]]:
    """Each difficulty with stats, in ``DIFFICULTIES`` order, and its stats by topic."""
    for d in DIFFICULTIES:
        by_topic = {g.topic: g for g in stats if g.difficulty == d}
        if by_topic:
            yield d, by_topic


def accuracy_by_topic(stats: list[GroupStat]) -> Figure:
    topics = _topics(stats)
    data = [
        {
            "type": "bar",
            "name": d,
            "x": topics,
            "y": [_round(by_topic[t].accuracy) if t in by_topic else None for t in topics],
            "customdata": [by_topic[t].n if t in by_topic else 0 for t in topics],
            "marker": {"color": COLOURS[d]},
            "hovertemplate": "%{x}, " + d + ": %{y:.0%} of %{customdata} tasks<extra></extra>",
        }
        for d, by_topic in _by_difficulty(stats)
    ]
    fig = figure(
        data,
        barmode="group",
        yaxis={"title": {"text": "accuracy"}, "tickformat": ".0%", "range": [0, 1.05]},
        height=320,
    )
    return with_table(
        fig,
        x_header="topic",
        names={d: f"{d}: solved" for d in DIFFICULTIES},
        extra={d: ("customdata", f"{d}: tasks") for d in DIFFICULTIES},
    )


def time_by_topic(stats: list[GroupStat]) -> Figure:
    """Mean actual minutes (bars) with the mean predicted median (diamonds)."""
    topics = _topics(stats)
    data = []
    for d, by_topic in _by_difficulty(stats):
        data.append(
            {
                "type": "bar",
                "name": d,
                "legendgroup": d,
                "x": topics,
                "y": [
                    _round(by_topic[t].mean_seconds / 60, 2) if t in by_topic else None
                    for t in topics
                ],
                "offsetgroup": d,
                "marker": {"color": COLOURS[d]},
                "hovertemplate": "%{x}, " + d + ": %{y:.1f} min on average<extra></extra>",
            }
        )
        data.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": f"{d} predicted",
                "legendgroup": d,
                "showlegend": False,
                "x": topics,
                "y": [
                    _round((by_topic[t].mean_predicted_seconds or 0) / 60, 2)
                    if t in by_topic and by_topic[t].mean_predicted_seconds
                    else None
                    for t in topics
                ],
                "offsetgroup": d,
                "marker": {
                    "symbol": "diamond",
                    "size": 9,
                    "color": "#0f172a",
                    "line": {"color": "white", "width": 1},
                },
                "hovertemplate": "%{x}, " + d + ": predicted %{y:.1f} min<extra></extra>",
            }
        )
    fig = figure(
        data,
        barmode="group",
        scattermode="group",
        yaxis={"title": {"text": "minutes (◆ predicted median)"}, "rangemode": "tozero"},
        height=320,
    )
    names = {d: f"{d}: mean minutes" for d in DIFFICULTIES}
    names.update({f"{d} predicted": f"{d}: predicted median, minutes" for d in DIFFICULTIES})
    return with_table(fig, x_header="topic", names=names)


def predicted_vs_actual(rows: list[CompletedRow]) -> Figure:
    """Predicted median time against the time taken, log scale, coloured by the result."""
    data = []
    timed = [r for r in rows if r.median_s and r.seconds > 0]
    for correct, name, colour in ((True, "correct", CORRECT), (False, "wrong", WRONG)):
        part = [r for r in timed if r.correct is correct]
        data.append(
            {
                "type": "scattergl" if len(part) > 3000 else "scatter",
                "mode": "markers",
                "name": name,
                "x": [round(r.median_s / 60, 3) for r in part],  # type: ignore[operator]
                "y": [round(r.seconds / 60, 3) for r in part],
                "text": [f"{r.topic}, {r.difficulty}" for r in part],
                "marker": {"color": colour, "size": 7, "opacity": 0.6},
                "hovertemplate": "%{text}<br>predicted %{x:.1f} min, took %{y:.1f} min"
                "<extra></extra>",
            }
        )
    values = [v for r in timed for v in (r.median_s / 60, r.seconds / 60)]  # type: ignore[operator]
    lo, hi = (min(values), max(values)) if values else (0.1, 10.0)
    data.append(
        {
            "type": "scatter",
            "mode": "lines",
            "name": "prediction = actual",
            "x": [lo, hi],
            "y": [lo, hi],
            "line": {"color": MUTED, "dash": "dash"},
            "hoverinfo": "skip",
        }
    )
    ticks = [t for t in _LOG_TICKS if lo / 1.5 <= t <= hi * 1.5] or _LOG_TICKS
    axis = {"type": "log", "tickvals": ticks, "ticktext": [_minutes_label(t) for t in ticks]}
    fig = figure(
        data,
        xaxis={**axis, "title": {"text": "predicted median time"}},
        yaxis={**axis, "title": {"text": "actual time"}},
        height=360,
    )
    return with_summary(fig, scatter_summary(fig))


def scatter_summary(fig: Figure) -> str:
    """The key numbers of the predicted-against-actual scatter, from its points (one per
    task, in minutes): how many, how many took longer than predicted, the median ratio."""
    groups = {t["name"]: list(zip(t["x"], t["y"], strict=True)) for t in fig["data"] if is_data(t)}
    points = [(x, y) for part in groups.values() for x, y in part if x > 0]
    if not points:
        return "No completed task has a predicted time yet."
    n = len(points)
    longer = sum(y > x for x, y in points)
    parts = ", ".join(f"{len(v)} {k}" for k, v in groups.items())
    return (
        f"{n} task{'' if n == 1 else 's'} with a predicted time ({parts}). "
        f"{longer} of them ({longer / n:.0%}) took longer than their predicted median. "
        f"At the median a task took {median(y / x for x, y in points):.2g} times its "
        f"predicted time (median predicted {_minutes_label(median(x for x, _ in points))}, "
        f"median taken {_minutes_label(median(y for _, y in points))})."
    )


_LOG_TICKS = [0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 240, 480]


def _minutes_label(minutes: float) -> str:
    if minutes < 1:
        return f"{round(minutes * 60)} s"
    if minutes < 60:
        return f"{round(minutes, 1):g} min"
    return f"{round(minutes / 60, 1):g} h"


CALIBRATION_TRACE = "your tasks (label: tasks in the group)"


def calibration_chart(bins: list[CalibrationBin]) -> Figure:
    """Reliability diagram: mean predicted chance against how often it came true, each point
    labelled with the number of tasks in its group."""
    fig = figure(
        [
            {
                "type": "scatter",
                "mode": "lines",
                "name": "perfect calibration",
                "x": [0, 1],
                "y": [0, 1],
                "line": {"color": MUTED, "dash": "dash"},
                "hoverinfo": "skip",
            },
            {
                "type": "scatter",
                # Each point is labelled with its task count: a bin of 2 tasks says little.
                "mode": "lines+markers+text",
                "name": CALIBRATION_TRACE,
                "x": [round(b.mean_predicted, 4) for b in bins],
                "y": [round(b.observed, 4) for b in bins],
                "text": [f"n={b.n}" for b in bins],
                "textposition": "top center",
                "textfont": {"size": 11, "color": MUTED},
                "customdata": [b.n for b in bins],
                "marker": {
                    "color": ACCENT,
                    "size": [min(22, 7 + b.n**0.5) for b in bins],
                },
                "line": {"color": ACCENT},
                "hovertemplate": "predicted %{x:.0%}, came true %{y:.0%} "
                "(%{customdata} tasks)<extra></extra>",
            },
        ],
        xaxis={
            "title": {"text": "predicted chance of success"},
            "tickformat": ".0%",
            "range": [0, 1],
        },
        yaxis={"title": {"text": "observed success"}, "tickformat": ".0%", "range": [0, 1.02]},
        height=360,
    )
    return with_table(
        fig,
        names={CALIBRATION_TRACE: "observed success"},
        extra={CALIBRATION_TRACE: ("customdata", "tasks")},
    )


def weekly_progress(weeks: list[PeriodStat], clock: Clock = UTC_CLOCK) -> Figure:
    """Per week: minutes studied (bars), accuracy and mean predicted chance (lines)."""
    # Category labels: a date axis zooms to hours when there is only one week.
    x = [localtime.format_short_date(w.start, *clock) for w in weeks]
    fig = figure(
        [
            {
                "type": "bar",
                "name": "minutes studied",
                "x": x,
                "y": [round(w.seconds / 60, 1) for w in weeks],
                "marker": {"color": "#cbd5e1"},
                "hovertemplate": "week of %{x}: %{y:.0f} min<extra></extra>",
            },
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": "accuracy",
                "yaxis": "y2",
                "x": x,
                "y": [_round(w.accuracy) for w in weeks],
                "line": {"color": ACCENT, "width": 2},
                "hovertemplate": "week of %{x}: %{y:.0%} correct<extra></extra>",
            },
            {
                "type": "scatter",
                "mode": "lines",
                "name": "predicted chance",
                "yaxis": "y2",
                "x": x,
                "y": [_round(w.mean_predicted) for w in weeks],
                "line": {"color": "#0f172a", "dash": "dot"},
                "hovertemplate": "week of %{x}: predicted %{y:.0%}<extra></extra>",
            },
        ],
        yaxis=_count_axis("minutes", max((w.seconds / 60 for w in weeks), default=0)),
        yaxis2=SHARE_AXIS,
        xaxis={"type": "category", "title": {"text": "week starting"}},
        margin={"r": 56},
        height=320,
    )
    return with_table(fig)


def mastery_history(
    snapshots: list[MasterySnapshot], prior: float, clock: Clock = UTC_CLOCK
) -> Figure:
    """The shown mastery after each answer (P(mastered | answers so far), never moved against
    an answer), starting from the prior before the first one."""
    x = [0] + [s.n_attempts for s in snapshots]
    y = [round(prior, 4)] + [round(s.p_mastery, 4) for s in snapshots]
    when = ["before the first answer"] + [
        localtime.format_datetime(s.created_at, *clock) for s in snapshots
    ]
    fig = figure(
        [
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": "mastery",
                "x": x,
                "y": y,
                "text": when,
                "line": {"color": ACCENT, "width": 2},
                "hovertemplate": "after answer %{x} (%{text}): %{y:.0%}<extra></extra>",
            },
            {
                "type": "scatter",
                "mode": "lines",
                "name": "mastered (95%)",
                "x": [0, x[-1]],
                "y": [0.95, 0.95],
                "line": {"color": CORRECT, "dash": "dot"},
                "hoverinfo": "skip",
            },
        ],
        yaxis={"title": {"text": "chance mastered"}, "tickformat": ".0%", "range": [0, 1.02]},
        xaxis={"title": {"text": "answers"}, "rangemode": "tozero", "tickformat": "d"}
        | ({"dtick": 1} if x[-1] <= 12 else {}),
        height=300,
    )
    return with_table(fig, extra={"mastery": ("text", "when")})


MODEL_COLOURS = {"neural": "#7c3aed", "lnirt": ACCENT, "baseline": "#0d9488"}


def prediction_histogram(distributions: list[dict[str, Any]]) -> Figure:
    """Where each model family's predicted chances of success fall: one small histogram per
    family (small multiples), stacked on one x axis and one y scale, each row labelled with
    the family and its number of predictions. Overlaid translucent histograms hid each other
    (issue 16)."""
    shown = []
    for dist in distributions:
        hist = dist.get("histogram") or {}
        edges, counts = hist.get("edges") or [], hist.get("counts") or []
        if len(edges) == len(counts) + 1 and counts:
            shown.append((dist["model_name"], edges, counts))
    top = max((c / (sum(n) or 1) for _, _, n in shown for c in n), default=1.0)
    data: list[dict[str, Any]] = []
    axes: dict[str, Any] = {}
    labels: list[dict[str, Any]] = []
    bins: dict[float, str] = {}
    for i, (name, edges, counts) in enumerate(shown):
        ref = "" if i == 0 else str(i + 1)
        total = sum(counts) or 1
        centres = [round((a + b) / 2, 4) for a, b in pairwise(edges)]
        bins.update(
            (c, f"{a:.0%}–{b:.0%}") for c, (a, b) in zip(centres, pairwise(edges), strict=True)
        )
        data.append(
            {
                "type": "bar",
                "name": name,
                "xaxis": "x",
                "yaxis": f"y{ref}",
                "x": centres,
                "y": [round(c / total, 4) for c in counts],
                "width": [round(b - a, 4) for a, b in pairwise(edges)],
                "customdata": counts,
                "marker": {"color": MODEL_COLOURS.get(name, MUTED)},
                "hovertemplate": name + ": %{customdata} predictions around %{x:.0%}"
                " (%{y:.0%})<extra></extra>",
            }
        )
        axes[f"yaxis{ref}"] = {
            "tickformat": ".0%",
            "range": [0, round(top * 1.15, 4)],
            "nticks": 3,
            "gridcolor": "#e2e8f0",
            "automargin": True,
        }
        labels.append(
            {
                "text": f"<b>{name}</b> · {sum(counts)} predictions",
                "xref": "paper",
                "yref": f"y{ref} domain",
                "x": 0,
                "y": 1,
                "xanchor": "left",
                "yanchor": "bottom",
                "showarrow": False,
            }
        )
    fig = figure(
        data,
        grid={"rows": max(1, len(shown)), "columns": 1, "pattern": "coupled", "ygap": 0.45},
        showlegend=False,
        annotations=labels,
        xaxis={
            "title": {"text": "predicted chance of success"},
            "tickformat": ".0%",
            "range": [0, 1],
        },
        margin={"t": 28},
        height=160 + 120 * len(shown),
        **axes,
    )
    names = {name: f"{name}: share" for name, _, _ in shown}
    extra = {name: ("customdata", f"{name}: predictions") for name, _, _ in shown}
    return with_table(fig, names=names, extra=extra, x_text=lambda x: bins.get(x, f"{x:.0%}"))


# Exam preparation (issue 13): the plan's readiness per topic and the workload curve.

#: One colour per topic, in the order of the plan's readiness rows.
TOPIC_COLOURS = [
    "#2563eb",
    "#d95f02",
    "#1b9e77",
    "#7570b3",
    "#e7298a",
    "#66a61e",
    "#a6761d",
    "#0891b2",
]
#: A legend at the bottom of the figure: with one entry per topic it may need several rows,
#: and above the plot those rows would run under the mode bar (top right). Anchored to the
#: container, not the plot, so that on a phone its rows push the plot up instead of covering
#: the axis.
LEGEND_BELOW = {
    "orientation": "h",
    "x": 0,
    "xref": "container",
    "y": 0,
    "yref": "container",
    "yanchor": "bottom",
}


def _target_line(start: Any, end: Any, target: float) -> dict[str, Any]:
    """The dashed line of the readiness target, from ``start`` to ``end`` on the x axis."""
    return {
        "type": "scatter",
        "mode": "lines",
        "name": f"target {target:.0%}",
        "x": [start, end],
        "y": [target, target],
        "line": {"color": "#0f172a", "dash": "dash", "width": 1.5},
        "hoverinfo": "skip",
    }


def readiness_over_days(plan: Plan, clock: Clock = UTC_CLOCK) -> Figure:
    """Projected readiness per topic (the chance of solving a task at the exam's difficulty)
    from now to the exam date, with the target as a dashed line. Each day's value is drawn
    at the start of the next day, so the last point is the readiness on the exam date."""
    x = [_iso(plan.today)] + [_iso(d.day + timedelta(days=1)) for d in plan.days]
    many = len(x) > 22
    data: list[dict[str, Any]] = []
    for i, r in enumerate(plan.readiness):
        colour = TOPIC_COLOURS[i % len(TOPIC_COLOURS)]
        data.append(
            {
                "type": "scatter",
                "mode": "lines" if many else "lines+markers",
                "name": r.topic_name,
                "x": x,
                "y": [_round(r.now)] + [_round(v) for v in plan.trajectory.get(r.topic_id, ())],
                "line": {"color": colour, "width": 2},
                "marker": {"size": 5},
                "hovertemplate": r.topic_name + ", %{x|%a %d %b}: %{y:.0%}<extra></extra>",
            }
        )
    if x:
        data.append(_target_line(x[0], x[-1], plan.target))
    fig = figure(
        data,
        xaxis={"type": "date"},
        yaxis={
            "title": {"text": f"readiness ({plan.exam_difficulty})"},
            "tickformat": ".0%",
            "range": [0, 1.02],
        },
        legend=LEGEND_BELOW,
        margin={"t": 16, "b": 40},
        height=360,
    )
    return with_table(fig, x_header="start of day", clock=clock)


def workload_curve(plan: Plan) -> Figure:
    """Daily minutes against the predicted readiness on the exam date (weighted over the
    topics), with the chosen budget marked and the target dashed."""
    points = sorted(plan.workload, key=lambda w: w.daily_minutes)
    x = [w.daily_minutes for w in points]
    n_topics = len(plan.readiness)
    data: list[dict[str, Any]] = [
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": "predicted readiness",
            "x": x,
            "y": [_round(w.readiness) for w in points],
            "customdata": [w.topics_at_target for w in points],
            "line": {"color": ACCENT, "width": 2},
            "marker": {"size": 5},
            "hovertemplate": "%{x} min/day: %{y:.0%}, %{customdata} of "
            + str(n_topics)
            + " topics at target<extra></extra>",
        }
    ]
    if x:
        data.append(_target_line(x[0], x[-1], plan.target))
    chosen = [w for w in points if w.daily_minutes == plan.daily_minutes]
    if chosen:
        data.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": f"your budget ({plan.daily_minutes} min/day)",
                "x": [chosen[0].daily_minutes],
                "y": [_round(chosen[0].readiness)],
                "marker": {
                    "symbol": "diamond",
                    "size": 14,
                    "color": "#d95f02",
                    "line": {"color": "white", "width": 1},
                },
                "hovertemplate": "your budget, %{x} min/day: %{y:.0%}<extra></extra>",
            }
        )
    needed = [w for w in points if w.daily_minutes == plan.minutes_needed]
    if needed and plan.minutes_needed != plan.daily_minutes:
        data.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": f"every topic at target ({plan.minutes_needed} min/day)",
                "x": [needed[0].daily_minutes],
                "y": [_round(needed[0].readiness)],
                "marker": {"symbol": "star", "size": 13, "color": CORRECT},
                "hovertemplate": "every topic at target from %{x} min/day<extra></extra>",
            }
        )
    fig = figure(
        data,
        xaxis={"title": {"text": "daily minutes"}, "rangemode": "tozero"},
        yaxis={
            "title": {"text": "readiness at the exam"},
            "tickformat": ".0%",
            "range": [0, 1.02],
        },
        legend=LEGEND_BELOW,
        margin={"t": 16, "b": 40},
        height=340,
    )
    return with_table(
        fig,
        extra={"predicted readiness": ("customdata", f"topics at target (of {n_topics})")},
    )
