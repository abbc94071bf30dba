import datetime as dt

import factory
from django.utils import timezone

from apps.predictions.models import ModelStatus, ModelVersion


class ModelVersionFactory(factory.django.DjangoModelFactory):
    """A registry row without a file: enough for the promotion rules on stored metrics."""

    class Meta:
        model = ModelVersion

    name = factory.Sequence(lambda n: f"weekly-v1-test-{n}")
    status = ModelStatus.CANDIDATE
    file_path = factory.LazyAttribute(lambda o: f"weekly-v1/{o.name}.pt")
    feature_version = "weekly-v1"
    data_from = dt.date(2025, 1, 5)
    data_to = dt.date(2025, 12, 20)
    metrics = factory.LazyFunction(lambda: {"roc_auc": 0.8, "pr_auc": 0.5})
    training_started_at = factory.LazyFunction(timezone.now)
    training_finished_at = factory.LazyFunction(timezone.now)
