import datetime as dt

import pytest
from django.db import IntegrityError, transaction

from apps.students.models import (
    AttendanceRecord,
    DisciplineIncident,
    Enrollment,
    GradeRecord,
    Region,
    RegionLevel,
)
from tests.factories import (
    AttendanceFactory,
    EnrollmentFactory,
    GradeFactory,
    RegionFactory,
    SchoolFactory,
    StudentFactory,
    SubjectFactory,
)

pytestmark = pytest.mark.django_db


def _violates(create) -> bool:  # type: ignore[no-untyped-def]
    try:
        with transaction.atomic():
            create()
    except IntegrityError:
        return True
    return False


def test_attendance_has_one_row_per_student_per_day() -> None:
    record = AttendanceFactory()
    assert _violates(
        lambda: AttendanceRecord.objects.create(
            student=record.student, school=record.school, date=record.date, status="absent"
        )
    )
    AttendanceRecord.objects.create(
        student=record.student, school=record.school, date=dt.date(2026, 3, 2), status="absent"
    )


def test_a_student_has_one_enrollment_per_school_and_year() -> None:
    enrollment = EnrollmentFactory()
    assert _violates(
        lambda: Enrollment.objects.create(
            student=enrollment.student,
            school=enrollment.school,
            academic_year=2026,
            grade_level=8,
            entry_date=dt.date(2026, 2, 1),
            exit_date=dt.date(2026, 3, 1),
            exit_reason="other",
        )
    )


def test_a_student_cannot_be_open_at_two_schools_in_the_same_year() -> None:
    enrollment = EnrollmentFactory()
    assert _violates(lambda: EnrollmentFactory(student=enrollment.student))


def test_a_closed_enrollment_allows_the_next_one_in_the_same_year() -> None:
    enrollment = EnrollmentFactory(exit_date=dt.date(2026, 5, 1), exit_reason="transferred")
    EnrollmentFactory(student=enrollment.student, entry_date=dt.date(2026, 5, 1))
    assert Enrollment.objects.filter(student=enrollment.student).count() == 2


@pytest.mark.parametrize("grade_level", [0, 13])
def test_grade_levels_outside_1_to_12_are_refused(grade_level: int) -> None:
    assert _violates(lambda: EnrollmentFactory(grade_level=grade_level))


def test_an_exit_date_needs_an_exit_reason_and_may_not_precede_entry() -> None:
    assert _violates(lambda: EnrollmentFactory(exit_date=dt.date(2026, 5, 1), exit_reason=""))
    assert _violates(lambda: EnrollmentFactory(exit_reason="dropped_out"))
    assert _violates(
        lambda: EnrollmentFactory(exit_date=dt.date(2025, 12, 1), exit_reason="dropped_out")
    )


def test_a_score_must_lie_within_its_maximum_unless_marked_missing() -> None:
    assert _violates(lambda: GradeFactory(score=101, max_score=100))
    assert _violates(lambda: GradeFactory(score=-1))
    assert _violates(lambda: GradeFactory(score=None, is_missing=False))
    assert _violates(lambda: GradeFactory(score=40, is_missing=True))
    missing = GradeFactory(score=None, is_missing=True)
    assert GradeRecord.objects.get(pk=missing.pk).score is None


def test_grades_have_a_natural_key() -> None:
    grade = GradeFactory()
    assert _violates(
        lambda: GradeFactory(
            student=grade.student, subject=SubjectFactory(), score=10, assessment=grade.assessment
        )
    )


def test_incidents_have_a_natural_key_and_a_severity_from_1_to_3() -> None:
    student, school = StudentFactory(), SchoolFactory()

    def incident(severity: int = 2, category: str = "fighting") -> DisciplineIncident:
        return DisciplineIncident.objects.create(
            student=student,
            school=school,
            date=dt.date(2026, 4, 1),
            category=category,
            severity=severity,
        )

    incident()
    assert _violates(incident)
    assert _violates(lambda: incident(severity=4, category="bullying"))


def test_only_divisions_are_roots_of_the_region_tree() -> None:
    division = RegionFactory()
    assert _violates(
        lambda: Region.objects.create(level=RegionLevel.DISTRICT, code="X", name="X", path="/X/")
    )
    assert _violates(
        lambda: Region.objects.create(
            level=RegionLevel.DIVISION, code="Y", name="Y", parent=division, path="/Y/"
        )
    )


def test_personal_data_stays_out_of_the_string_form() -> None:
    student = StudentFactory(name="Ayesha Akter", student_id="KUR-000001")
    assert str(student) == "KUR-000001"
