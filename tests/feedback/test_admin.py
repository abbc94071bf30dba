import datetime as dt

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import reverse

from apps.accounts.models import Role
from apps.accounts.services import user_create
from apps.feedback.models import AuditAction, InterventionType
from apps.feedback.services import audit_record, feedback_record, intervention_create
from tests.factories import StudentFactory
from tests.predictions.rows import prediction_row

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "model",
    [m for m in admin.site._registry if m._meta.app_label == "feedback"],
    ids=lambda m: m.__name__,
)
def test_every_feedback_admin_page_renders(client: Client, model: type) -> None:
    user = user_create(username="root", password="pw-long-enough", role=Role.ADMINISTRATOR)
    client.force_login(user)
    student = StudentFactory()
    plan = intervention_create(
        student=student,
        created_by=user,
        intervention_type=InterventionType.TUTORING,
        goal="Maths twice a week",
        start_date=dt.date(2026, 3, 1),
        review_date=dt.date(2026, 3, 15),
    )
    feedback_record(
        student=student, given_by=user, verdict="agree", prediction_id=prediction_row(student).pk
    )
    event = audit_record(user=user, action=AuditAction.VIEWED_STUDENT, student=student)
    info = (model._meta.app_label, model._meta.model_name)
    assert client.get(reverse("admin:{}_{}_changelist".format(*info))).status_code == 200
    objects = {"intervention": plan, "auditevent": event}
    if model._meta.model_name in objects:
        url = reverse("admin:{}_{}_change".format(*info), args=[objects[model._meta.model_name].pk])
        assert client.get(url).status_code == 200


def test_the_audit_trail_cannot_be_edited_in_the_admin(client: Client) -> None:
    user = user_create(username="root", password="pw-long-enough", role=Role.ADMINISTRATOR)
    client.force_login(user)
    assert client.get(reverse("admin:feedback_auditevent_add")).status_code == 403
