import datetime as dt
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError

from apps.accounts.models import Role, User
from apps.accounts.services import user_create
from apps.feedback.models import (
    AuditAction,
    AuditEvent,
    Intervention,
    InterventionStatus,
    InterventionType,
    OutcomeKind,
    TrainingFeedback,
    Verdict,
)
from apps.feedback.selectors import interventions_visible_to
from apps.feedback.services import (
    audit_record,
    feedback_record,
    intervention_create,
    intervention_update,
    outcome_record,
)
from apps.students.models import Student
from apps.students.services import staff_scope_grant
from tests.factories import EnrollmentFactory, StudentFactory
from tests.predictions.rows import prediction_row

pytestmark = pytest.mark.django_db

START = dt.date(2026, 3, 1)


@pytest.fixture
def counselor() -> User:
    return user_create(username="c", password="pw-long-enough", role=Role.COUNSELOR)


def _plan(student: Student, user: User, **overrides: Any) -> Intervention:
    values = {
        "student": student,
        "created_by": user,
        "intervention_type": InterventionType.HOME_VISIT,
        "goal": "Back to school every day",
        "start_date": START,
        "review_date": START + dt.timedelta(days=14),
    }
    return intervention_create(**(values | overrides))


def test_a_new_plan_is_owned_by_its_author_and_planned(counselor: User) -> None:
    plan = _plan(StudentFactory(), counselor)
    assert plan.owner == counselor
    assert plan.status == InterventionStatus.PLANNED
    assert plan.is_open


def test_it_rejects_a_review_before_the_start(counselor: User) -> None:
    with pytest.raises(ValidationError):
        _plan(StudentFactory(), counselor, review_date=START - dt.timedelta(days=1))


def test_it_rejects_an_unknown_type(counselor: User) -> None:
    with pytest.raises(ValidationError):
        _plan(StudentFactory(), counselor, intervention_type="magic")


def test_update_changes_only_the_given_fields(counselor: User) -> None:
    plan = _plan(StudentFactory(), counselor)
    intervention_update(
        intervention=plan,
        data={"status": InterventionStatus.COMPLETED, "outcome": "Attends again"},
    )
    plan.refresh_from_db()
    assert (plan.status, plan.outcome, plan.goal) == (
        InterventionStatus.COMPLETED,
        "Attends again",
        "Back to school every day",
    )
    assert not plan.is_open


def test_update_refuses_to_move_a_plan_to_another_student(counselor: User) -> None:
    plan = _plan(StudentFactory(), counselor)
    with pytest.raises(ValueError, match="student"):
        intervention_update(intervention=plan, data={"student": StudentFactory()})


def test_update_validates_dates(counselor: User) -> None:
    plan = _plan(StudentFactory(), counselor)
    with pytest.raises(ValidationError):
        intervention_update(intervention=plan, data={"review_date": START - dt.timedelta(days=5)})


def test_a_second_click_on_the_same_prediction_replaces_the_verdict(counselor: User) -> None:
    student = StudentFactory()
    pk = prediction_row(student).pk
    feedback_record(student=student, given_by=counselor, verdict=Verdict.AGREE, prediction_id=pk)
    feedback_record(
        student=student,
        given_by=counselor,
        verdict=Verdict.NOT_USEFUL,
        reason="Family moved",
        prediction_id=pk,
    )
    only = TrainingFeedback.objects.get()
    assert (only.verdict, only.reason, only.prediction_id) == (
        Verdict.NOT_USEFUL,
        "Family moved",
        pk,
    )


def test_the_database_refuses_two_verdicts_per_person_and_prediction(counselor: User) -> None:
    student = StudentFactory()
    pk = prediction_row(student).pk
    TrainingFeedback.objects.create(
        student=student, given_by=counselor, verdict=Verdict.AGREE, prediction_id=pk
    )
    with pytest.raises(IntegrityError):
        TrainingFeedback.objects.create(
            student=student, given_by=counselor, verdict=Verdict.AGREE, prediction_id=pk
        )


def test_it_rejects_an_unknown_verdict(counselor: User) -> None:
    with pytest.raises(ValidationError):
        feedback_record(student=StudentFactory(), given_by=counselor, verdict="maybe")


def test_an_outcome_must_belong_to_the_plans_student(counselor: User) -> None:
    plan = _plan(StudentFactory(), counselor)
    with pytest.raises(ValidationError):
        outcome_record(
            student=StudentFactory(),
            outcome=OutcomeKind.RETURNED,
            observed_on=START,
            recorded_by=counselor,
            intervention=plan,
        )
    record = outcome_record(
        student=plan.student,
        outcome=OutcomeKind.RETURNED,
        observed_on=START,
        recorded_by=counselor,
        intervention=plan,
    )
    assert record.intervention == plan


def test_the_audit_trail_keeps_who_after_the_account_is_gone(counselor: User) -> None:
    student = StudentFactory()
    audit_record(user=counselor, action=AuditAction.VIEWED_STUDENT, student=student)
    counselor.delete()
    event = AuditEvent.objects.get()
    assert (event.user, event.username, event.student) == (None, "c", student)


def test_interventions_are_visible_only_in_scope(counselor: User) -> None:
    mine, theirs = EnrollmentFactory(), EnrollmentFactory()
    staff_scope_grant(user=counselor, school=mine.school)
    _plan(mine.student, counselor)
    _plan(theirs.student, counselor)
    assert [p.student for p in interventions_visible_to(counselor)] == [mine.student]
