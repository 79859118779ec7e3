"""Plotly figures as plain dicts (``{"data": [...], "layout": {...}}``), built on the server.

Plain dicts rather than ``plotly.graph_objects``: the figures are small and fixed, and
skipping the validation layer keeps page rendering fast. ``static/charts.js`` draws each one
with ``Plotly.newPlot``.
"""

from __future__ import annotations

from datetime import timedelta
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from smartstudy.services.analytics import (
    CalibrationBin,
    CompletedRow,
    DayStat,
    GroupStat,
    PeriodStat,
)
from smartstudy.store.orm import DIFFICULTIES, MasterySnapshot

if TYPE_CHECKING:
    from smartstudy.planning import Plan

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


def daily_trend(days: list[DayStat]) -> Figure:
    """Tasks per day (bars) and the 7-day accuracy (line) over the last weeks."""
    x = [_iso(d.day) for d in days]
    return figure(
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


def _topics(stats: list[GroupStat]) -> list[str]:
    return list(dict.fromkeys(g.topic for g in stats))


def accuracy_by_topic(stats: list[GroupStat]) -> Figure:
    topics = _topics(stats)
    data = []
    for d in DIFFICULTIES:
        by_topic = {g.topic: g for g in stats if g.difficulty == d}
        if not by_topic:
            continue
        data.append(
            {
                "type": "bar",
                "name": d,
                "x": topics,
                "y": [_round(by_topic[t].accuracy) if t in by_topic else None for t in topics],
                "customdata": [by_topic[t].n if t in by_topic else 0 for t in topics],
                "marker": {"color": COLOURS[d]},
                "hovertemplate": "%{x}, " + d + ": %{y:.0%} of %{customdata} tasks<extra></extra>",
            }
        )
    return figure(
        data,
        barmode="group",
        yaxis={"title": {"text": "accuracy"}, "tickformat": ".0%", "range": [0, 1.05]},
        height=320,
    )


def time_by_topic(stats: list[GroupStat]) -> Figure:
    """Mean actual minutes (bars) with the mean predicted median (diamonds)."""
    topics = _topics(stats)
    data = []
    for d in DIFFICULTIES:
        by_topic = {g.topic: g for g in stats if g.difficulty == d}
        if not by_topic:
            continue
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
    return figure(
        data,
        barmode="group",
        scattermode="group",
        yaxis={"title": {"text": "minutes (◆ predicted median)"}, "rangemode": "tozero"},
        height=320,
    )


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
    return figure(
        data,
        xaxis={**axis, "title": {"text": "predicted median time"}},
        yaxis={**axis, "title": {"text": "actual time"}},
        height=360,
    )


_LOG_TICKS = [0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 240, 480]


def _minutes_label(minutes: float) -> str:
    if minutes < 1:
        return f"{round(minutes * 60)} s"
    if minutes < 60:
        return f"{minutes:g} min"
    return f"{minutes / 60:g} h"


def calibration_chart(bins: list[CalibrationBin]) -> Figure:
    """Reliability diagram: mean predicted chance against how often it came true, each point
    labelled with the number of tasks in its group."""
    return figure(
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
                "name": "your tasks (label: tasks in the group)",
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


def weekly_progress(weeks: list[PeriodStat]) -> Figure:
    """Per week: minutes studied (bars), accuracy and mean predicted chance (lines)."""
    # Category labels: a date axis zooms to hours when there is only one week.
    x = [w.start.strftime("%d %b") for w in weeks]
    return figure(
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


def mastery_history(snapshots: list[MasterySnapshot], prior: float) -> Figure:
    """The shown mastery after each answer (P(mastered | answers so far), never moved against
    an answer), starting from the prior before the first one."""
    x = [0] + [s.n_attempts for s in snapshots]
    y = [round(prior, 4)] + [round(s.p_mastery, 4) for s in snapshots]
    when = ["before the first answer"] + [
        s.created_at.strftime("%d %b %Y, %H:%M") for s in snapshots
    ]
    return figure(
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


def prediction_histogram(distributions: list[dict[str, Any]]) -> Figure:
    """Predicted chance of success per model: where its predictions fall."""
    palette = {"neural": "#7c3aed", "lnirt": ACCENT, "baseline": "#0d9488"}
    data = []
    for dist in distributions:
        hist = dist.get("histogram") or {}
        edges, counts = hist.get("edges") or [], hist.get("counts") or []
        if len(edges) != len(counts) + 1 or not counts:
            continue
        total = sum(counts) or 1
        data.append(
            {
                "type": "bar",
                "name": dist["model_name"],
                "x": [round((a + b) / 2, 4) for a, b in pairwise(edges)],
                "y": [round(c / total, 4) for c in counts],
                "width": [round(b - a, 4) for a, b in pairwise(edges)],
                "customdata": counts,
                "opacity": 0.7,
                "marker": {"color": palette.get(dist["model_name"], MUTED)},
                "hovertemplate": dist["model_name"]
                + ": %{customdata} predictions around %{x:.0%}<extra></extra>",
            }
        )
    return figure(
        data,
        barmode="overlay",
        xaxis={
            "title": {"text": "predicted chance of success"},
            "tickformat": ".0%",
            "range": [0, 1],
        },
        yaxis={"title": {"text": "share of predictions"}, "tickformat": ".0%"},
        height=320,
    )


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


def readiness_over_days(plan: Plan) -> Figure:
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
    return figure(
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
    return figure(
        data,
        xaxis={"title": {"text": "daily minutes"}, "rangemode": "tozero"},
        yaxis={
            "title": {"text": "readiness on the exam date"},
            "tickformat": ".0%",
            "range": [0, 1.02],
        },
        legend=LEGEND_BELOW,
        margin={"t": 16, "b": 40},
        height=340,
    )
