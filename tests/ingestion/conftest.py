import datetime as dt

import pytest

from apps.students.models import Region, RegionLevel, Subject
from tests.factories import EnrollmentFactory, SchoolFactory, StudentFactory


@pytest.fixture
def world(db: None) -> dict[str, object]:
    """Two schools in one upazila, three students enrolled for 2026 at the first."""
    division = Region.objects.create(
        level=RegionLevel.DIVISION, code="D1", name="Rangpur", path="/D1/"
    )
    district = Region.objects.create(
        level=RegionLevel.DISTRICT, code="Z1", name="Kurigram", parent=division, path="/D1/Z1/"
    )
    upazila = Region.objects.create(
        level=RegionLevel.UPAZILA,
        code="U1",
        name="Kurigram Sadar",
        name_bn="কুড়িগ্রাম সদর",
        parent=district,
        path="/D1/Z1/U1/",
    )
    school = SchoolFactory(eiin="100001", region=upazila)
    other = SchoolFactory(eiin="100002", region=upazila)
    students = [StudentFactory(student_id=f"S-{i}") for i in (1, 2, 3)]
    for student in students:
        EnrollmentFactory(
            student=student, school=school, academic_year=2026, entry_date=dt.date(2026, 1, 1)
        )
    Subject.objects.create(code="MATH", name="Mathematics", is_core=True)
    return {"school": school, "other": other, "students": students, "upazila": upazila}
