from django.urls import path
from rest_framework.routers import SimpleRouter

from apps.predictions.api import scoring_views, views

router = SimpleRouter(trailing_slash=False)
router.register("model-versions", views.ModelVersionViewSet, basename="model-version")
router.register("training-runs", views.TrainingRunViewSet, basename="training-run")
router.register("predictions", scoring_views.PredictionViewSet, basename="prediction")
router.register("scoring-runs", scoring_views.ScoringRunViewSet, basename="scoring-run")

urlpatterns = [
    *router.urls,
    path("predict", scoring_views.PredictView.as_view(), name="predict"),
    path("predict/batch", scoring_views.PredictBatchView.as_view(), name="predict-batch"),
    path("metrics", views.MetricsView.as_view(), name="metrics"),
    path("train/update", views.TrainUpdateView.as_view(), name="train-update"),
]
