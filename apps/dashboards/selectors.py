"""Reads behind the pages. Everything starts from the students selectors' scope."""

import datetime as dt
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.conf import settings
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
from apps.dashboards.models import OverviewGroup, OverviewWeek
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


# What the caseload and its exports show of each row: an export of 3,000 rows
# otherwise spends more time building timestamps it never shows than on its SQL.
CASELOAD_FIELDS = (
    "student_id",
    "school_id",
    "grade_level",
    "section",
    "student__name",
    "student__name_bn",
    "student__student_id",
    "school__name",
    "school__name_bn",
)


def current_academic_year(today: dt.date) -> int:
    return academic_year_of(today)


def caseload(
    user: User, filters: CaseloadFilters, *, today: dt.date, with_month: bool = True
) -> QuerySet[Enrollment]:
    """One row per student in scope who is enrolled now: their open enrollment this year.

    `with_month` annotates attendance this month row by row; a whole list
    (`caseload_rows`) takes it from one grouped scan instead.
    """
    rows: QuerySet[Enrollment] = (
        enrollments_visible_to(user)
        .filter(academic_year=current_academic_year(today), exit_date__isnull=True)
        .only(*CASELOAD_FIELDS)
        .annotate(**intervention_counts_annotations(today))
    )
    if with_month:
        attendance_month = (
            AttendanceRecord.objects.filter(
                student=OuterRef("student_id"),
                school=OuterRef("school_id"),
                date__gte=today.replace(day=1),
                date__lte=today,
            )
            .order_by()
            .values("student")
            .annotate(ratio=_attended_ratio())
            .values("ratio")
        )
        rows = rows.annotate(attendance_month=Subquery(attendance_month, output_field=FloatField()))
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
    if sort.removeprefix("-") == "attendance":
        return rows.order_by("pk")  # sorted in Python: see _attendance_order
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


def _attendance_order(
    rows: QuerySet[Enrollment], filters: CaseloadFilters, today: dt.date
) -> tuple[list[int], dict[int, float]]:
    """The caseload's ids by attendance this month, and each student's ratio.

    Sorting on the per-row subquery would make PostgreSQL run it once per
    enrolled student; the month is aggregated for the schools in one grouped
    scan of the (school, date) index and the ids are sorted here.
    """
    keys = list(rows.order_by().values_list("pk", "student_id", "school_id"))
    ratios = _month_attendance({school_id for _pk, _student, school_id in keys}, today)
    sign = -1 if filters.effective_sort().startswith("-") else 1

    def order(key: tuple[int, int, int]) -> tuple[bool, float, int]:
        ratio = ratios.get(key[1])
        return (ratio is None, sign * (ratio or 0.0), key[0])

    keys.sort(key=order)
    return [pk for pk, _student, _school in keys], ratios


def _by_pk(rows: QuerySet[Enrollment], ids: list[int]) -> list[Enrollment]:
    fetched = {row.pk: row for row in rows.order_by().filter(pk__in=ids)}
    return [fetched[pk] for pk in ids if pk in fetched]


def caseload_page(
    user: User, filters: CaseloadFilters, *, today: dt.date, number: str | int | None
) -> Page:
    """One page of the caseload, in a fixed number of queries whatever the number of rows.

    The ids are sorted and paged first, with nothing computed but the sort
    key; then only the page's rows are fetched with their annotations
    (attendance this month, plans, risk). Fetching the page directly would
    have PostgreSQL compute every annotation for each row it skips on its way
    to page 40.
    """
    rows = caseload(user, filters, today=today)
    if filters.effective_sort().removeprefix("-") == "attendance":
        ids, _ratios = _attendance_order(rows, filters, today)
    else:
        # Every id in order (a few thousand integers) rather than a count and a slice:
        # one query fewer, and PostgreSQL sorts them all either way.
        ids = list(rows.values_list("pk", flat=True))
    page = Paginator(ids, PAGE_SIZE).get_page(number)
    enrollments: Any = _by_pk(rows, list(page.object_list))
    page.object_list = enrollments
    return page


@dataclass(frozen=True)
class CaseloadExportRow:
    student_id: int
    name: str
    name_bn: str
    identifier: str
    school: str
    grade_level: int
    section: str
    attendance_month: float | None
    open_interventions: int
    overdue_reviews: int


# The columns of an export row, in CaseloadExportRow's order after attendance.
_EXPORT_VALUES = (
    "pk",
    "student_id",
    "student__name",
    "student__name_bn",
    "student__student_id",
    "school__name",
    "grade_level",
    "section",
    "school_id",
    "open_interventions",
    "overdue_reviews",
)


def caseload_rows(
    user: User, filters: CaseloadFilters, *, today: dt.date
) -> list[CaseloadExportRow]:
    """Every row of the caseload in its order (the exports), in a fixed number of queries.

    Plain values rather than model instances: building three objects per row
    cost more than the SQL. Attendance this month comes from one grouped scan
    of the schools' month rather than a subquery per row.
    """
    rows = caseload(user, filters, today=today, with_month=False)
    values = rows.values_list(*_EXPORT_VALUES)
    if filters.effective_sort().removeprefix("-") == "attendance":
        ids, ratios = _attendance_order(rows, filters, today)
        fetched = {row[0]: row for row in values.order_by().filter(pk__in=ids)}
        ordered = [fetched[pk] for pk in ids if pk in fetched]
    else:
        ordered = list(values)
        ratios = _month_attendance({row[8] for row in ordered}, today)
    return [
        CaseloadExportRow(
            student_id=student_id,
            name=name,
            name_bn=name_bn,
            identifier=identifier,
            school=school,
            grade_level=grade_level,
            section=section,
            attendance_month=ratios.get(student_id),
            open_interventions=open_interventions,
            overdue_reviews=overdue_reviews,
        )
        for (
            _pk,
            student_id,
            name,
            name_bn,
            identifier,
            school,
            grade_level,
            section,
            _school_id,
            open_interventions,
            overdue_reviews,
        ) in ordered
    ]


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


def school_overview(school: School, *, today: dt.date) -> SchoolOverview:
    """One school's year in three small queries, whatever its size.

    Students and open plans per grade and section are counted live (one
    grouped scan of the year's enrollments); attendance and failing marks
    come from the summaries `services.overview_refresh` keeps (OverviewWeek,
    OverviewGroup), not from a year of daily records.
    """
    year = current_academic_year(today)
    open_plan = Intervention.objects.filter(
        student=OuterRef("student_id"), status__in=OPEN_STATUSES
    )
    per_group = {
        (grade, section): (students, with_open)
        for grade, section, students, with_open in Enrollment.objects.filter(
            school=school, academic_year=year
        )
        .order_by()
        .values_list("grade_level", "section")
        .annotate(students=Count("pk"), with_open=Count("pk", filter=Exists(open_plan)))
    }
    failing_by = dict(
        ((grade, section), failing)
        for grade, section, failing in OverviewGroup.objects.filter(
            school=school, academic_year=year
        ).values_list("grade_level", "section", "failing")
    )
    attended_by: dict[tuple[int, str], list[int]] = defaultdict(lambda: [0, 0])
    weekly: dict[dt.date, WeekAttendance] = {}
    for week_start, grade, section, attended, recorded in OverviewWeek.objects.filter(
        school=school, academic_year=year, week_start__lte=today
    ).values_list("week_start", "grade_level", "section", "attended", "recorded"):
        totals = attended_by[(grade, section)]
        totals[0] += attended
        totals[1] += recorded
        week = weekly.setdefault(week_start, WeekAttendance(week_start))
        week.attended += attended
        week.absent += recorded - attended
    groups = []
    for (grade, section), (students, with_open) in sorted(per_group.items()):
        attended, days = attended_by.get((grade, section), (0, 0))
        failing = failing_by.get((grade, section))
        groups.append(
            GroupRates(
                grade_level=grade,
                section=section,
                students=students,
                attendance_rate=attended / days if days else None,
                failing_rate=failing / students if failing is not None and students else None,
                open_interventions=with_open,
            )
        )
    students = sum(g.students for g in groups)
    total_attended = sum(totals[0] for totals in attended_by.values())
    total_days = sum(totals[1] for totals in attended_by.values())
    failing = sum(failing_by.get(key, 0) for key in per_group)
    return SchoolOverview(
        year=year,
        students=students,
        attendance_rate=total_attended / total_days if total_days else None,
        failing_rate=failing / students if failing_by and students else None,
        open_interventions=sum(g.open_interventions for g in groups),
        groups=groups,
        weekly=sorted(weekly.values(), key=lambda w: w.week_start),
    )


def school_for_user(user: User, pk: int | None) -> School | None:
    schools = schools_visible_to(user)
    if pk is None:
        return schools.order_by("name").first()
    return get_object_or_404(schools, pk=pk)
