import datetime as dt
from collections.abc import Callable
from decimal import Decimal

import numpy as np
import pytest
from django.core.cache import cache

from apps.features.selectors import WeeklyHistory, feature_set_current, history_chunks
from apps.features.services import features_build
from apps.students.models import (
    AttendanceRecord,
    DisciplineIncident,
    GradeRecord,
    Holiday,
    School,
    Student,
    Subject,
)
from tests.factories import EnrollmentFactory, SchoolFactory, StudentFactory

# 2026 starts on a Thursday: week 0 is Sun 28 Dec 2025 - Sat 3 Jan 2026 and
# holds one school day of the year (Thu 1 Jan); week k >= 1 starts on Sun 4 Jan + 7(k-1).
YEAR = 2026


def week(k: int) -> dt.date:
    return dt.date(2026, 1, 4) + dt.timedelta(days=7 * (k - 1))


@pytest.fixture(autouse=True)
def _calendar(settings: pytest.FixtureRequest) -> None:
    settings.EDUPULSE_ACADEMIC_YEAR_START = (1, 1)  # type: ignore[attr-defined]
    settings.EDUPULSE_SCHOOL_DAYS = ["sun", "mon", "tue", "wed", "thu"]  # type: ignore[attr-defined]
    settings.EDUPULSE_WEEK_START = "sun"  # type: ignore[attr-defined]
    cache.clear()


STATUS = {"P": "present", "A": "absent", "E": "excused", "L": "late"}


def mark(student: Student, school: School, first_day: dt.date, codes: str) -> None:
    """One record per school day from `first_day`, one letter per day; '.' = no record."""
    records = []
    day = first_day
    for code in codes:
        if code != ".":
            records.append(
                AttendanceRecord(student=student, school=school, date=day, status=STATUS[code])
            )
        day += dt.timedelta(days=1)
    AttendanceRecord.objects.bulk_create(records)


def grade(
    student: Student, code: str, day: dt.date, score: float | None, max_score: float = 100
) -> None:
    subject, _ = Subject.objects.get_or_create(
        code=code, defaults={"name": code, "is_core": code in {"BAN", "ENG", "MATH"}}
    )
    GradeRecord.objects.create(
        student=student,
        subject=subject,
        academic_year=YEAR,
        term="T1",
        assessment=f"{code}-{day.isoformat()}",
        assessment_date=day,
        score=None if score is None else Decimal(str(score)),
        max_score=Decimal(str(max_score)),
        is_missing=score is None,
    )


def incident(
    student: Student, school: School, day: dt.date, severity: int, suspended: int = 0
) -> None:
    DisciplineIncident.objects.create(
        student=student,
        school=school,
        date=day,
        category="disruption" if severity == 1 else "fighting" if severity == 3 else "bullying",
        severity=severity,
        days_suspended=suspended,
    )


class Built:
    """The built year for the test's students, read back through the selectors."""

    def __init__(self, history: WeeklyHistory) -> None:
        self.history = history

    def __call__(self, student: Student, column: str, weeks: int | None = 6) -> list[float | None]:
        """The column's first `weeks` weeks (all with None), NaN as None."""
        row = int(np.searchsorted(self.history.student_ids, student.pk))
        assert self.history.student_ids[row] == student.pk
        col = self.history.columns.index(column)
        series = self.history.values[row, :weeks, col]
        return [None if np.isnan(v) else round(float(v), 6) for v in series]

    def in_session(self, student: Student) -> list[bool]:
        row = int(np.searchsorted(self.history.student_ids, student.pk))
        return [bool(v) for v in self.history.in_session[row]]


@pytest.fixture
def build() -> Callable[..., Built]:
    def run(until: dt.date = dt.date(2026, 2, 7), **kwargs: object) -> Built:
        features_build(academic_year=YEAR, until=until, **kwargs)  # type: ignore[arg-type]
        chunks = list(history_chunks(feature_set_current(), academic_year=YEAR, until=until))
        assert len(chunks) == 1
        return Built(chunks[0])

    return run


@pytest.fixture
def school() -> School:
    return SchoolFactory()


@pytest.fixture
def student(school: School) -> Student:
    pupil = StudentFactory(date_of_birth=dt.date(2011, 6, 1))
    EnrollmentFactory(student=pupil, school=school, entry_date=dt.date(2026, 1, 1), grade_level=7)
    return pupil


@pytest.fixture
def holiday_week() -> None:
    # Week 2 (11-15 Jan) is a national holiday week: no school days at all.
    for offset in range(5):
        Holiday.objects.create(date=week(2) + dt.timedelta(days=offset), name="Break")
