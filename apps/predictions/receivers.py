"""Cached single predictions go stale when a student's records or features change."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def forget_cached_predictions(sender: Any, *, student_ids: Iterable[int], **kwargs: Any) -> None:
    from apps.predictions.services.scoring import prediction_cache_forget

    prediction_cache_forget(student_ids=[int(pk) for pk in student_ids])
