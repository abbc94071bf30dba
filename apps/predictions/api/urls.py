from django.urls import path
from rest_framework.routers import SimpleRouter

from apps.predictions.api import views

router = SimpleRouter(trailing_slash=False)
router.register("model-versions", views.ModelVersionViewSet, basename="model-version")
router.register("training-runs", views.TrainingRunViewSet, basename="training-run")

urlpatterns = [
    *router.urls,
    path("metrics", views.MetricsView.as_view(), name="metrics"),
    path("train/update", views.TrainUpdateView.as_view(), name="train-update"),
]
