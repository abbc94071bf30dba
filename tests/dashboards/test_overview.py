"""The school overview reads summaries of the records, and they follow the records."""

import datetime as dt
from collections import defaultdict

import pytest
from django.test import Client
from django.urls import reverse

from apps.accounts.models import User
from apps.common.signals import student_data_changed
from apps.dashboards.models import OverviewGroup, OverviewWeek
from apps.dashboards.selectors import PASS_FRACTION, SchoolOverview, school_overview, week_start_of
from apps.dashboards.services import overview_refresh, overview_refresh_for_students
from apps.students.models import AttendanceRecord, Enrollment, GradeRecord, School
from tests.dashboards.conftest import Term, add_students

pytestmark = pytest.mark.django_db

ATTENDED = ("present", "late")


def _expected(school: School, year: int) -> dict[str, object]:
    """The overview's figures computed the slow way, from every record."""
    group_of = {
        e.student_id: (e.grade_level, e.section)
        for e in Enrollment.objects.filter(school=school, academic_year=year)
    }
    by_group: dict[tuple[int, str], list[int]] = defaultdict(lambda: [0, 0])
    by_week: dict[dt.date, list[int]] = defaultdict(lambda: [0, 0])
    for record in AttendanceRecord.objects.filter(school=school, date__year=year):
        hit = record.status in ATTENDED
        by_group[group_of[record.student_id]][0] += hit
        by_group[group_of[record.student_id]][1] += 1
        by_week[week_start_of(record.date)][0] += hit
        by_week[week_start_of(record.date)][1] += 1
    failing = {
        g.student_id
        for g in GradeRecord.objects.filter(academic_year=year, is_missing=False)
        if g.score is not None and g.score < g.max_score * PASS_FRACTION
    }
    students: dict[tuple[int, str], int] = defaultdict(int)
    failing_in: dict[tuple[int, str], int] = defaultdict(int)
    for student_id, group in group_of.items():
        students[group] += 1
        failing_in[group] += student_id in failing
    return {
        "groups": {
            group: (
                students[group],
                by_group[group][0] / by_group[group][1] if by_group[group][1] else None,
                failing_in[group] / students[group],
            )
            for group in students
        },
        "weekly": {week: (a, d - a) for week, (a, d) in sorted(by_week.items())},
    }


def _shown(overview: SchoolOverview) -> dict[str, object]:
    return {
        "groups": {
            (g.grade_level, g.section): (g.students, g.attendance_rate, g.failing_rate)
            for g in overview.groups
        },
        "weekly": {w.week_start: (w.attended, w.absent) for w in overview.weekly},
    }


def _client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_first_view_summarises_the_year_and_shows_what_the_records_say(
    term: Term, counselor: User
) -> None:
    add_students(term.school, 12, year=term.year, today=term.today)
    assert not OverviewGroup.objects.exists()
    response = _client(counselor).get(reverse("dashboards:overview"))
    assert response.status_code == 200
    assert OverviewGroup.objects.filter(school=term.school).exists()
    shown = _shown(response.context["overview"])
    assert shown == _expected(term.school, term.year)
    assert any(rate for _n, _a, rate in shown["groups"].values())  # some marks are failing


def test_an_attendance_import_rewrites_the_weeks_it_covers(
    term: Term, django_capture_on_commit_callbacks
) -> None:
    students = add_students(term.school, 4, year=term.year, today=term.today)
    overview_refresh(school_id=term.school.pk, academic_year=term.year)
    records = AttendanceRecord.objects.filter(student__in=students).order_by("date")
    old_day, new_day = records.first().date, records.last().date  # type: ignore[union-attr]
    assert week_start_of(old_day) != week_start_of(new_day)
    AttendanceRecord.objects.filter(date__in=[old_day, new_day]).update(status="absent")
    with django_capture_on_commit_callbacks(execute=True):
        student_data_changed.send(
            sender=None,
            student_ids=[s.pk for s in students],
            since=new_day,
            until=new_day,
            kinds=["attendance"],
            source="test",
        )
    weekly = {w.week_start: w for w in school_overview(term.school, today=term.today).weekly}
    expected = _expected(term.school, term.year)["weekly"]
    assert isinstance(expected, dict)
    assert (weekly[week_start_of(new_day)].attended, weekly[week_start_of(new_day)].absent) == (
        expected[week_start_of(new_day)]
    )
    # Nothing said the older week changed (no signal for it), so it was left alone.
    assert weekly[week_start_of(old_day)].attended > expected[week_start_of(old_day)][0]


def test_a_marks_import_recounts_the_failing_students(term: Term) -> None:
    students = add_students(term.school, 6, year=term.year, today=term.today)
    overview_refresh(school_id=term.school.pk, academic_year=term.year)
    GradeRecord.objects.filter(student__in=students).update(score=90)
    before = school_overview(term.school, today=term.today).failing_rate
    assert before  # the summary still holds the marks before the import
    overview_refresh_for_students(
        student_ids=[s.pk for s in students], since=None, until=None, kinds=["grades"]
    )
    after = school_overview(term.school, today=term.today)
    assert after.failing_rate == 0
    assert _shown(after) == _expected(term.school, term.year)


def test_a_roster_import_regroups_every_week(term: Term) -> None:
    students = add_students(term.school, 6, year=term.year, today=term.today)
    overview_refresh(school_id=term.school.pk, academic_year=term.year)
    Enrollment.objects.filter(student=students[0]).update(grade_level=10, section="Z")
    overview_refresh_for_students(
        student_ids=[students[0].pk], since=None, until=None, kinds=["enrollments"]
    )
    shown = _shown(school_overview(term.school, today=term.today))
    assert (10, "Z") in shown["groups"]  # type: ignore[operator]
    assert shown == _expected(term.school, term.year)
    assert OverviewWeek.objects.filter(grade_level=10, section="Z").exists()


def test_incidents_leave_the_summaries_alone(term: Term) -> None:
    students = add_students(term.school, 2, year=term.year, today=term.today)
    assert (
        overview_refresh_for_students(
            student_ids=[s.pk for s in students], since=None, until=None, kinds=["incidents"]
        )
        == 0
    )
    assert not OverviewWeek.objects.exists()


def test_refreshing_twice_changes_nothing(term: Term) -> None:
    add_students(term.school, 5, year=term.year, today=term.today)
    overview_refresh(school_id=term.school.pk, academic_year=term.year)
    first = list(
        OverviewWeek.objects.values_list(
            "week_start", "grade_level", "section", "attended", "recorded"
        ).order_by("week_start", "grade_level", "section")
    )
    overview_refresh(
        school_id=term.school.pk,
        academic_year=term.year,
        since=term.today - dt.timedelta(days=10),
        until=term.today,
    )
    again = list(
        OverviewWeek.objects.values_list(
            "week_start", "grade_level", "section", "attended", "recorded"
        ).order_by("week_start", "grade_level", "section")
    )
    assert first == again and first
