import pytest
from django.contrib.auth.models import AnonymousUser

from apps.accounts.models import Role
from apps.students.models import RegionLevel
from apps.students.selectors import (
    enrollments_visible_to,
    schools_visible_to,
    students_visible_to,
)
from tests.factories import (
    EnrollmentFactory,
    RegionFactory,
    SchoolFactory,
    StaffScopeFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def district() -> dict:  # type: ignore[type-arg]
    division = RegionFactory()
    district_a = RegionFactory(level=RegionLevel.DISTRICT, parent=division)
    district_b = RegionFactory(level=RegionLevel.DISTRICT, parent=division)
    upazila_a = RegionFactory(level=RegionLevel.UPAZILA, parent=district_a)
    school_a = SchoolFactory(region=upazila_a)
    school_a2 = SchoolFactory(region=upazila_a)
    school_b = SchoolFactory(region=RegionFactory(level=RegionLevel.UPAZILA, parent=district_b))
    return {
        "district_a": district_a,
        "school_a": school_a,
        "school_a2": school_a2,
        "school_b": school_b,
        "student_a": EnrollmentFactory(school=school_a).student,
        "student_a2": EnrollmentFactory(school=school_a2).student,
        "student_b": EnrollmentFactory(school=school_b).student,
    }


def test_a_counselor_of_school_a_sees_nothing_of_school_b(district: dict) -> None:  # type: ignore[type-arg]
    counselor = StaffScopeFactory(school=district["school_a"]).user
    assert list(students_visible_to(counselor)) == [district["student_a"]]
    assert list(schools_visible_to(counselor)) == [district["school_a"]]
    assert {e.school for e in enrollments_visible_to(counselor)} == {district["school_a"]}


def test_a_region_scope_covers_every_school_below_it(district: dict) -> None:  # type: ignore[type-arg]
    analyst = StaffScopeFactory(region=district["district_a"], user__role=Role.ANALYST).user
    assert set(students_visible_to(analyst)) == {district["student_a"], district["student_a2"]}
    assert district["school_b"] not in schools_visible_to(analyst)


def test_a_user_without_scope_sees_nothing(district: dict) -> None:  # type: ignore[type-arg]
    assert not students_visible_to(UserFactory()).exists()
    assert not schools_visible_to(UserFactory()).exists()


def test_administrators_see_everything(district: dict) -> None:  # type: ignore[type-arg]
    admin = UserFactory(role=Role.ADMINISTRATOR)
    assert students_visible_to(admin).count() == 3


def test_anonymous_and_deactivated_users_see_nothing(district: dict) -> None:  # type: ignore[type-arg]
    assert not students_visible_to(AnonymousUser()).exists()
    deactivated = StaffScopeFactory(school=district["school_a"], user__is_active=False).user
    assert not students_visible_to(deactivated).exists()


def test_a_transferred_student_is_seen_by_both_schools(district: dict) -> None:  # type: ignore[type-arg]
    EnrollmentFactory(
        student=district["student_a"],
        school=district["school_b"],
        academic_year=2025,
    )
    counselor_b = StaffScopeFactory(school=district["school_b"]).user
    assert district["student_a"] in students_visible_to(counselor_b)


def test_the_scope_costs_a_fixed_number_of_queries(
    district: dict,  # type: ignore[type-arg]
    django_assert_num_queries,  # type: ignore[no-untyped-def]
) -> None:
    counselor = StaffScopeFactory(school=district["school_a"]).user
    StaffScopeFactory(user=counselor, region=district["district_a"])
    with django_assert_num_queries(2):  # the user's scopes, then the students
        list(students_visible_to(counselor))
