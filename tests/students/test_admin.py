import datetime as dt

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import reverse

from apps.accounts.models import Role, User
from apps.accounts.services import user_create
from apps.students.models import AttendanceRecord, Student
from tests.factories import AttendanceFactory, EnrollmentFactory, GradeFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_for_data_manager(client: Client) -> Client:
    user = user_create(username="dm", password="pw-long-enough", role=Role.ADMINISTRATOR)
    client.force_login(user)
    return client


def _admin_urls(model: type) -> list[str]:
    info = (model._meta.app_label, model._meta.model_name)
    return [
        reverse("admin:{}_{}_changelist".format(*info)),
        reverse("admin:{}_{}_add".format(*info)),
    ]


@pytest.mark.parametrize(
    "model",
    [m for m in admin.site._registry if m._meta.app_label in {"students", "accounts"}],
    ids=lambda m: m.__name__,
)
def test_every_admin_page_renders(admin_client_for_data_manager: Client, model: type) -> None:
    enrollment = EnrollmentFactory()
    AttendanceFactory(student=enrollment.student, school=enrollment.school)
    GradeFactory(student=enrollment.student)
    for url in _admin_urls(model):
        response = admin_client_for_data_manager.get(url)
        assert response.status_code == 200, url


def test_the_attendance_list_costs_the_same_queries_for_many_rows(
    admin_client_for_data_manager: Client,
    django_assert_max_num_queries,  # type: ignore[no-untyped-def]
) -> None:
    url = reverse("admin:students_attendancerecord_changelist")
    enrollment = EnrollmentFactory()
    for day in range(1, 4):
        AttendanceFactory(
            student=enrollment.student, school=enrollment.school, date=dt.date(2026, 3, day)
        )
    admin_client_for_data_manager.get(url)
    for day in range(4, 30):
        AttendanceFactory(
            student=enrollment.student, school=enrollment.school, date=dt.date(2026, 3, day)
        )
    with django_assert_max_num_queries(12):
        response = admin_client_for_data_manager.get(url)
    assert response.status_code == 200
    assert AttendanceRecord.objects.count() == 29


def test_a_data_manager_finds_a_student_by_identifier(
    admin_client_for_data_manager: Client,
) -> None:
    EnrollmentFactory(student__student_id="KUR-000042")
    EnrollmentFactory(student__student_id="KUR-000043")
    response = admin_client_for_data_manager.get(
        reverse("admin:students_student_changelist"), {"q": "KUR-000042"}
    )
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [
        Student.objects.get(student_id="KUR-000042")
    ]


def test_a_counselor_cannot_open_the_admin(client: Client) -> None:
    user = user_create(username="c", password="pw-long-enough", role=Role.COUNSELOR)
    client.force_login(user)
    response = client.get(reverse("admin:students_student_changelist"))
    assert response.status_code == 302
    assert User.objects.get(pk=user.pk).is_staff is False


def test_the_admin_switches_to_bengali_and_remembers_it(
    admin_client_for_data_manager: Client,
) -> None:
    response = admin_client_for_data_manager.post(
        reverse("set_language"), {"language": "bn", "next": reverse("admin:index")}
    )
    assert response.status_code == 302
    page = admin_client_for_data_manager.get(reverse("admin:index"))
    assert page.status_code == 200
    # The switcher lists "বাংলা" in every language, so check a translated string.
    assert 'lang="bn"' in page.content.decode()
    assert "EduPulse প্রশাসন" in page.content.decode()
    assert "EduPulse administration" not in page.content.decode()
