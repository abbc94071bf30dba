"""Every operation of the OpenAPI schema, against a live server, with an administrator's token.

Generated requests (valid and invalid) must never get a 5xx, and every response
must match the schema: a documented status, content type and body. Examples are
bounded so the whole run stays well under two minutes.
"""

from typing import Any

import pytest
import schemathesis
from django.core.cache import cache
from django.test import override_settings
from hypothesis import HealthCheck, given, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from apps.accounts.models import Role
from apps.accounts.services import user_create
from tests.factories import AttendanceFactory, EnrollmentFactory, GradeFactory
from tests.predictions.scoring_support import district_make

pytestmark = [pytest.mark.schemathesis, pytest.mark.postgres]


@pytest.fixture
def api_schema(live_server: Any, transactional_db: Any, tmp_path: Any) -> Any:
    from drf_spectacular.generators import SchemaGenerator

    cache.clear()
    # An active model and a scored district, so predict, metrics and ready do real work.
    with override_settings(EDUPULSE_MODEL_DIR=tmp_path):
        district = district_make(tmp_path, per_school=3)
        yield _schema(live_server, SchemaGenerator, district)


def _schema(live_server: Any, generator: Any, district: Any) -> Any:
    enrollment = EnrollmentFactory()
    AttendanceFactory(student=enrollment.student, school=enrollment.school)
    GradeFactory(student=enrollment.student)
    document = generator().get_schema(request=None, public=True)
    # Real identifiers among the generated ones.
    document["paths"]["/api/v1/predict"]["post"]["requestBody"]["content"]["application/json"][
        "examples"
    ] = {"known": {"value": {"student_id": district.students[0].student_id}}}
    schema = schemathesis.openapi.from_dict(document)
    schema.config.update(base_url=live_server.url)  # type: ignore[attr-defined]
    # The upload takes a file and writes a job: the ingestion tests cover it.
    return schema.exclude(path="/api/v1/data/upload")


@pytest.fixture
def token_header(transactional_db: Any) -> dict[str, str]:
    user = user_create(username="contract-admin", password=None, role=Role.ADMINISTRATOR)
    token, _ = Token.objects.get_or_create(user=user)
    return {"Authorization": f"Token {token.key}"}


def test_api_conforms_to_its_schema(api_schema: Any, token_header: dict[str, str]) -> None:
    # One hypothesis run per operation (schemathesis' pytest plugin does not support
    # this pytest yet); every operation's failure is collected, then all are shown.
    failures: dict[str, str] = {}
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 25

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=8,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def check(case: Any) -> None:
            case.call_and_validate(
                headers=token_header,
                checks=[
                    not_a_server_error,
                    status_code_conformance,
                    content_type_conformance,
                    response_schema_conformance,
                ],
            )

        try:
            check()
        except (Exception, BaseExceptionGroup) as error:  # noqa: BLE001 - reported below
            failures[operation.label] = str(error)[:2000]
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())
