"""Cached single predictions go stale when a student's records or features change."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def forget_cached_predictions(sender: Any, *, student_ids: Iterable[int], **kwargs: Any) -> None:
    from apps.predictions.services.scoring import prediction_cache_forget

    prediction_cache_forget(student_ids=[int(pk) for pk in student_ids])


def score_after_feature_update(
    sender: Any, *, student_ids: Iterable[int], source: str = "", **kwargs: Any
) -> None:
    """Re-score the students whose features were just refreshed (when a model is active)."""
    from django.db import transaction

    from apps.predictions.models import ModelStatus, ModelVersion
    from apps.predictions.tasks import score_students_updated

    ids = sorted({int(pk) for pk in student_ids})
    forget_cached_predictions(sender, student_ids=ids)
    if not ids or not ModelVersion.objects.filter(status=ModelStatus.ACTIVE).exists():
        return
    transaction.on_commit(lambda: score_students_updated.delay(student_ids=ids, source=source))
