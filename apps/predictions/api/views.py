"""Model registry, training runs, metrics with input drift, and the continuous-learning update."""

from __future__ import annotations

from typing import Any

import numpy as np
from django.core.cache import cache
from django.db.models import QuerySet
from django.urls import reverse
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.common.api import CanViewModel, errors, requires_perms
from apps.common.exceptions import ApiError
from apps.predictions.api.drift import feature_drift
from apps.predictions.api.serializers import (
    MetricsSerializer,
    ModelVersionSerializer,
    TaskAcceptedSerializer,
    TrainingRunSerializer,
    TrainUpdateRequestSerializer,
)
from apps.predictions.models import ModelVersion, TrainingRun
from apps.predictions.selectors import (
    model_version_active,
    model_versions_list,
    training_runs_list,
)

DRIFT_CACHE_SECONDS = 600


@extend_schema_view(
    list=extend_schema(responses={200: ModelVersionSerializer(many=True), **errors(400)}),
    retrieve=extend_schema(responses={200: ModelVersionSerializer, **errors(404)}),
)
class ModelVersionViewSet(viewsets.ReadOnlyModelViewSet):
    """The model registry (global, not per school: every scope is scored by the same model)."""

    serializer_class = ModelVersionSerializer
    permission_classes = [CanViewModel]
    filterset_fields = ["status", "feature_version"]
    ordering_fields = ["training_finished_at", "name"]

    def get_queryset(self) -> QuerySet[ModelVersion]:
        return model_versions_list()


@extend_schema_view(
    list=extend_schema(responses={200: TrainingRunSerializer(many=True), **errors(400)}),
    retrieve=extend_schema(responses={200: TrainingRunSerializer, **errors(404)}),
)
class TrainingRunViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = TrainingRunSerializer
    permission_classes = [CanViewModel]
    filterset_fields = ["status", "promote"]
    ordering_fields = ["created_at", "finished_at"]

    def get_queryset(self) -> QuerySet[TrainingRun]:
        return training_runs_list()


class MetricsView(APIView):
    """The active model's held-out performance, its baselines, and input drift."""

    permission_classes = [requires_perms("predictions.view_modelversion")]

    @extend_schema(
        responses={200: MetricsSerializer, **errors()},
        examples=[
            OpenApiExample(
                "metrics",
                value={
                    "model_version": None,
                    "performance": {"pr_auc": 0.41, "roc_auc": 0.83},
                    "baselines": {"indicator_rule": {"pr_auc": 0.22}},
                    "drift": {
                        "week_start": "2026-11-15",
                        "students": 1200,
                        "features": [
                            {
                                "feature": "attendance_rate",
                                "observed": 1180,
                                "training_mean": 0.86,
                                "training_std": 0.12,
                                "current_mean": 0.82,
                                "mean_shift": -0.33,
                                "psi": 0.07,
                                "level": "stable",
                            }
                        ],
                    },
                },
            )
        ],
    )
    def get(self, request: Request) -> Response:
        version = model_version_active()
        if version is None:
            return Response(
                {"model_version": None, "performance": {}, "baselines": {}, "drift": None}
            )
        return Response(
            {
                "model_version": ModelVersionSerializer(version).data,
                "performance": version.metrics,
                "baselines": version.baseline_metrics,
                "drift": _drift(version),
            }
        )


def _latest_week(version: ModelVersion) -> tuple[Any, Any, Any] | None:
    from apps.features.models import FeatureSet, WeeklyFeature

    feature_set = FeatureSet.objects.filter(version=version.feature_version).first()
    if feature_set is None:
        return None
    latest = (
        WeeklyFeature.objects.filter(feature_set=feature_set)
        .order_by("-week_start")
        .values("week_start", "academic_year")
        .first()
    )
    if latest is None:
        return None
    return feature_set, latest["week_start"], latest["academic_year"]


def _drift(version: ModelVersion) -> dict[str, Any] | None:
    found = _latest_week(version)
    if found is None:
        return {"week_start": None, "students": 0, "features": [], "note": _("No features yet.")}
    feature_set, week_start, academic_year = found
    key = f"edupulse:api:drift:{version.pk}:{week_start}"
    cached = cache.get(key)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    from apps.features import store
    from ml.checkpoint import CheckpointError, read_metadata

    try:
        meta = read_metadata(version.path)
    except (CheckpointError, OSError):
        return {
            "week_start": week_start,
            "students": 0,
            "features": [],
            "note": _("The model file cannot be read."),
        }
    normalizer = meta["normalizer"]
    columns = list(meta["feature_columns"])
    rows = store.rows_read(
        feature_set_id=feature_set.pk,
        academic_year=academic_year,
        n_columns=len(feature_set.columns),
        week_from=week_start,
        week_to=week_start,
    )
    # The store's columns by name: the checkpoint's order is the model's input order.
    index = {name: i for i, name in enumerate(feature_set.columns)}
    picked = [c for c in columns if c in index]
    values = np.asarray(rows.values, dtype=np.float64)[:, [index[c] for c in picked]]
    mean = np.asarray(normalizer["seq_mean"], dtype=np.float64)[[columns.index(c) for c in picked]]
    std = np.asarray(normalizer["seq_std"], dtype=np.float64)[[columns.index(c) for c in picked]]
    result = {
        "week_start": week_start,
        "students": int(len(rows.student_id)),
        "features": feature_drift(columns=picked, values=values, mean=mean, std=std),
    }
    cache.set(key, result, DRIFT_CACHE_SECONDS)
    return result


class TrainUpdateView(APIView):
    """Start a continuous-learning update of the active model (administrators only).

    Fine-tunes the active model on the labels observed since it was trained, with the
    students counselors gave feedback on weighted in, under an EWC penalty so it does
    not forget what it learnt; returns the task to poll.
    """

    permission_classes = [requires_perms("predictions.add_trainingrun")]
    throttle_scope = "train"

    @extend_schema(
        request=TrainUpdateRequestSerializer,
        # 422: with Celery eager (the embedded default) the update runs in the request.
        responses={202: TaskAcceptedSerializer, **errors(400, 409, 422)},
        examples=[
            OpenApiExample("update", value={"epochs": 3, "ewc_lambda": 100.0}, request_only=True)
        ],
    )
    def post(self, request: Request) -> Response:
        from apps.predictions.services.update import model_update_request

        form = TrainUpdateRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        active = model_version_active()
        if active is None:
            raise ApiError(
                _("There is no active model to update; train and promote one first."),
                code="no_active_model",
                status_code=status.HTTP_409_CONFLICT,
            )
        run = model_update_request(
            requested_by=request.user,  # type: ignore[arg-type]
            base=active,
            since=form.validated_data.get("since"),
            epochs=form.validated_data["epochs"],
            ewc_lambda=form.validated_data["ewc_lambda"],
            promote=form.validated_data["promote"],
        )
        task_id = run.options["task_id"]
        return Response(
            {
                "task": task_id,
                "status_url": reverse("api:task-detail", args=[task_id]),
                "training_run": run.pk,
            },
            status=status.HTTP_202_ACCEPTED,
        )
