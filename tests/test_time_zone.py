"""Per-user time zone and locale (issue 16): storage, sign-up, settings, the user's "today",
and dates written the user's way.

The acceptance case: a student in Tokyo (UTC+9) who completes a task at 08:00 local time
(23:00 UTC the day before) sees it under "today" at 08:00, on the dashboard service and on the
rendered page; a student in UTC with the same task does not.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from smartstudy.services import accounts, catalogue, localtime, planning
from smartstudy.services.context import AppContext
from smartstudy.services.errors import InvalidInputError
from smartstudy.services.reports import dashboard as dashboard_report
from smartstudy.services.reports import prediction_quality as quality_report
from smartstudy.store.db import session_scope
from smartstudy.store.orm import PracticeTask, User
from tests.web.conftest import PASSWORD, Web

#: Day D of the acceptance case, and the moments around it.
DAY = date(2026, 11, 26)  # a Thursday
COMPLETED = datetime(2026, 11, 25, 23, 0, tzinfo=UTC)  # 08:00 on DAY in Tokyo
NOW = datetime(2026, 11, 26, 0, 0, tzinfo=UTC)  # 09:00 on DAY in Tokyo, 00:00 in UTC
FIXED = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)


@pytest.fixture
def web(client: TestClient) -> Web:
    return Web(client)


@pytest.fixture
def topic_id(context: AppContext) -> uuid.UUID:
    with session_scope(context.sessions) as session:
        return catalogue.ensure_topic(session, "Mathematics", "Calculus").id


# -- the formatting and rules module ---------------------------------------------------------
@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        ("en-GB", "29 Nov 2026, 08:00"),
        ("en-US", "Nov 29, 2026, 8:00\u202fAM"),
        ("de-DE", "29.11.2026, 08:00"),
    ],
)
def test_a_datetime_is_written_the_locale_s_way(locale: str, expected: str):
    assert localtime.format_datetime(FIXED, "UTC", locale) == expected


def test_dates_times_and_days_per_locale():
    assert localtime.format_date(date(2026, 11, 29), "UTC", "en-GB") == "29 Nov 2026"
    assert localtime.format_date(date(2026, 11, 29), "UTC", "en-US") == "Nov 29, 2026"
    assert localtime.format_date(date(2026, 11, 29), "UTC", "de-DE") == "29.11.2026"
    assert localtime.format_time(FIXED, "UTC", "en-GB") == "08:00"
    assert localtime.format_time(FIXED, "UTC", "en-US") == "8:00\u202fAM"
    assert localtime.format_day(date(2026, 11, 29), "UTC", "en-GB") == "Sun 29 Nov"
    assert localtime.format_weekday(date(2026, 11, 29), "UTC", "de-DE") == "Sonntag"


def test_a_time_is_moved_to_the_user_s_zone_before_it_is_written():
    assert localtime.format_datetime(COMPLETED, "Asia/Tokyo", "en-GB") == "26 Nov 2026, 08:00"
    assert localtime.format_time(COMPLETED, "Asia/Tokyo", "en-GB") == "08:00"
    # The date of a datetime is the local one: 23:00 UTC on the 25th is the 26th in Tokyo.
    assert localtime.format_date(COMPLETED, "Asia/Tokyo", "en-GB") == "26 Nov 2026"
    # A naive time from the database counts as UTC.
    assert localtime.format_time(COMPLETED.replace(tzinfo=None), "Asia/Tokyo", "en-GB") == "08:00"


def test_a_zone_with_daylight_saving_time_uses_the_offset_of_the_day():
    summer = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
    winter = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
    assert localtime.format_time(summer, "Europe/Berlin", "de-DE") == "14:00"
    assert localtime.format_time(winter, "Europe/Berlin", "de-DE") == "13:00"
    # On the day clocks go forward (29 March 2026) the local day is 23 hours long.
    start = localtime.start_of_local_day(date(2026, 3, 29), "Europe/Berlin")
    end = localtime.start_of_local_day(date(2026, 3, 30), "Europe/Berlin")
    assert start == datetime(2026, 3, 28, 23, 0, tzinfo=UTC)
    assert end - start == timedelta(hours=23)
    # America/New_York: 03:30 UTC on 8 March 2026 is still the 7th there (UTC-5).
    assert localtime.local_date(datetime(2026, 3, 8, 3, 30, tzinfo=UTC), "America/New_York") == (
        date(2026, 3, 7)
    )


def test_time_zones_are_checked_against_the_zone_database():
    assert localtime.check_time_zone("Asia/Tokyo") == "Asia/Tokyo"
    assert localtime.check_time_zone(" UTC ") == "UTC"
    assert "Europe/Berlin" in localtime.time_zone_names()
    assert "localtime" not in localtime.time_zone_names()
    for bad in ("Mars/Olympus", "", "../../etc/passwd", "asia/tokyo", "x" * 500, None, 9):
        with pytest.raises(InvalidInputError) as caught:
            localtime.check_time_zone(bad)
        assert caught.value.field == "time_zone"


def test_locales_are_one_of_the_supported_list():
    assert localtime.check_locale("de_de") == "de-DE"
    with pytest.raises(InvalidInputError) as caught:
        localtime.check_locale("xx-YY")
    assert caught.value.field == "locale"
    assert "en-GB" in caught.value.message


@pytest.mark.parametrize(
    ("reported", "chosen"),
    [
        ("en-US", "en-US"),
        ("de", "de-DE"),
        ("de-AT", "de-DE"),
        ("en", "en-GB"),
        ("en-AU", "en-GB"),
        ("tlh", "en-GB"),
        ("", "en-GB"),
        (None, "en-GB"),
    ],
)
def test_a_browser_language_maps_to_the_closest_supported_locale(reported, chosen):
    assert localtime.locale_or_default(reported) == chosen


def test_an_unknown_browser_zone_falls_back_to_utc():
    assert localtime.time_zone_or_default("Asia/Tokyo") == "Asia/Tokyo"
    assert localtime.time_zone_or_default("Nowhere/City") == "UTC"
    assert localtime.time_zone_or_default(None) == "UTC"


def test_a_stored_zone_the_database_no_longer_knows_reads_as_utc():
    assert localtime.format_time(FIXED, "Gone/Zone", "en-GB") == "08:00"
    assert localtime.format_time(FIXED, "UTC", "zz-ZZ") == "08:00"


# -- the acceptance case ---------------------------------------------------------------------
def _user_with_task(
    context: AppContext, email: str, time_zone: str, topic_id: uuid.UUID
) -> uuid.UUID:
    """A user in ``time_zone`` with one completed task, completed at ``COMPLETED``."""
    with session_scope(context.sessions) as session:
        user = accounts.create_user(session, email, PASSWORD, time_zone=time_zone)
        session.add(
            PracticeTask(
                user_id=user.id,
                topic_id=topic_id,
                difficulty="medium",
                created_at=COMPLETED - timedelta(minutes=5),
                started_at=COMPLETED - timedelta(minutes=4),
                completed_at=COMPLETED,
                actual_time_seconds=240.0,
                is_correct=True,
            )
        )
        return user.id


def test_the_dashboard_counts_today_on_the_user_s_clock(context: AppContext, topic_id: uuid.UUID):
    tokyo = _user_with_task(context, "tokyo@example.com", "Asia/Tokyo", topic_id)
    london = _user_with_task(context, "utc@example.com", "UTC", topic_id)
    with session_scope(context.sessions) as session:
        seen = dashboard_report.dashboard(session, tokyo, now=NOW)
        assert [t.completed_at for t in seen.today] == [COMPLETED]
        assert localtime.format_time(seen.today[0].completed_at, "Asia/Tokyo", "en-GB") == "08:00"
        assert seen.week_tasks == 1 and seen.week_start == date(2026, 11, 23)
        assert seen.days[-1].day == DAY and seen.days[-1].tasks == 1
        assert seen.days[-2].tasks == 0

        utc = dashboard_report.dashboard(session, london, now=NOW)
        assert utc.today == []
        assert utc.days[-1].day == DAY and utc.days[-1].tasks == 0
        assert utc.days[-2].day == DAY - timedelta(days=1) and utc.days[-2].tasks == 1

        # The zone can also be given: the Tokyo user's data on a UTC clock.
        assert dashboard_report.dashboard(session, tokyo, now=NOW, time_zone="UTC").today == []


def test_the_dashboard_page_shows_the_local_time_and_today(
    context: AppContext, web: Web, topic_id: uuid.UUID, monkeypatch: pytest.MonkeyPatch
):
    _user_with_task(context, "tokyo@example.com", "Asia/Tokyo", topic_id)
    _user_with_task(context, "utc@example.com", "UTC", topic_id)
    monkeypatch.setattr(dashboard_report, "utcnow", lambda: NOW)

    web.login("tokyo@example.com")
    page = web.get("/dashboard").text
    today = re.search(r'<span class="label">Today</span>\s*<span class="value">(\d+)', page)
    assert today and today.group(1) == "1"
    assert re.search(r'/study/tasks/[0-9a-f-]+">08:00</a>', page)
    assert "23:00" not in page
    assert "times in Asia/Tokyo" in page

    web.login("utc@example.com")
    page = web.get("/dashboard").text
    today = re.search(r'<span class="label">Today</span>\s*<span class="value">(\d+)', page)
    assert today and today.group(1) == "0"
    assert "times in UTC" in page


def test_the_history_page_writes_dates_in_the_user_s_zone_and_locale(
    context: AppContext, web: Web, topic_id: uuid.UUID
):
    user_id = _user_with_task(context, "tokyo@example.com", "Asia/Tokyo", topic_id)
    with session_scope(context.sessions) as session:
        accounts.set_time_zone_and_locale(session, session.get(User, user_id), locale="en-US")
    web.login("tokyo@example.com")
    page = web.get("/tasks").text
    # created 22:55 UTC on the 25th = 07:55 on the 26th in Tokyo, written the US way
    assert "Nov 26, 2026, 7:55\u202fAM" in page
    # the task-history date filter takes days of the user's calendar
    assert "7:55" in web.get("/tasks?from=2026-11-26&to=2026-11-26").text
    assert "7:55" not in web.get("/tasks?from=2026-11-25&to=2026-11-25").text


def test_analytics_weeks_are_the_user_s(context: AppContext, topic_id: uuid.UUID):
    # Sunday 29 Nov 20:00 UTC is Monday 30 Nov 05:00 in Tokyo: a new week there.
    sunday_evening = datetime(2026, 11, 29, 20, 0, tzinfo=UTC)
    with session_scope(context.sessions) as session:
        for email, zone in (("t@example.com", "Asia/Tokyo"), ("u@example.com", "UTC")):
            user = accounts.create_user(session, email, PASSWORD, time_zone=zone)
            session.add(
                PracticeTask(
                    user_id=user.id,
                    topic_id=topic_id,
                    difficulty="easy",
                    completed_at=sunday_evening,
                    actual_time_seconds=60.0,
                    is_correct=True,
                )
            )
            session.flush()
            rows = quality_report.completed_rows(session, user.id)
            assert rows[0].completed_at == sunday_evening  # the same instant, on their clock
            weeks = quality_report.progress_by_week(rows)
            expected = date(2026, 11, 30) if zone == "Asia/Tokyo" else date(2026, 11, 23)
            assert [w.start for w in weeks] == [expected]


def test_the_planning_day_is_the_user_s(context: AppContext):
    with session_scope(context.sessions) as session:
        tokyo = accounts.create_user(session, "t@example.com", PASSWORD, time_zone="Asia/Tokyo")
        utc = accounts.create_user(session, "u@example.com", PASSWORD)
        assert planning.user_today(tokyo, NOW - timedelta(minutes=1)) == DAY
        assert planning.user_today(utc, NOW - timedelta(minutes=1)) == DAY - timedelta(days=1)


# -- sign-up ---------------------------------------------------------------------------------
def test_api_sign_up_stores_the_time_zone_and_locale(client: TestClient):
    body = {"email": "a@example.com", "password": PASSWORD, "time_zone": "Asia/Tokyo"}
    r = client.post("/v1/auth/register", json=body | {"locale": "de-DE"})
    assert r.status_code == 201, r.text
    assert r.json()["time_zone"] == "Asia/Tokyo" and r.json()["locale"] == "de-DE"
    r = client.post("/v1/auth/register", json={"email": "b@example.com", "password": PASSWORD})
    assert (r.json()["time_zone"], r.json()["locale"]) == ("UTC", "en-GB")


@pytest.mark.parametrize(
    ("field", "value"), [("time_zone", "Mars/Olympus"), ("time_zone", ""), ("locale", "xx")]
)
def test_api_sign_up_refuses_an_unknown_zone_or_locale(client: TestClient, field, value):
    body = {"email": "a@example.com", "password": PASSWORD, field: value}
    r = client.post("/v1/auth/register", json=body)
    assert r.status_code == 422, r.text
    assert [e["loc"] for e in r.json()["detail"]] == [["body", field]]
    # nothing was created
    r = client.post("/v1/auth/login", json={"email": "a@example.com", "password": PASSWORD})
    assert r.status_code == 401


def test_api_user_changes_their_zone_and_locale(client: TestClient, student: dict):
    r = client.patch("/v1/auth/me", json={"time_zone": "America/New_York"}, headers=student)
    assert r.status_code == 200, r.text
    assert (r.json()["time_zone"], r.json()["locale"]) == ("America/New_York", "en-GB")
    r = client.patch("/v1/auth/me", json={"locale": "en-US"}, headers=student)
    assert (r.json()["time_zone"], r.json()["locale"]) == ("America/New_York", "en-US")
    r = client.patch(
        "/v1/auth/me", json={"time_zone": "Nowhere", "locale": "de-DE"}, headers=student
    )
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "time_zone"]
    me = client.get("/v1/auth/me", headers=student).json()
    assert (me["time_zone"], me["locale"]) == ("America/New_York", "en-US")


def _stored(context: AppContext, email: str) -> tuple[str, str]:
    with session_scope(context.sessions) as session:
        user = session.scalar(select(User).where(User.email == email))
        assert user is not None
        return user.time_zone, user.locale


def _web_signup(web: Web, email: str, **extra: str) -> None:
    page = web.get("/signup").text
    assert 'name="time_zone"' in page and 'data-browser="time-zone"' in page
    assert "/static/locale.js?v=" in page
    r = web.post(
        "/signup",
        {"email": email, "password": PASSWORD, "password_confirm": PASSWORD, **extra},
    )
    assert r.status_code == 303, r.text


def test_web_sign_up_takes_the_browser_s_zone_and_language(context: AppContext, web: Web):
    _web_signup(web, "tokyo@example.com", time_zone="Asia/Tokyo", locale="en-US")
    assert _stored(context, "tokyo@example.com") == ("Asia/Tokyo", "en-US")
    web.logout_locally()
    _web_signup(web, "wien@example.com", time_zone="Europe/Vienna", locale="de-AT")
    assert _stored(context, "wien@example.com") == ("Europe/Vienna", "de-DE")


def test_web_sign_up_falls_back_silently(context: AppContext, web: Web):
    _web_signup(web, "nojs@example.com")  # no script: the hidden fields came empty
    assert _stored(context, "nojs@example.com") == ("UTC", "en-GB")
    web.logout_locally()
    _web_signup(web, "odd@example.com", time_zone="Moon/Base", locale="<script>")
    assert _stored(context, "odd@example.com") == ("UTC", "en-GB")


def test_the_locale_script_is_served(client: TestClient):
    r = client.get("/static/locale.js")
    assert r.status_code == 200
    assert "resolvedOptions().timeZone" in r.text and "navigator.language" in r.text


# -- settings --------------------------------------------------------------------------------
def _profile(web: Web, **changes: str):
    web.get("/settings")
    data = {"display_name": "Kim", "email": "kim@example.com"} | changes
    return web.post("/settings/profile", data)


def test_settings_change_the_zone_and_locale(context: AppContext, web: Web):
    web.signup("kim@example.com", name="Kim")
    page = web.get("/settings").text
    assert '<option value="UTC" selected>' in page
    assert '<option value="en-GB" selected>' in page
    assert "29.11.2026, 08:00" in page  # the de-DE example in the locale list
    r = _profile(web, time_zone="Europe/Berlin", locale="de-DE")
    assert r.status_code == 303, r.text
    assert _stored(context, "kim@example.com") == ("Europe/Berlin", "de-DE")
    page = web.get("/settings").text
    assert '<option value="Europe/Berlin" selected>' in page
    assert "times in Europe/Berlin" in page


def test_settings_refuse_an_unknown_zone_and_store_nothing(context: AppContext, web: Web):
    web.signup("kim@example.com", name="Kim")
    r = _profile(web, display_name="Kim Renamed", time_zone="Atlantis/Capital", locale="de-DE")
    assert r.status_code == 422
    assert 'id="f-time_zone-error"' in r.text and "Atlantis/Capital" in r.text
    assert _stored(context, "kim@example.com") == ("UTC", "en-GB")
    with session_scope(context.sessions) as session:
        user = session.scalar(select(User).where(User.email == "kim@example.com"))
        assert user is not None and user.display_name == "Kim"
    r = _profile(web, locale="klingon")
    assert r.status_code == 422 and 'id="f-locale-error"' in r.text
    assert _stored(context, "kim@example.com") == ("UTC", "en-GB")


def test_a_profile_form_without_the_new_fields_keeps_them(context: AppContext, web: Web):
    web.signup("kim@example.com", name="Kim")
    assert _profile(web, time_zone="Asia/Tokyo").status_code == 303
    assert _profile(web, display_name="Kimberly").status_code == 303
    assert _stored(context, "kim@example.com") == ("Asia/Tokyo", "en-GB")


def test_charts_write_dates_on_the_users_clock():
    """The charts' labels, hover texts and data tables use the user's zone and locale too."""
    from smartstudy.services.reports.dashboard import DayStat
    from smartstudy.services.reports.prediction_quality import PeriodStat
    from smartstudy.store.orm import MasterySnapshot
    from smartstudy.web import charts

    us = ("America/New_York", "en-US")
    week = PeriodStat(
        start=date(2026, 11, 23), tasks=2, correct=1, seconds=300.0, mean_predicted=0.5
    )
    assert charts.weekly_progress([week], us)["data"][0]["x"] == ["Nov 23"]
    assert charts.weekly_progress([week])["data"][0]["x"] == ["23 Nov"]

    trend = charts.daily_trend(
        [DayStat(day=date(2026, 11, 29), tasks=1, correct=1, seconds=60.0)], ("UTC", "de-DE")
    )
    assert trend["alt"]["rows"][0][0] == "29.11.2026"

    # 23:00 UTC on the 29th is 08:00 on the 30th in Tokyo.
    snapshot = MasterySnapshot(
        p_mastery=0.4, n_attempts=1, created_at=datetime(2026, 11, 29, 23, 0, tzinfo=UTC)
    )
    hover = charts.mastery_history([snapshot], 0.1, ("Asia/Tokyo", "en-GB"))["data"][0]["text"]
    assert hover[1] == "30 Nov 2026, 08:00"
