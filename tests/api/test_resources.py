from typing import Any

import pytest
from rest_framework.test import APIClient

from tests.api.conftest import assert_error, client_for
from tests.factories import AttendanceFactory, GradeFactory

pytestmark = pytest.mark.django_db


def test_counselor_lists_only_their_schools_and_students(
    counselor: APIClient, district: dict[str, Any]
) -> None:
    schools = counselor.get("/api/v1/schools").json()
    assert [s["name"] for s in schools["results"]] == ["Alpha High"]
    students = counselor.get("/api/v1/students").json()
    assert schools["count"] == 1
    assert [s["student_id"] for s in students["results"]] == ["S-A-1"]
    enrollments = counselor.get("/api/v1/enrollments").json()
    assert [e["student_code"] for e in enrollments["results"]] == ["S-A-1"]


def test_another_schools_student_is_not_found_not_forbidden(
    counselor: APIClient, district: dict[str, Any]
) -> None:
    other = district["student_b"].pk
    assert_error(counselor.get(f"/api/v1/students/{other}"), 404, "not_found")
    for records in ("attendance", "grades", "discipline"):
        assert_error(counselor.get(f"/api/v1/students/{other}/{records}"), 404, "not_found")
    assert_error(counselor.get(f"/api/v1/schools/{district['school_b'].pk}"), 404, "not_found")
    # The same answer as for an id that does not exist at all.
    assert_error(counselor.get("/api/v1/students/999999"), 404, "not_found")


def test_administrator_sees_every_school(admin: APIClient, district: dict[str, Any]) -> None:
    assert admin.get("/api/v1/schools").json()["count"] == 2
    assert admin.get(f"/api/v1/students/{district['student_b'].pk}").status_code == 200


def test_filtering_and_ordering(admin: APIClient, district: dict[str, Any]) -> None:
    by_school = admin.get("/api/v1/students", {"school": district["school_b"].pk}).json()
    assert [s["student_id"] for s in by_school["results"]] == ["S-B-1"]
    ordered = admin.get("/api/v1/schools", {"ordering": "-name"}).json()
    assert [s["name"] for s in ordered["results"]] == ["Beta High", "Alpha High"]
    assert_error(admin.get("/api/v1/students", {"school": "abc"}), 400, "invalid")


def test_student_records(counselor: APIClient, district: dict[str, Any]) -> None:
    student, school = district["student_a"], district["school_a"]
    AttendanceFactory(student=student, school=school, status="absent")
    GradeFactory(student=student)
    pk = student.pk
    attendance = counselor.get(f"/api/v1/students/{pk}/attendance", {"status": "absent"}).json()
    assert attendance["count"] == 1 and attendance["results"][0]["status"] == "absent"
    grades = counselor.get(f"/api/v1/students/{pk}/grades").json()
    assert grades["results"][0]["subject_code"] == "MATH"
    assert counselor.get(f"/api/v1/students/{pk}/discipline").json()["count"] == 0


def test_unauthenticated_and_bad_token_errors(district: dict[str, Any]) -> None:
    assert_error(APIClient().get("/api/v1/students"), 401, "not_authenticated")
    bad = APIClient()
    bad.credentials(HTTP_AUTHORIZATION="Token nope")
    assert_error(bad.get("/api/v1/students"), 401, "authentication_failed")


def test_session_authentication_works(district: dict[str, Any]) -> None:
    client = client_for(district["counselor"], token=False)
    assert client.get("/api/v1/students").status_code == 200


def test_unknown_route_method_not_allowed(counselor: APIClient) -> None:
    assert_error(counselor.delete("/api/v1/schools"), 405, "method_not_allowed")


def test_throttling_answers_429_in_the_error_shape(
    monkeypatch: pytest.MonkeyPatch, district: dict[str, Any]
) -> None:
    from apps.common.throttling import RequestThrottle

    # The throttle reads DRF's rates dict; lower the per-token budget.
    monkeypatch.setitem(RequestThrottle.THROTTLE_RATES, "token", "2/min")
    client = client_for(district["counselor"])
    assert client.get("/api/v1/schools").status_code == 200
    assert client.get("/api/v1/schools").status_code == 200
    error = assert_error(client.get("/api/v1/schools"), 429, "throttled")
    assert error["details"]["wait_seconds"] >= 1
    # The same user in a browser session has its own (user) budget, not the token's.
    assert client_for(district["counselor"], token=False).get("/api/v1/schools").status_code == 200


def test_per_user_throttle(monkeypatch: pytest.MonkeyPatch, district: dict[str, Any]) -> None:
    from apps.common.throttling import RequestThrottle

    monkeypatch.setitem(RequestThrottle.THROTTLE_RATES, "user", "1/min")
    client = client_for(district["analyst"], token=False)
    assert client.get("/api/v1/schools").status_code == 200
    response = client.get("/api/v1/schools")
    assert_error(response, 429, "throttled")
    assert "Retry-After" in response


def test_ready_reports_each_check(district: dict[str, Any]) -> None:
    # No active model in this database: not ready, and the body says why.
    response = APIClient().get("/api/v1/ready")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["database"]["ok"] and checks["cache"]["ok"] and checks["broker"]["ok"]
    assert checks["model"] == {"ok": False, "error": "NoActiveModel: no active model version"}


def test_health(district: dict[str, Any]) -> None:
    assert APIClient().get("/api/v1/health").json() == {"status": "ok"}


def test_unknown_api_paths_answer_json_404(counselor: APIClient) -> None:
    assert_error(counselor.get("/api/v1/students/-1"), 404, "not_found")
    assert_error(counselor.post("/api/v1/nothing-here", {}), 404, "not_found")
