"""Prediction rows for tests that need a real one (a verdict's ForeignKey points at it)."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from apps.predictions.models import ModelStatus, ModelVersion, Prediction
from apps.students.models import Student

WEEK = dt.date(2026, 3, 1)


def model_version_row() -> ModelVersion:
    now = timezone.now()
    version, _ = ModelVersion.objects.get_or_create(
        name="tests-fixture-model",
        defaults={
            "status": ModelStatus.CANDIDATE,
            "file_path": "tests-fixture-model.pt",
            "feature_version": "tests",
            "data_from": dt.date(2020, 1, 1),
            "data_to": dt.date(2020, 12, 31),
            "training_started_at": now,
            "training_finished_at": now,
        },
    )
    return version


def prediction_row(
    student: Student,
    *,
    probability: float = 0.5,
    tier: str = "medium",
    week_start: dt.date = WEEK,
    model_version: ModelVersion | None = None,
) -> Prediction:
    prediction, _ = Prediction.objects.update_or_create(
        student=student,
        week_start=week_start,
        model_version=model_version or model_version_row(),
        defaults={"probability": probability, "tier": tier, "academic_year": week_start.year},
    )
    return prediction
