from typing import Any

from celery import shared_task

from apps.dashboards.services import overview_refresh_for_students


@shared_task(acks_late=True, soft_time_limit=1800, time_limit=1900)
def overview_refresh_task(
    *,
    student_ids: list[int],
    since: str | None = None,
    until: str | None = None,
    kinds: list[str] | None = None,
) -> dict[str, Any]:
    """Rewrite the overview summaries the changed records feed; idempotent, so a retry is harmless."""
    import datetime as dt

    refreshed = overview_refresh_for_students(
        student_ids=student_ids,
        since=dt.date.fromisoformat(since) if since else None,
        until=dt.date.fromisoformat(until) if until else None,
        kinds=kinds,
    )
    return {"school_years": refreshed}
