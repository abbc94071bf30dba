import datetime as dt

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.accounts.models import User
from apps.dashboards.models import CaseloadVisit


@transaction.atomic
def caseload_visit_record(*, user: User, now: dt.datetime | None = None) -> dt.datetime | None:
    """Mark a visit to the caseload now; return when the previous visit was (None: first)."""
    now = now or timezone.now()
    visit = CaseloadVisit.objects.select_for_update().filter(user=user).first()
    if visit is None:
        CaseloadVisit.objects.create(user=user, last_seen_at=now)
        return None
    previous = visit.last_seen_at
    visit.last_seen_at = now
    visit.save(update_fields=["last_seen_at"])
    return previous


def preferred_language_set(*, user: User, language: str) -> None:
    if language not in dict(settings.LANGUAGES):
        raise ValueError(f"unknown language {language!r}")
    if user.preferred_language != language:
        user.preferred_language = language
        user.save(update_fields=["preferred_language"])
