"""A small school with a term of records, users in and out of scope, and a stand-in risk source."""

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import pytest
from django.db.models import Case, FloatField, QuerySet, Value, When
from django.utils import timezone

from apps.accounts.models import Role, User
from apps.accounts.services import user_create
from apps.dashboards.risk import (
    RiskFactor,
    RiskPoint,
    RiskTier,
    StudentRisk,
    risk_source_set,
)
from apps.students.models import (
    AttendanceRecord,
    DisciplineIncident,
    Enrollment,
    GradeRecord,
    School,
    Student,
)
from apps.students.services import academic_year_bounds, academic_year_of, staff_scope_grant
from tests.factories import SchoolFactory, StudentFactory, SubjectFactory
from tests.predictions.rows import prediction_row

PASSWORD = "a-long-test-password"


@dataclass
class Term:
    school: School
    other_school: School
    year: int
    today: dt.date


def school_days(start: dt.date, end: dt.date) -> list[dt.date]:
    days = []
    day = start
    while day <= end:
        if day.weekday() not in (4, 5):  # Friday and Saturday
            days.append(day)
        day += dt.timedelta(days=1)
    return days


def add_students(
    school: School, count: int, *, year: int, today: dt.date, offset: int = 0
) -> list[Student]:
    """Students enrolled this year with the last 20 school days of attendance and a mark each."""
    start, _end = academic_year_bounds(year)
    math = SubjectFactory(code="MATH", name="Mathematics", name_bn="গণিত")
    days = school_days(max(start, today - dt.timedelta(days=28)), today)
    students = []
    for i in range(count):
        n = offset + i
        student = StudentFactory(
            name=f"Learner {school.pk}-{n}",
            name_bn=f"শিক্ষার্থী {n}",
            guardian_name="Guardian",
        )
        Enrollment.objects.create(
            student=student,
            school=school,
            academic_year=year,
            grade_level=6 + n % 3,
            section="AB"[n % 2],
            entry_date=start,
        )
        AttendanceRecord.objects.bulk_create(
            AttendanceRecord(
                student=student,
                school=school,
                date=day,
                status="absent" if (k + n) % (3 + n % 4) == 0 else "present",
            )
            for k, day in enumerate(days)
        )
        GradeRecord.objects.create(
            student=student,
            subject=math,
            academic_year=year,
            term="Half-yearly",
            assessment="exam",
            assessment_date=start + dt.timedelta(days=150),
            score=20 + (n * 7) % 80,
            max_score=100,
        )
        if n % 4 == 0:
            DisciplineIncident.objects.create(
                student=student,
                school=school,
                date=today - dt.timedelta(days=3),
                category="truancy",
                severity=1,
            )
        students.append(student)
    return students


@pytest.fixture
def term(db: None) -> Term:
    today = timezone.localdate()
    year = academic_year_of(today)
    school = SchoolFactory(name="Chilmari High School", name_bn="চিলমারী উচ্চ বিদ্যালয়")
    other = SchoolFactory(name="Far Away School")
    return Term(school=school, other_school=other, year=year, today=today)


@pytest.fixture
def counselor(term: Term) -> User:
    user = user_create(username="counselor", password=PASSWORD, role=Role.COUNSELOR)
    staff_scope_grant(user=user, school=term.school)
    return user


@pytest.fixture
def analyst(term: Term) -> User:
    user = user_create(username="analyst", password=PASSWORD, role=Role.ANALYST)
    staff_scope_grant(user=user, school=term.school)
    return user


class StaticRiskSource:
    """The predictions app's future source, played from memory: for page tests only."""

    available = True

    def __init__(self, risks: dict[int, StudentRisk]) -> None:
        self.risks = risks

    def for_students(self, student_ids: Sequence[int]) -> dict[int, StudentRisk]:
        return {pk: self.risks[pk] for pk in student_ids if pk in self.risks}

    def history(self, student_id: int) -> list[RiskPoint]:
        risk = self.risks.get(student_id)
        if risk is None:
            return []
        week = timezone.localdate() - dt.timedelta(days=7)
        return [
            RiskPoint(week - dt.timedelta(days=7), risk.probability - 0.1, RiskTier.MEDIUM),
            RiskPoint(week, risk.probability, risk.tier),
        ]

    def factors(self, student_id: int) -> list[RiskFactor]:
        if student_id not in self.risks:
            return []
        return [
            RiskFactor("Attendance fell from 95% to 61% over 6 weeks.", (timezone.localdate(),))
        ]

    def tier_counts(self, school_ids: Sequence[int]) -> dict[str, int]:
        counts: dict[str, int] = {}
        for risk in self.risks.values():
            counts[risk.tier] = counts.get(risk.tier, 0) + 1
        return counts

    def new_high_risk_count(self, student_ids: QuerySet, since: dt.datetime | None) -> int:
        visible = set(student_ids.values_list("pk", flat=True))
        return sum(
            1
            for r in self.risks.values()
            if r.student_id in visible
            and r.tier == RiskTier.HIGH
            and (since is None or r.scored_at > since)
        )

    def top_risers(self, school_ids: Sequence[int], limit: int) -> list[StudentRisk]:
        rising = [r for r in self.risks.values() if r.is_rising]
        return sorted(rising, key=lambda r: -(r.change_since_last_week or 0))[:limit]

    def annotate(self, enrollments: QuerySet[Enrollment]) -> QuerySet[Enrollment]:
        whens = [When(student_id=pk, then=Value(r.probability)) for pk, r in self.risks.items()]
        return enrollments.annotate(
            risk_probability=Case(*whens, default=Value(None), output_field=FloatField())
        )

    def filter(
        self, enrollments: QuerySet[Enrollment], *, tier: str, rising: bool
    ) -> QuerySet[Enrollment]:
        ids = [
            pk
            for pk, r in self.risks.items()
            if (not tier or r.tier == tier) and (not rising or r.is_rising)
        ]
        return enrollments.filter(student_id__in=ids)


def make_risks(students: Sequence[Student]) -> dict[int, StudentRisk]:
    tiers = [RiskTier.HIGH, RiskTier.MEDIUM, RiskTier.LOW]
    now = timezone.now()
    return {
        s.pk: StudentRisk(
            student_id=s.pk,
            # A real row: a counselor's verdict (TrainingFeedback) has a key to it.
            prediction_id=prediction_row(s, probability=0.9 - 0.1 * (i % 9), tier=tiers[i % 3]).pk,
            tier=tiers[i % 3],
            probability=0.9 - 0.1 * (i % 9),
            change_since_last_week=0.05 if i % 2 == 0 else -0.02,
            top_reason="Attendance fell over the last six weeks.",
            scored_at=now,
        )
        for i, s in enumerate(students)
    }


@pytest.fixture
def with_risk() -> Iterator[StaticRiskSource]:
    source = StaticRiskSource({})
    previous = risk_source_set(source)
    yield source
    risk_source_set(previous)
