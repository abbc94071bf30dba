import datetime as dt
from typing import Any

from celery import shared_task

from apps.features.services import features_refresh
from apps.features.signals import features_updated


@shared_task(acks_late=True, soft_time_limit=1800, time_limit=1900)
def features_refresh_task(
    *, student_ids: list[int], since: str | None = None, until: str | None = None, source: str = ""
) -> dict[str, Any]:
    """Recompute the students' weeks from `since`; idempotent, so a retry is harmless."""
    summary = features_refresh(
        student_ids=student_ids,
        since=dt.date.fromisoformat(since) if since else None,
        until=dt.date.fromisoformat(until) if until else None,
    )
    features_updated.send(
        sender=None, student_ids=list(student_ids), since=since, until=until, source=source
    )
    return {"students": summary.students, "rows": summary.rows, "source": source}
