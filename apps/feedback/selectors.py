"""Reads of interventions, outcomes and feedback, with the user's scope applied."""

import datetime as dt

from django.db.models import Count, Exists, IntegerField, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce

from apps.accounts.models import User
from apps.feedback.models import (
    OPEN_STATUSES,
    AuditEvent,
    Intervention,
    OutcomeRecord,
    TrainingFeedback,
)
from apps.students.models import Student
from apps.students.selectors import students_visible_to


def interventions_visible_to(user: User) -> QuerySet[Intervention]:
    return Intervention.objects.select_related("owner", "student").filter(
        student__in=students_visible_to(user).values("pk")
    )


def interventions_of_student(student: Student) -> QuerySet[Intervention]:
    return Intervention.objects.select_related("owner").filter(student=student)


def outcomes_of_student(student: Student) -> QuerySet[OutcomeRecord]:
    return OutcomeRecord.objects.select_related("recorded_by").filter(student=student)


def feedback_of_student(student: Student) -> QuerySet[TrainingFeedback]:
    return TrainingFeedback.objects.select_related("given_by").filter(student=student)


def audit_events_of_student(student: Student) -> QuerySet[AuditEvent]:
    return AuditEvent.objects.filter(student=student)


def _count_interventions(condition: Q) -> Coalesce:
    counted = (
        Intervention.objects.filter(condition, student=OuterRef("student_id"))
        .order_by()
        .values("student")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


def intervention_counts_annotations(today: dt.date) -> dict[str, object]:
    """Annotations for a queryset with a `student_id` column (enrollments, the caseload).

    Correlated subqueries rather than joins, so that sorting and filtering on
    them works and the row count of the outer query is unchanged.
    """
    open_q = Q(status__in=OPEN_STATUSES)
    return {
        "open_interventions": _count_interventions(open_q),
        "overdue_reviews": _count_interventions(open_q & Q(review_date__lt=today)),
        "has_intervention": Exists(Intervention.objects.filter(student=OuterRef("student_id"))),
    }
