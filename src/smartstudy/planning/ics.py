"""An exam plan as an iCalendar file (RFC 5545), for any calendar application.

One all-day event per study day, listing that day's tasks with their predicted times. The
output depends only on the plan (the stamp is the plan's day), so the same plan gives the
same file, and each event's UID (the prefix and the date) lets a calendar that imports
the file again replace the days it already has.
"""

from __future__ import annotations

from datetime import date, timedelta

from smartstudy.planning.core import Plan, PlanDay

PRODID = "-//SmartStudy//Exam plan//EN"
#: RFC 5545, 3.1: lines longer than this many octets are folded.
_FOLD_OCTETS = 75


def _escape(value: str) -> str:
    """TEXT as RFC 5545, 3.3.11 writes it: backslash, semicolon, comma and line breaks
    escaped; other control characters dropped."""
    out = []
    for char in value.replace("\r\n", "\n"):
        if char == "\\":
            out.append("\\\\")
        elif char in ";,":
            out.append("\\" + char)
        elif char in "\n\r":
            out.append("\\n")
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            continue
        else:
            out.append(char)
    return "".join(out)


def _fold(line: str) -> str:
    """``line`` folded at 75 octets (continuations start with a space), never inside a
    UTF-8 character."""
    parts: list[str] = []
    current = ""
    size = 0
    limit = _FOLD_OCTETS
    for char in line:
        width = len(char.encode("utf-8"))
        if size + width > limit:
            parts.append(current)
            current, size = "", 0
            limit = _FOLD_OCTETS - 1  # the leading space of a continuation counts
        current += char
        size += width
    parts.append(current)
    return "\r\n ".join(parts)


def _date(day: date) -> str:
    return day.strftime("%Y%m%d")


def _minutes(seconds: float) -> str:
    return f"{max(round(seconds / 60), 1)} min"


def _day_description(day: PlanDay) -> str:
    lines = []
    for k, task in enumerate(day.tasks, 1):
        lines.append(
            f"{k}. {task.topic_name} ({task.difficulty}): about {_minutes(task.time_median_s)} "
            f"(80% range {_minutes(task.time_p10_s)} to {_minutes(task.time_p90_s)}), "
            f"predicted success {round(100 * task.p_correct)}%"
        )
    lines.append(f"Planned: about {round(day.minutes)} of {round(day.budget_minutes)} min.")
    return "\n".join(lines)


def plan_to_ics(plan: Plan, exam_name: str, *, uid_prefix: str) -> str:
    """The plan as an iCalendar text (CRLF line ends): one VEVENT per study day with
    tasks, dated all day, its description listing the tasks."""
    stamp = f"{_date(plan.today)}T000000Z"
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{PRODID}",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        f"X-WR-CALNAME:{_escape(f'Study plan: {exam_name}')}",
    ]
    for day in plan.days:
        if day.day_off or not day.tasks:
            continue
        n = len(day.tasks)
        summary = (
            f"Study for {exam_name}: {n} task{'s' if n != 1 else ''}, ~{round(day.minutes)} min"
        )
        lines += [
            "BEGIN:VEVENT",
            f"UID:{_escape(uid_prefix)}-{_date(day.day)}@smartstudy",
            f"DTSTAMP:{stamp}",
            f"DTSTART;VALUE=DATE:{_date(day.day)}",
            f"DTEND;VALUE=DATE:{_date(day.day + timedelta(days=1))}",
            f"SUMMARY:{_escape(summary)}",
            f"DESCRIPTION:{_escape(_day_description(day))}",
            "TRANSP:TRANSPARENT",
            "END:VEVENT",
        ]
    lines.append("END:VCALENDAR")
    return "".join(_fold(line) + "\r\n" for line in lines)
