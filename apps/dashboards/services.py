import datetime as dt
from collections.abc import Sequence

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Exists, F, OuterRef, Q
from django.utils import timezone

from apps.accounts.models import User
from apps.dashboards.models import CaseloadVisit, OverviewGroup, OverviewWeek
from apps.dashboards.selectors import ATTENDED, PASS_FRACTION, week_start_of
from apps.students.models import AttendanceRecord, Enrollment, GradeRecord, School
from apps.students.services import academic_year_bounds


@transaction.atomic
def caseload_visit_record(*, user: User, now: dt.datetime | None = None) -> dt.datetime | None:
    """Mark a visit to the caseload now; return when the previous visit was (None: first)."""
    now = now or timezone.now()
    visit = CaseloadVisit.objects.select_for_update().filter(user=user).first()
    if visit is None:
        CaseloadVisit.objects.create(user=user, last_seen_at=now)
        return None
    previous = visit.last_seen_at
    visit.last_seen_at = now
    visit.save(update_fields=["last_seen_at"])
    return previous


def preferred_language_set(*, user: User, language: str) -> None:
    if language not in dict(settings.LANGUAGES):
        raise ValueError(f"unknown language {language!r}")
    if user.preferred_language != language:
        user.preferred_language = language
        user.save(update_fields=["preferred_language"])


# --- School overview summaries ------------------------------------------------------


def _week_rows(
    school_id: int, academic_year: int, first: dt.date, last: dt.date
) -> list[OverviewWeek]:
    """The school's records from first to last, summed per week, grade and section.

    Grouped per day in SQL (one range scan of the (school, date) index joined
    to the year's enrollments there), folded into weeks here: the day-to-week
    arithmetic is the same Python on every database.
    """
    per_day = (
        AttendanceRecord.objects.filter(
            school_id=school_id,
            date__range=(first, last),
            student__enrollments__school_id=school_id,
            student__enrollments__academic_year=academic_year,
        )
        .order_by()
        .values_list("date", "student__enrollments__grade_level", "student__enrollments__section")
        .annotate(attended=Count("pk", filter=Q(status__in=ATTENDED)), recorded=Count("pk"))
    )
    weeks: dict[tuple[dt.date, int, str], OverviewWeek] = {}
    for day, grade, section, attended, recorded in per_day:
        key = (week_start_of(day), grade, section)
        row = weeks.get(key)
        if row is None:
            row = weeks[key] = OverviewWeek(
                school_id=school_id,
                academic_year=academic_year,
                week_start=key[0],
                grade_level=grade,
                section=section,
                attended=0,
                recorded=0,
            )
        row.attended += attended
        row.recorded += recorded
    return list(weeks.values())


def _group_rows(school_id: int, academic_year: int) -> list[OverviewGroup]:
    """Per grade and section of the school's year: students with any failing mark that year."""
    failing_mark = GradeRecord.objects.filter(
        student=OuterRef("student_id"),
        academic_year=academic_year,
        is_missing=False,
        score__lt=F("max_score") * PASS_FRACTION,
    )
    groups = (
        Enrollment.objects.filter(school_id=school_id, academic_year=academic_year)
        .order_by()
        .values_list("grade_level", "section")
        .annotate(failing=Count("pk", filter=Exists(failing_mark)))
    )
    return [
        OverviewGroup(
            school_id=school_id,
            academic_year=academic_year,
            grade_level=grade,
            section=section,
            failing=failing,
        )
        for grade, section, failing in groups
    ]


@transaction.atomic
def overview_refresh(
    *,
    school_id: int,
    academic_year: int,
    since: dt.date | None = None,
    until: dt.date | None = None,
    weeks: bool = True,
    marks: bool = True,
) -> None:
    """Rewrite a school year's overview summaries: with `weeks`, the weeks from
    `since` to `until` (the whole year when either is None); with `marks`, the
    failing counts of its grades and sections.

    Idempotent. Refreshes of one school wait for each other (a lock on the
    school's row), so two of them never insert the same week twice.
    """
    School.objects.select_for_update().filter(pk=school_id).exists()
    if weeks:
        start, end = academic_year_bounds(academic_year)
        stored = OverviewWeek.objects.filter(school_id=school_id, academic_year=academic_year)
        if since is not None and until is not None:
            first_week, last_week = week_start_of(max(since, start)), week_start_of(min(until, end))
            stored = stored.filter(week_start__range=(first_week, last_week))
            # Only the year's own days count in its first and last weeks.
            start = max(start, first_week)
            end = min(end, last_week + dt.timedelta(days=6))
        stored.delete()
        if start <= end:
            OverviewWeek.objects.bulk_create(_week_rows(school_id, academic_year, start, end))
    if marks:
        OverviewGroup.objects.filter(school_id=school_id, academic_year=academic_year).delete()
        OverviewGroup.objects.bulk_create(_group_rows(school_id, academic_year))


def overview_ensure(*, school: School, academic_year: int) -> None:
    """Summarise a school year that never was (records loaded without an import's signal)."""
    if not OverviewGroup.objects.filter(school=school, academic_year=academic_year).exists():
        overview_refresh(school_id=school.pk, academic_year=academic_year)


def overview_refresh_for_students(
    *,
    student_ids: Sequence[int],
    since: dt.date | None = None,
    until: dt.date | None = None,
    kinds: Sequence[str] | None = None,
) -> int:
    """Refresh the school years whose overview these students' changed records feed.

    Attendance moves only the weeks it covers and marks only the failing
    counts; enrollments (a move between sections regroups every week) or an
    unknown change redo the whole year. Returns the school years refreshed.
    """
    changed = set(kinds or ())
    unknown = not changed or "enrollments" in changed
    weeks = unknown or "attendance" in changed
    marks = unknown or "grades" in changed
    if not (weeks or marks):
        return 0  # incidents: the overview shows none
    years = (
        Enrollment.objects.filter(student_id__in=list(student_ids))
        .order_by()
        .values_list("school_id", "academic_year")
        .distinct()
    )
    refreshed = 0
    for school_id, academic_year in sorted(years):
        start, end = academic_year_bounds(academic_year)
        if since is not None and until is not None and (until < start or since > end):
            continue
        overview_refresh(
            school_id=school_id,
            academic_year=academic_year,
            since=None if unknown else since,
            until=None if unknown else until,
            weeks=weeks,
            marks=marks,
        )
        refreshed += 1
    return refreshed
