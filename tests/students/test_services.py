import datetime as dt
import unicodedata

import pytest
from django.core.exceptions import ValidationError
from django.test import override_settings

from apps.students.models import Enrollment, Region, RegionLevel, Subject
from apps.students.services import (
    academic_year_bounds,
    academic_year_of,
    regions_load,
    staff_scope_grant,
    student_enroll,
    student_transfer,
    subjects_load,
)
from tests.factories import RegionFactory, SchoolFactory, StudentFactory, UserFactory


@pytest.mark.django_db
def test_regions_load_builds_the_real_tree_once() -> None:
    assert regions_load() == 8 + 64 + 494
    assert regions_load() == 0
    kurigram = Region.objects.get(level=RegionLevel.DISTRICT, name="Kurigram")
    assert kurigram.name_bn == unicodedata.normalize("NFC", "কুড়িগ্রাম")
    assert kurigram.parent.name == "Rangpur"
    upazilas = Region.objects.filter(path__startswith=kurigram.path, level=RegionLevel.UPAZILA)
    assert "Ulipur" in set(upazilas.values_list("name", flat=True))


@pytest.mark.django_db
def test_subjects_load_marks_the_core_subjects() -> None:
    subjects_load()
    subjects_load()
    assert set(Subject.objects.filter(is_core=True).values_list("code", flat=True)) == {
        "BAN",
        "ENG",
        "MATH",
    }


def test_the_bangladeshi_academic_year_is_the_calendar_year() -> None:
    assert academic_year_of(dt.date(2026, 1, 1)) == 2026
    assert academic_year_of(dt.date(2026, 12, 31)) == 2026
    assert academic_year_bounds(2026) == (dt.date(2026, 1, 1), dt.date(2026, 12, 31))


@override_settings(EDUPULSE_ACADEMIC_YEAR_START=(7, 1))
def test_a_july_calendar_names_the_year_by_its_start() -> None:
    assert academic_year_of(dt.date(2026, 6, 30)) == 2025
    assert academic_year_of(dt.date(2026, 7, 1)) == 2026
    assert academic_year_bounds(2026) == (dt.date(2026, 7, 1), dt.date(2027, 6, 30))


@pytest.mark.django_db
def test_enrolling_outside_the_academic_year_is_refused() -> None:
    with pytest.raises(ValidationError):
        student_enroll(
            student=StudentFactory(),
            school=SchoolFactory(),
            academic_year=2026,
            grade_level=7,
            entry_date=dt.date(2027, 1, 5),
        )


@pytest.mark.django_db
def test_a_transfer_closes_one_enrollment_and_opens_the_next() -> None:
    first = student_enroll(
        student=StudentFactory(),
        school=SchoolFactory(),
        academic_year=2026,
        grade_level=7,
        entry_date=dt.date(2026, 1, 4),
    )
    second = student_transfer(
        enrollment=first, to_school=SchoolFactory(), transfer_date=dt.date(2026, 5, 10)
    )
    first.refresh_from_db()
    assert (first.exit_date, first.exit_reason) == (dt.date(2026, 5, 10), "transferred")
    assert second.exit_date is None and second.grade_level == 7
    assert Enrollment.objects.filter(student=first.student, exit_date__isnull=True).count() == 1


@pytest.mark.django_db
def test_a_scope_names_exactly_one_of_school_or_region_and_is_granted_once() -> None:
    user, school = UserFactory(), SchoolFactory()
    first = staff_scope_grant(user=user, school=school)
    assert staff_scope_grant(user=user, school=school) == first
    assert user.scopes.count() == 1
    with pytest.raises(ValidationError):
        staff_scope_grant(user=user)
    with pytest.raises(ValidationError):
        staff_scope_grant(user=user, school=school, region=RegionFactory())
