"""Alerts: a counselor hears once when a student in their scope turns high-risk or jumps."""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q
from django.utils import translation
from django.utils.translation import gettext as _

from apps.accounts.models import Role
from apps.dashboards.risk import RiskTier
from apps.predictions.models import AlertKind, ModelVersion, Notification, Prediction
from apps.students.models import School, StaffScope

logger = logging.getLogger(__name__)


def alert_kind(*, probability: float, tier: str, previous: tuple[float, str] | None) -> str | None:
    """Why this score deserves an alert, or None.

    Entering the high tier counts only when there was an earlier score outside it
    (a first score of high also alerts: the counselor has not seen it yet).
    """
    if tier == RiskTier.HIGH and (previous is None or previous[1] != RiskTier.HIGH):
        return AlertKind.ENTERED_HIGH
    margin = settings.EDUPULSE_ALERT_RISE / 100
    if previous is not None and probability - previous[0] >= margin:
        return AlertKind.ROSE
    return None


def _counselors_by_school(school_ids: set[int]) -> dict[int, set[int]]:
    """User pks whose StaffScope covers each school (the school, or a region above it)."""
    paths = dict(School.objects.filter(pk__in=school_ids).values_list("pk", "region__path"))
    scopes = StaffScope.objects.filter(
        Q(school_id__in=school_ids) | Q(region__isnull=False),
        user__is_active=True,
        user__role=Role.COUNSELOR,
    ).values_list("user_id", "school_id", "region__path")
    result: dict[int, set[int]] = {pk: set() for pk in school_ids}
    for user_id, school_id, region_path in scopes:
        if school_id is not None:
            result.setdefault(school_id, set()).add(user_id)
            continue
        for pk, path in paths.items():
            if path and region_path and path.startswith(region_path):
                result[pk].add(user_id)
    return result


def alerts_raise(
    *,
    model_version: ModelVersion,
    week_start: dt.date,
    scored: dict[int, tuple[float, str]],
    previous: dict[int, tuple[float, str]],
) -> int:
    """Notifications for the students whose new score deserves one; returns how many."""
    kinds = {
        pk: kind
        for pk, (p, tier) in scored.items()
        if (kind := alert_kind(probability=p, tier=tier, previous=previous.get(pk)))
    }
    if not kinds:
        return 0
    predictions = dict(
        Prediction.objects.filter(
            student_id__in=list(kinds), week_start=week_start, model_version=model_version
        ).values_list("student_id", "pk")
    )
    schools = dict(
        Prediction.objects.filter(pk__in=predictions.values()).values_list(
            "student_id", "school_id"
        )
    )
    counselors = _counselors_by_school({s for s in schools.values() if s is not None})
    rows = [
        Notification(
            recipient_id=user_id,
            student_id=pk,
            prediction_id=predictions[pk],
            kind=kind,
            week_start=week_start,
        )
        for pk, kind in kinds.items()
        if pk in predictions
        for user_id in sorted(counselors.get(schools.get(pk) or 0, set()))
    ]
    if not rows:
        return 0
    before = Notification.objects.filter(week_start=week_start, student_id__in=list(kinds)).count()
    # The unique constraint makes a repeated change a no-op, even between concurrent runs.
    Notification.objects.bulk_create(rows, ignore_conflicts=True)
    created = (
        Notification.objects.filter(week_start=week_start, student_id__in=list(kinds)).count()
        - before
    )
    if created and email_configured():
        transaction.on_commit(lambda: notifications_email(week_start=week_start))
    return created


def email_configured() -> bool:
    """An SMTP host is set, or a non-SMTP backend (console, locmem in tests) is chosen."""
    smtp = settings.EMAIL_BACKEND == "django.core.mail.backends.smtp.EmailBackend"
    return bool(settings.EMAIL_HOST) if smtp else True


def notifications_email(*, week_start: dt.date) -> int:
    """Email each recipient one message for their unsent alerts of the week."""
    pending = Notification.objects.filter(week_start=week_start, emailed=False).select_related(
        "recipient", "student"
    )
    by_user: dict[int, list[Notification]] = {}
    for notification in pending:
        if notification.recipient.email:
            by_user.setdefault(notification.recipient_id, []).append(notification)
    sent = 0
    for items in by_user.values():
        user = items[0].recipient
        language = getattr(user, "preferred_language", "") or settings.LANGUAGE_CODE
        with translation.override(language):
            lines = [
                _("%(student)s: %(reason)s")
                % {"student": n.student, "reason": n.get_kind_display()}
                for n in items
            ]
            subject = _("EduPulse: %(count)s students need attention") % {"count": len(items)}
            body = "\n".join(lines)
        try:
            send_mail(subject, body, None, [user.email])
        except OSError:
            logger.exception("could not email alerts to user %s", user.pk)
            continue
        Notification.objects.filter(pk__in=[n.pk for n in items]).update(emailed=True)
        sent += 1
    return sent


__all__ = ["alert_kind", "alerts_raise", "email_configured", "notifications_email"]
