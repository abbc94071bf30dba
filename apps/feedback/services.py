import datetime as dt
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from apps.accounts.models import User
from apps.feedback.models import (
    AuditAction,
    AuditEvent,
    Intervention,
    InterventionStatus,
    InterventionType,
    OutcomeKind,
    OutcomeRecord,
    SupportTier,
    TrainingFeedback,
    Verdict,
)
from apps.students.models import Student

# What a counselor may change on a plan after creating it; the student and the
# creator are fixed.
INTERVENTION_EDITABLE_FIELDS = (
    "intervention_type",
    "support_tier",
    "goal",
    "owner",
    "start_date",
    "review_date",
    "status",
    "notes",
    "outcome",
)


@transaction.atomic
def intervention_create(
    *,
    student: Student,
    created_by: User,
    intervention_type: InterventionType | str,
    goal: str,
    start_date: dt.date,
    review_date: dt.date,
    owner: User | None = None,
    support_tier: SupportTier | int = SupportTier.TARGETED,
    status: InterventionStatus | str = InterventionStatus.PLANNED,
    notes: str = "",
    outcome: str = "",
) -> Intervention:
    intervention = Intervention(
        student=student,
        created_by=created_by,
        owner=owner or created_by,
        intervention_type=intervention_type,
        support_tier=support_tier,
        goal=goal,
        start_date=start_date,
        review_date=review_date,
        status=status,
        notes=notes,
        outcome=outcome,
    )
    intervention.full_clean()
    intervention.save()
    return intervention


@transaction.atomic
def intervention_update(*, intervention: Intervention, data: Mapping[str, Any]) -> Intervention:
    unknown = set(data) - set(INTERVENTION_EDITABLE_FIELDS)
    if unknown:
        raise ValueError(f"not editable: {sorted(unknown)}")
    changed = [name for name, value in data.items() if getattr(intervention, name) != value]
    if not changed:
        return intervention
    for name in changed:
        setattr(intervention, name, data[name])
    intervention.full_clean()
    intervention.save(update_fields=[*changed, "updated_at"])
    return intervention


@transaction.atomic
def outcome_record(
    *,
    student: Student,
    outcome: OutcomeKind | str,
    observed_on: dt.date,
    recorded_by: User,
    note: str = "",
    intervention: Intervention | None = None,
) -> OutcomeRecord:
    if intervention is not None and intervention.student_id != student.pk:
        raise ValidationError(_("The intervention belongs to another student."))
    record = OutcomeRecord(
        student=student,
        outcome=outcome,
        observed_on=observed_on,
        recorded_by=recorded_by,
        note=note,
        intervention=intervention,
    )
    record.full_clean()
    record.save()
    return record


def feedback_record(
    *,
    student: Student,
    given_by: User,
    verdict: Verdict | str,
    reason: str = "",
    prediction_id: int | None = None,
) -> TrainingFeedback:
    """Record a verdict; a second click by the same person on the same prediction replaces it."""
    if verdict not in Verdict.values:
        raise ValidationError(_("Unknown verdict."))
    if prediction_id is None:
        feedback = TrainingFeedback(
            student=student, given_by=given_by, verdict=verdict, reason=reason
        )
        feedback.save()
        return feedback
    # update_or_create races with a double click from two tabs; the partial
    # unique constraint decides, and the loser retries as an update.
    for _attempt in range(2):
        try:
            with transaction.atomic():
                feedback, _created = TrainingFeedback.objects.update_or_create(
                    prediction_id=prediction_id,
                    given_by=given_by,
                    defaults={"student": student, "verdict": verdict, "reason": reason},
                )
            return feedback
        except IntegrityError:
            continue
    raise RuntimeError("feedback_record lost the same race twice")


def audit_record(
    *,
    user: User,
    action: AuditAction | str,
    student: Student | None = None,
    detail: Mapping[str, Any] | None = None,
) -> AuditEvent:
    return AuditEvent.objects.create(
        user=user,
        username=user.get_username(),
        action=action,
        student=student,
        detail=dict(detail or {}),
    )
