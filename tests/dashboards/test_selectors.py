import datetime as dt

from django.test import override_settings

from apps.dashboards.selectors import school_days_between, week_start_of

SUNDAY = dt.date(2026, 11, 22)


def test_weeks_start_on_the_configured_day() -> None:
    with override_settings(EDUPULSE_WEEK_START="sun"):
        assert [week_start_of(SUNDAY + dt.timedelta(days=n)) for n in range(8)] == [SUNDAY] * 7 + [
            SUNDAY + dt.timedelta(days=7)
        ]
    with override_settings(EDUPULSE_WEEK_START="mon"):
        assert week_start_of(SUNDAY) == dt.date(2026, 11, 16)


def test_school_days_follow_the_settings() -> None:
    with override_settings(EDUPULSE_SCHOOL_DAYS=["sun", "mon", "tue", "wed", "thu"]):
        days = school_days_between(SUNDAY, SUNDAY + dt.timedelta(days=6))
    assert [d.strftime("%a") for d in days] == ["Sun", "Mon", "Tue", "Wed", "Thu"]
