"""Reads behind the pages. Everything starts from the students selectors' scope."""

import datetime as dt
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.paginator import Page, Paginator
from django.db.models import (
    Avg,
    Case,
    Count,
    Exists,
    F,
    FloatField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.shortcuts import get_object_or_404

from apps.accounts.models import User
from apps.dashboards.risk import risk_source
from apps.feedback.models import OPEN_STATUSES, Intervention
from apps.feedback.selectors import intervention_counts_annotations
from apps.students.models import (
    AttendanceRecord,
    AttendanceStatus,
    DisciplineIncident,
    Enrollment,
    GradeRecord,
    School,
    Student,
)
from apps.students.selectors import (
    enrollments_visible_to,
    schools_visible_to,
    students_visible_to,
)
from apps.students.services import academic_year_bounds, academic_year_of

# Bangladesh's secondary certificate pass mark: 33 of 100.
PASS_FRACTION = Decimal("0.33")
ATTENDED = (AttendanceStatus.PRESENT, AttendanceStatus.LATE)
PAGE_SIZE = 50
# In date.weekday() order; the settings hold these names.
WEEKDAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def week_start_of(day: dt.date) -> dt.date:
    """The first day of the school week a date falls in (EDUPULSE_WEEK_START)."""
    first = WEEKDAY_NAMES.index(settings.EDUPULSE_WEEK_START)
    return day - dt.timedelta(days=(day.weekday() - first) % 7)


def school_days_between(start: dt.date, end: dt.date) -> list[dt.date]:
    """The days schools are open (EDUPULSE_SCHOOL_DAYS) from start to end, both included."""
    open_days = {WEEKDAY_NAMES.index(name) for name in settings.EDUPULSE_SCHOOL_DAYS}
    span = (end - start).days + 1
    days = (start + dt.timedelta(days=offset) for offset in range(max(span, 0)))
    return [day for day in days if day.weekday() in open_days]


def _attended_ratio() -> Avg:
    return Avg(
        Case(When(status__in=ATTENDED, then=Value(1.0)), default=Value(0.0)),
        output_field=FloatField(),
    )


# --- Caseload ---------------------------------------------------------------

SORTS: dict[str, tuple[str, ...]] = {
    "name": ("student__name",),
    "id": ("student__student_id",),
    "school": ("school__name", "grade_level", "section"),
    "grade": ("grade_level", "section"),
    "attendance": ("attendance_month",),
    "open": ("open_interventions",),
    "overdue": ("overdue_reviews",),
    "risk": ("risk_probability",),
}


@dataclass(frozen=True)
class CaseloadFilters:
    school: int | None = None
    grade: int | None = None
    section: str = ""
    tier: str = ""
    rising: bool = False
    no_intervention: bool = False
    q: str = ""
    sort: str = ""

    def default_sort(self) -> str:
        # Without risk scores the lowest attendance this month is the best
        # "who needs help first" the data offers.
        return "-risk" if risk_source().available else "attendance"

    def effective_sort(self) -> str:
        key = self.sort or self.default_sort()
        name = key.removeprefix("-")
        if name not in SORTS or (name == "risk" and not risk_source().available):
            return self.default_sort()
        return key


def current_academic_year(today: dt.date) -> int:
    return academic_year_of(today)


def caseload(user: User, filters: CaseloadFilters, *, today: dt.date) -> QuerySet[Enrollment]:
    """One row per student in scope who is enrolled now: their open enrollment this year."""
    month_start = today.replace(day=1)
    attendance_month = (
        AttendanceRecord.objects.filter(
            student=OuterRef("student_id"),
            school=OuterRef("school_id"),
            date__gte=month_start,
            date__lte=today,
        )
        .order_by()
        .values("student")
        .annotate(ratio=_attended_ratio())
        .values("ratio")
    )
    rows: QuerySet[Enrollment] = (
        enrollments_visible_to(user)
        .filter(academic_year=current_academic_year(today), exit_date__isnull=True)
        .annotate(
            attendance_month=Subquery(attendance_month, output_field=FloatField()),
            **intervention_counts_annotations(today),
        )
    )
    if filters.school:
        rows = rows.filter(school_id=filters.school)
    if filters.grade:
        rows = rows.filter(grade_level=filters.grade)
    if filters.section:
        rows = rows.filter(section=filters.section)
    if filters.no_intervention:
        rows = rows.filter(~Exists(Intervention.objects.filter(student=OuterRef("student_id"))))
    if filters.q:
        q = unicodedata.normalize("NFC", filters.q.strip())
        rows = rows.filter(
            Q(student__student_id__istartswith=q)
            | Q(student__name__icontains=q)
            | Q(student__name_bn__icontains=q)
        )
    source = risk_source()
    rows = source.annotate(rows)
    if filters.tier or filters.rising:
        rows = source.filter(rows, tier=filters.tier, rising=filters.rising)
    sort = filters.effective_sort()
    descending = sort.startswith("-")
    ordering = [
        F(name).desc(nulls_last=True) if descending else F(name).asc(nulls_last=True)
        for name in SORTS[sort.removeprefix("-")]
    ]
    return rows.order_by(*ordering, "pk")


def _month_attendance(school_ids: set[int], today: dt.date) -> dict[int, float]:
    """Attendance this month at these schools, per student, in one grouped scan."""
    rows = (
        AttendanceRecord.objects.filter(
            school_id__in=school_ids, date__gte=today.replace(day=1), date__lte=today
        )
        .order_by()
        .values("student_id")
        .annotate(ratio=_attended_ratio())
        .values_list("student_id", "ratio")
    )
    return dict(rows)


def caseload_page(
    user: User, filters: CaseloadFilters, *, today: dt.date, number: str | int | None
) -> Page:
    """One page of the caseload, in a fixed number of queries whatever the number of rows.

    Sorting by attendance this month (the default until risk scores exist)
    would make PostgreSQL run the attendance subquery once per enrolled
    student; instead the month is aggregated for the schools in one grouped
    scan of the (school, date) index, the ids are sorted here, and only the
    page's rows are fetched with their annotations.
    """
    rows = caseload(user, filters, today=today)
    sort = filters.effective_sort()
    if sort.removeprefix("-") != "attendance":
        return Paginator(rows, PAGE_SIZE).get_page(number)
    keys = list(rows.order_by().values_list("pk", "student_id", "school_id"))
    ratios = _month_attendance({school_id for _pk, _student, school_id in keys}, today)
    sign = -1 if sort.startswith("-") else 1

    def order(key: tuple[int, int, int]) -> tuple[bool, float, int]:
        ratio = ratios.get(key[1])
        return (ratio is None, sign * (ratio or 0.0), key[0])

    keys.sort(key=order)
    page = Paginator(keys, PAGE_SIZE).get_page(number)
    page_ids = [pk for pk, _student, _school in page.object_list]
    fetched = {row.pk: row for row in rows.order_by().filter(pk__in=page_ids)}
    ordered: list[Any] = [fetched[pk] for pk in page_ids if pk in fetched]
    page.object_list = ordered
    return page


@dataclass
class CaseloadOptions:
    schools: list[School]
    grades: list[int]
    sections: list[str]


def caseload_options(user: User, *, today: dt.date) -> CaseloadOptions:
    schools = list(schools_visible_to(user).select_related(None).order_by("name"))
    groups = (
        Enrollment.objects.filter(
            school__in=[s.pk for s in schools],
            academic_year=current_academic_year(today),
            exit_date__isnull=True,
        )
        .order_by()
        .values_list("grade_level", "section")
        .distinct()
    )
    grades: set[int] = set()
    sections: set[str] = set()
    for grade, section in groups:
        grades.add(grade)
        if section:
            sections.add(section)
    return CaseloadOptions(schools=schools, grades=sorted(grades), sections=sorted(sections))


def new_high_risk_since(user: User, since: dt.datetime | None) -> int:
    return risk_source().new_high_risk_count(students_visible_to(user), since)


# --- Student page -------------------------------------------------------------


def student_for_user(user: User, pk: int) -> Student:
    """A student the user may see; 404 (never 403) otherwise, so ids outside scope leak nothing."""
    return get_object_or_404(students_visible_to(user), pk=pk)


def student_enrollments(student: Student) -> list[Enrollment]:
    return list(
        Enrollment.objects.filter(student=student)
        .select_related("school")
        .order_by("-academic_year", "-entry_date")
    )


@dataclass
class WeekAttendance:
    week_start: dt.date
    attended: int = 0
    absent: int = 0
    excused: int = 0

    @property
    def days(self) -> int:
        return self.attended + self.absent + self.excused

    @property
    def rate(self) -> float | None:
        return self.attended / self.days if self.days else None


def student_weekly_attendance(student: Student, year: int) -> list[WeekAttendance]:
    start, end = academic_year_bounds(year)
    weeks: dict[dt.date, WeekAttendance] = {}
    records = (
        AttendanceRecord.objects.filter(student=student, date__range=(start, end))
        .order_by("date")
        .values_list("date", "status")
    )
    for day, status in records:
        week = weeks.setdefault(week_start_of(day), WeekAttendance(week_start_of(day)))
        if status in ATTENDED:
            week.attended += 1
        elif status == AttendanceStatus.EXCUSED:
            week.excused += 1
        else:
            week.absent += 1
    return list(weeks.values())


@dataclass
class SubjectMarks:
    subject: Any
    by_term: dict[str, float | None] = field(default_factory=dict)  # percentage; None missing
    failing: bool = False


@dataclass
class MarksTable:
    terms: list[str]
    rows: list[SubjectMarks]


def student_marks(student: Student, year: int) -> MarksTable:
    grades = (
        GradeRecord.objects.filter(student=student, academic_year=year)
        .select_related("subject")
        .order_by("assessment_date", "subject__code")
    )
    terms: list[str] = []
    # Several assessments in a term are averaged into the term's percentage.
    sums: dict[tuple[int, str], list[float]] = defaultdict(list)
    missing: set[tuple[int, str]] = set()
    subjects: dict[int, Any] = {}
    for grade in grades:
        if grade.term not in terms:
            terms.append(grade.term)
        subjects.setdefault(grade.subject_id, grade.subject)
        key = (grade.subject_id, grade.term)
        if grade.is_missing or grade.score is None:
            missing.add(key)
        else:
            sums[key].append(float(grade.score / grade.max_score))
    rows = []
    for subject_id, subject in sorted(subjects.items(), key=lambda item: item[1].code):
        row = SubjectMarks(subject=subject)
        for term in terms:
            scores = sums.get((subject_id, term))
            row.by_term[term] = sum(scores) / len(scores) if scores else None
        latest = next((row.by_term[t] for t in reversed(terms) if row.by_term[t] is not None), None)
        row.failing = latest is not None and latest < float(PASS_FRACTION)
        rows.append(row)
    return MarksTable(terms=terms, rows=rows)


def student_incidents(student: Student) -> list[DisciplineIncident]:
    return list(
        DisciplineIncident.objects.filter(student=student)
        .select_related("school")
        .order_by("-date")
    )


# --- School overview -------------------------------------------------------------

_OVERVIEW_VERSION_KEY = "dashboards:overview:version"
OVERVIEW_CACHE_SECONDS = 15 * 60


def overview_cache_clear(**_kwargs: Any) -> None:
    """Receiver of student_data_changed: a new version makes every cached overview stale."""
    try:
        cache.incr(_OVERVIEW_VERSION_KEY)
    except ValueError:
        cache.set(_OVERVIEW_VERSION_KEY, 1, None)


@dataclass
class GroupRates:
    grade_level: int
    section: str
    students: int
    attendance_rate: float | None
    failing_rate: float | None
    open_interventions: int


@dataclass
class SchoolOverview:
    year: int
    students: int
    attendance_rate: float | None
    failing_rate: float | None
    open_interventions: int
    groups: list[GroupRates]
    weekly: list[WeekAttendance]


def _overview_compute(school: School, year: int, today: dt.date) -> SchoolOverview:
    start, end = academic_year_bounds(year)
    end = min(end, today)
    enrollments = Enrollment.objects.filter(school=school, academic_year=year).order_by()
    failing_mark = GradeRecord.objects.filter(
        student=OuterRef("student_id"),
        academic_year=year,
        is_missing=False,
        score__lt=F("max_score") * PASS_FRACTION,
    )
    open_plan = Intervention.objects.filter(
        student=OuterRef("student_id"), status__in=OPEN_STATUSES
    )
    per_group = {
        (row["grade_level"], row["section"]): row
        for row in enrollments.values("grade_level", "section").annotate(
            students=Count("pk"),
            failing=Count("pk", filter=Exists(failing_mark)),
            with_open=Count("pk", filter=Exists(open_plan)),
        )
    }
    # Attendance is summed per student first (the (student, date) index), then
    # per grade and section in Python: cheaper than joining 600k rows to enrollments.
    attendance = (
        AttendanceRecord.objects.filter(school=school, date__range=(start, end))
        .order_by()
        .values("student_id")
        .annotate(
            attended=Count("pk", filter=Q(status__in=ATTENDED)),
            days=Count("pk"),
        )
    )
    group_of = {
        student_id: (grade, section)
        for student_id, grade, section in enrollments.values_list(
            "student_id", "grade_level", "section"
        )
    }
    attended_by: dict[tuple[int, str], list[int]] = defaultdict(lambda: [0, 0])
    for per_student in attendance:
        key = group_of.get(per_student["student_id"])
        if key is not None:
            attended_by[key][0] += per_student["attended"]
            attended_by[key][1] += per_student["days"]
    weekly: dict[dt.date, WeekAttendance] = {}
    daily = (
        AttendanceRecord.objects.filter(school=school, date__range=(start, end))
        .order_by()
        .values("date")
        .annotate(attended=Count("pk", filter=Q(status__in=ATTENDED)), days=Count("pk"))
    )
    for per_day in daily:
        start_of_week = week_start_of(per_day["date"])
        week = weekly.setdefault(start_of_week, WeekAttendance(start_of_week))
        week.attended += per_day["attended"]
        week.absent += per_day["days"] - per_day["attended"]
    groups = []
    for (grade, section), group in sorted(per_group.items()):
        attended, days = attended_by.get((grade, section), (0, 0))
        groups.append(
            GroupRates(
                grade_level=grade,
                section=section,
                students=group["students"],
                attendance_rate=attended / days if days else None,
                failing_rate=group["failing"] / group["students"] if group["students"] else None,
                open_interventions=group["with_open"],
            )
        )
    students = sum(g.students for g in groups)
    total_attended = sum(v[0] for v in attended_by.values())
    total_days = sum(v[1] for v in attended_by.values())
    failing = sum(group["failing"] for group in per_group.values())
    return SchoolOverview(
        year=year,
        students=students,
        attendance_rate=total_attended / total_days if total_days else None,
        failing_rate=failing / students if students else None,
        open_interventions=sum(g.open_interventions for g in groups),
        groups=groups,
        weekly=sorted(weekly.values(), key=lambda w: w.week_start),
    )


def school_overview(school: School, *, today: dt.date) -> SchoolOverview:
    """The year's aggregates for one school, cached until the data changes or 15 minutes pass."""
    year = current_academic_year(today)
    version = cache.get_or_set(_OVERVIEW_VERSION_KEY, 1, None)
    key = f"dashboards:overview:{version}:{school.pk}:{year}:{today.isoformat()}"
    overview = cache.get(key)
    if overview is None:
        overview = _overview_compute(school, year, today)
        cache.set(key, overview, OVERVIEW_CACHE_SECONDS)
    return overview


def school_for_user(user: User, pk: int | None) -> School | None:
    schools = schools_visible_to(user)
    if pk is None:
        return schools.order_by("name").first()
    return get_object_or_404(schools, pk=pk)
