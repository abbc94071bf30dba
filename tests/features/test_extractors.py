"""Extractor results pinned on small examples worked out by hand.

Calendar (conftest): weeks start on Sunday, school days Sun-Thu, the year on
1 Jan 2026 (a Thursday). Week 0 has one school day (Thu 1 Jan), week 2
(11-15 Jan) is a holiday week where the test asks for it. NaN reads None.
"""

import datetime as dt
from collections.abc import Callable

import pytest

from apps.students.models import Holiday, School, Student
from tests.factories import EnrollmentFactory, RegionFactory, SchoolFactory, StudentFactory
from tests.features.conftest import Built, grade, incident, mark, week

pytestmark = pytest.mark.django_db

NAN = None


@pytest.fixture
def attendance(student: Student, school: School, holiday_week: None) -> Student:
    mark(student, school, dt.date(2026, 1, 1), "P")  # week 0: 1/1
    mark(student, school, week(1), "PLPAA")  # week 1: 3 attended of 5, ends on 2 absences
    # week 2: holiday; week 3: school days but no records at all (missing)
    mark(student, school, week(4), "EAPPP")  # week 4: the absence run goes on, 3 of 5
    mark(student, school, week(5), "PPPPP")  # week 5: 5 of 5
    return student


def test_weekly_attendance_counts_and_rates(
    attendance: Student, build: Callable[..., Built]
) -> None:
    got = build()
    assert got(attendance, "school_days") == [1, 5, 0, 5, 5, 5]
    assert got(attendance, "days_recorded") == [1, 5, 0, 0, 5, 5]
    assert got(attendance, "attendance_rate") == [1.0, 0.6, NAN, NAN, 0.6, 1.0]
    assert got(attendance, "absences") == [0, 2, NAN, NAN, 2, 0]
    assert got(attendance, "unexcused_absences") == [0, 2, NAN, NAN, 1, 0]
    assert got(attendance, "late_arrivals") == [0, 1, NAN, NAN, 0, 0]


def test_a_holiday_week_is_marked_not_counted_as_perfect(
    attendance: Student, build: Callable[..., Built]
) -> None:
    got = build()
    assert got(attendance, "no_school_week") == [0, 0, 1, 0, 0, 0]
    assert got.in_session(attendance)[:6] == [True, True, False, True, True, True]
    assert got(attendance, "attendance_rate")[2] is NAN
    # Weeks after the last built one are not observed at all.
    assert got(attendance, "school_days", weeks=None)[6:] == [NAN] * (
        len(got.history.week_starts) - 6
    )


def test_a_missing_week_stays_missing_never_zero(
    attendance: Student, build: Callable[..., Built]
) -> None:
    got = build()
    assert got.in_session(attendance)[3] is True
    for column in ("attendance_rate", "absences", "late_arrivals", "absence_streak"):
        assert got(attendance, column)[3] is NAN
    col = got.history.columns.index("attendance_rate")
    assert not got.history.observed[0, 3, col]


def test_absence_streak_runs_across_holidays_and_unrecorded_weeks(
    attendance: Student, build: Callable[..., Built]
) -> None:
    # Week 1 ends A, A; week 4 starts E, A: one run of four recorded absences.
    assert build()(attendance, "absence_streak") == [0, 2, NAN, NAN, 4, 0]


def test_rolling_and_year_to_date_rates_count_school_weeks(
    attendance: Student, build: Callable[..., Built]
) -> None:
    got = build()
    # School weeks so far: w0 (1/1), w1 (3/5), w3 (0/0, in session, no records), w4 (3/5), w5 (5/5).
    assert got(attendance, "attendance_rate_2w") == pytest.approx(
        [1.0, 4 / 6, 4 / 6, 0.6, 0.6, 0.8], abs=1e-6
    )
    assert got(attendance, "attendance_rate_4w") == pytest.approx(
        [1.0, 4 / 6, 4 / 6, 4 / 6, 7 / 11, 11 / 15], abs=1e-6
    )
    assert got(attendance, "attendance_rate_8w") == pytest.approx(
        [1.0, 4 / 6, 4 / 6, 4 / 6, 7 / 11, 12 / 16], abs=1e-6
    )
    assert got(attendance, "attendance_rate_ytd") == pytest.approx(
        [1.0, 4 / 6, 4 / 6, 4 / 6, 7 / 11, 12 / 16], abs=1e-6
    )
    assert got(attendance, "chronic_absence") == [0, 1, 1, 1, 1, 1]


def test_change_against_the_students_own_first_weeks(
    attendance: Student, build: Callable[..., Built]
) -> None:
    # Baseline: the first four school weeks (w0, w1, w3, w4) = 7/11, known from w4 on.
    got = build()
    change = got(attendance, "attendance_change")
    assert change[:4] == [NAN, NAN, NAN, NAN]
    assert change[4] == pytest.approx(0.0, abs=1e-6)
    assert change[5] == pytest.approx(11 / 15 - 7 / 11, abs=1e-6)


def test_transfer_mid_year(build: Callable[..., Built]) -> None:
    division = RegionFactory()
    first, second = SchoolFactory(region=division), SchoolFactory(region=RegionFactory())
    pupil = StudentFactory(date_of_birth=dt.date(2011, 6, 1))
    EnrollmentFactory(
        student=pupil,
        school=first,
        entry_date=dt.date(2026, 1, 1),
        exit_date=dt.date(2026, 1, 13),
        exit_reason="transferred",
    )
    # Leaves on Tue 13 Jan (week 2), enters the new school on Wed 21 Jan (week 3).
    EnrollmentFactory(student=pupil, school=second, entry_date=dt.date(2026, 1, 21), grade_level=7)
    # A holiday only in the second school's region (Tue 27 Jan, week 4).
    Holiday.objects.create(date=dt.date(2026, 1, 27), name="Local fair", region=second.region)
    mark(pupil, first, week(1), "PPPPP")
    mark(pupil, first, week(2), "PP")
    mark(pupil, second, dt.date(2026, 1, 21), "PP")
    mark(pupil, second, week(4), "PP.PP")
    got = build()
    assert got.in_session(pupil)[:6] == [True, True, True, True, True, True]
    assert got(pupil, "school_changes") == [0, 0, 0, 1, 1, 1]
    assert got(pupil, "weeks_enrolled") == [1, 2, 3, 4, 5, 6]
    assert got(pupil, "school_days") == [1, 5, 5, 5, 4, 5]
    assert got(pupil, "attendance_rate") == [NAN, 1.0, 1.0, 1.0, 1.0, NAN]
    assert got(pupil, "grade_level") == [7] * 6
    # Born 1 Jun 2011: 14 on 1 Jan 2026; grade 7 is expected at 12.
    assert got(pupil, "over_age") == [2] * 6


def test_weeks_out_of_school_are_not_enrolled(build: Callable[..., Built]) -> None:
    first, second = SchoolFactory(), SchoolFactory()
    pupil = StudentFactory()
    EnrollmentFactory(
        student=pupil,
        school=first,
        entry_date=dt.date(2026, 1, 1),
        exit_date=dt.date(2026, 1, 8),
        exit_reason="transferred",
    )
    EnrollmentFactory(student=pupil, school=second, entry_date=dt.date(2026, 1, 25))
    got = build()
    assert got.in_session(pupil)[:6] == [True, True, False, False, True, True]
    assert got(pupil, "weeks_enrolled") == [1, 2, NAN, NAN, 3, 4]
    assert got(pupil, "school_changes") == [0, 0, NAN, NAN, 1, 1]
    assert got(pupil, "over_age") == [NAN, NAN, NAN, NAN, NAN, NAN]  # no birth date


def test_grades(student: Student, build: Callable[..., Built]) -> None:
    grade(student, "MATH", dt.date(2026, 1, 6), 30)  # week 1: 0.30, failing
    grade(student, "ENG", dt.date(2026, 1, 6), 40, max_score=50)  # week 1: 0.80
    grade(student, "MATH", dt.date(2026, 1, 27), 45)  # week 4: 0.45, passing again
    grade(student, "SCI", dt.date(2026, 1, 27), None, max_score=50)  # week 4: missing
    grade(student, "SCI", dt.date(2026, 2, 3), 10, max_score=50)  # week 5: 0.20, failing
    got = build()
    assert got(student, "marks_share") == [NAN, 0.55, NAN, NAN, 0.45, 0.2]
    assert got(student, "marks_average") == pytest.approx(
        [NAN, 0.55, 0.55, 0.55, 1.55 / 3, 1.75 / 4], nan_ok=True, abs=1e-6
    )
    assert got(student, "marks_average_math") == [NAN, 0.3, 0.3, 0.3, 0.375, 0.375]
    assert got(student, "marks_average_eng") == [NAN, 0.8, 0.8, 0.8, 0.8, 0.8]
    assert got(student, "marks_average_ban") == [NAN] * 6
    assert got(student, "failing_subjects") == [NAN, 1, 1, 1, 0, 1]
    # Dated means 0.55 (6 Jan), 0.45 (27 Jan), 0.20 (3 Feb): slopes -0.10, then (0.20 - 0.55) / 2.
    assert got(student, "marks_trend") == [NAN, NAN, NAN, NAN, -0.1, -0.175]
    assert got(student, "missing_assessments") == [0, 0, 0, 0, 1, 1]


def test_discipline(student: Student, school: School, build: Callable[..., Built]) -> None:
    incident(student, school, dt.date(2026, 1, 7), severity=1)  # week 1
    incident(student, school, dt.date(2026, 1, 26), severity=3, suspended=2)  # week 4
    incident(student, school, dt.date(2026, 1, 27), severity=2)  # week 4
    got = build()
    assert got(student, "incidents") == [0, 1, 0, 0, 2, 0]
    # Weights 1, 2, 4 for minor, moderate, serious.
    assert got(student, "incident_severity") == [0, 1, 0, 0, 6, 0]
    assert got(student, "suspension_days") == [0, 0, 0, 0, 2, 0]
    assert got(student, "weeks_since_incident") == [52, 0, 1, 2, 0, 1]
