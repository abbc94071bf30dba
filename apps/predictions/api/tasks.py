"""The API's background work: a large predict/batch request scored on the ml queue."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict
from typing import Any

from celery import shared_task


# Named under apps.predictions.tasks so CELERY_TASK_ROUTES sends it to the `ml` queue;
# CELERY_IMPORTS makes the worker load this module.
@shared_task(acks_late=True, name="apps.predictions.tasks.predict_batch")
def predict_batch(student_ids: list[int], as_of: str | None = None) -> dict[str, Any]:
    from apps.predictions.services.scoring import predictions_score

    counts = predictions_score(
        student_ids=student_ids, as_of=dt.date.fromisoformat(as_of) if as_of else None
    )
    return {"requested": len(student_ids), **asdict(counts)}
