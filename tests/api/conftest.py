"""A small district: two schools, one student each, and a user of every role."""

from collections.abc import Iterator
from typing import Any

import pytest
from django.core.cache import cache
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from apps.accounts.models import Role
from apps.accounts.services import user_create
from apps.students.models import StaffScope
from tests.factories import EnrollmentFactory, SchoolFactory, StudentFactory


@pytest.fixture(autouse=True)
def _fresh_throttles() -> Iterator[None]:
    # Throttle counters live in the cache; each test starts with a full budget.
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def district(db: Any) -> dict[str, Any]:
    school_a = SchoolFactory(name="Alpha High")
    school_b = SchoolFactory(name="Beta High")
    student_a = StudentFactory(student_id="S-A-1")
    student_b = StudentFactory(student_id="S-B-1")
    EnrollmentFactory(student=student_a, school=school_a)
    EnrollmentFactory(student=student_b, school=school_b)
    users = {}
    for role in Role:
        users[role.value] = user_create(username=f"u-{role.value}", password="pw", role=role)
    # Everyone but the administrator works at school A.
    for role in (Role.COUNSELOR, Role.DATA_MANAGER, Role.ANALYST):
        StaffScope.objects.create(user=users[role.value], school=school_a)
    return {
        "school_a": school_a,
        "school_b": school_b,
        "student_a": student_a,
        "student_b": student_b,
        **users,
    }


def client_for(user: Any, *, token: bool = True) -> APIClient:
    client = APIClient()
    if token:
        key, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {key.key}")
    else:
        client.force_login(user)
    return client


@pytest.fixture
def counselor(district: dict[str, Any]) -> APIClient:
    return client_for(district["counselor"])


@pytest.fixture
def admin(district: dict[str, Any]) -> APIClient:
    return client_for(district["administrator"])


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert isinstance(body["error"]["details"], dict)
    return body["error"]
