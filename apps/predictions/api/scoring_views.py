"""Predictions (history kept), scoring runs, and on-demand scoring: predict and predict/batch.

Students are always looked up through students_visible_to: one outside the
caller's scope is "not found", exactly like one that does not exist.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid

import django_filters
from django.conf import settings
from django.db.models import QuerySet, Subquery
from django.http import HttpResponse
from django.http.response import HttpResponseBase
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.exceptions import NotFound
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.common.api import errors, requires_perms
from apps.common.exceptions import ApiError
from apps.features.calendar import week_start_of
from apps.predictions.api.serializers import (
    PredictBatchRequestSerializer,
    PredictBatchResultSerializer,
    PredictionSerializer,
    PredictRequestSerializer,
    ScoringRunSerializer,
    TaskAcceptedSerializer,
)
from apps.predictions.models import ModelStatus, ModelVersion, Prediction, ScoringRun
from apps.predictions.selectors import model_version_active
from apps.students.selectors import students_visible_to

# Whoever may see students may see their risk; the scope does the rest.
CanSeeStudents = requires_perms("students.view_student")
CanSeeModels = requires_perms("predictions.view_modelversion")

PREDICTION_EXAMPLE = {
    "id": 1,
    "student": 12,
    "student_code": "S-000012",
    "school": 3,
    "academic_year": 2026,
    "week_start": "2026-11-15",
    "model_version": 2,
    "model_version_name": "fv1-20261101-0200-ab12",
    "probability": 0.71,
    "tier": "high",
    "factors": [
        {"feature": "attendance_rate", "direction": "raises", "before": 0.92, "after": 0.61}
    ],
    "sentences": {
        "en": ["Attendance fell from 92% to 61% over the last 4 weeks."],
        "bn": ["গত ৪ সপ্তাহে উপস্থিতি ৯২% থেকে কমে ৬১% হয়েছে।"],
    },
    "change_since_previous": 0.18,
    "created_at": "2026-11-16T02:00:00Z",
}


class PredictionFilter(django_filters.FilterSet):
    week_from = django_filters.DateFilter(field_name="week_start", lookup_expr="gte")
    week_to = django_filters.DateFilter(field_name="week_start", lookup_expr="lte")
    min_probability = django_filters.NumberFilter(field_name="probability", lookup_expr="gte")
    student_id = django_filters.CharFilter(field_name="student__student_id")

    class Meta:
        model = Prediction
        fields = [
            "student",
            "student_id",
            "school",
            "tier",
            "academic_year",
            "model_version",
            "week_start",
            "week_from",
            "week_to",
            "min_probability",
        ]


@extend_schema_view(
    list=extend_schema(responses={200: PredictionSerializer(many=True), **errors(400)}),
    retrieve=extend_schema(responses={200: PredictionSerializer, **errors(404)}),
)
class PredictionViewSet(viewsets.ReadOnlyModelViewSet):
    """Every stored prediction of the students in scope: how a student's risk moved."""

    serializer_class = PredictionSerializer
    permission_classes = [CanSeeStudents]
    filterset_class = PredictionFilter
    ordering_fields = ["week_start", "probability", "created_at"]
    ordering = ["-week_start", "student_id"]

    def get_queryset(self) -> QuerySet[Prediction]:
        visible = students_visible_to(self.request.user)  # type: ignore[arg-type]
        return Prediction.objects.filter(student__in=visible.values("pk")).select_related(
            "student", "model_version"
        )


@extend_schema_view(
    list=extend_schema(responses={200: ScoringRunSerializer(many=True), **errors(400)}),
    retrieve=extend_schema(responses={200: ScoringRunSerializer, **errors(404)}),
)
class ScoringRunViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = ScoringRunSerializer
    permission_classes = [CanSeeModels]
    filterset_fields = ["status", "model_version", "week_start", "trigger"]
    ordering_fields = ["created_at", "week_start", "duration_s"]
    ordering = ["-created_at"]

    def get_queryset(self) -> QuerySet[ScoringRun]:
        return ScoringRun.objects.all()


_ACTIVE_VERSION = ModelVersion.objects.filter(status=ModelStatus.ACTIVE).values("pk")[:1]


def _require_active_model() -> None:
    if model_version_active() is None:
        raise ApiError(
            _("No model is active yet: train and promote one first."),
            code="no_active_model",
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        )


class PredictView(APIView):
    """One student's risk from their latest features (cached until their data change)."""

    permission_classes = [CanSeeStudents]
    throttle_scope = "predict"

    @extend_schema(
        request=PredictRequestSerializer,
        responses={200: PredictionSerializer, **errors(400, 404, 409, 422, 503)},
        examples=[
            OpenApiExample("by identifier", value={"student_id": "S-000012"}, request_only=True),
            OpenApiExample("by key", value={"student": 12}, request_only=True),
            OpenApiExample("prediction", value=PREDICTION_EXAMPLE, response_only=True),
        ],
    )
    def post(self, request: Request) -> HttpResponseBase:
        from apps.predictions.services.scoring import (
            prediction_body_get,
            prediction_body_set,
            prediction_for_student,
        )

        form = PredictRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        lookup = (
            {"pk": data["student"]}
            if data.get("student") is not None
            else {"student_id": data["student_id"]}
        )
        # The scope check and the active model in one query: the hot path of a
        # cached answer is this query and one cache round trip.
        found = (
            students_visible_to(request.user)  # type: ignore[arg-type]
            .filter(**lookup)
            .annotate(active_version=Subquery(_ACTIVE_VERSION))
            .values_list("pk", "active_version")
            .first()
        )
        if found is None:
            raise NotFound(_("No such student."))
        student_pk, version_pk = found
        if version_pk is None:
            _require_active_model()  # raises the 503, or there is one now after all
        as_of = data.get("as_of")
        generation, body = (
            prediction_body_get(student_id=student_pk, as_of=as_of, version_pk=version_pk)
            if version_pk is not None
            else (None, None)
        )
        if body is None:
            prediction = prediction_for_student(student=student_pk, as_of=as_of)
            if prediction is None:
                raise ApiError(
                    _("This student has no weekly features for that academic year yet."),
                    code="no_features",
                    status_code=status.HTTP_422_UNPROCESSABLE_ENTITY,
                )
            body = JSONRenderer().render(PredictionSerializer(prediction).data)
            if generation is not None and prediction.model_version_id == version_pk:
                prediction_body_set(
                    student_id=student_pk,
                    as_of=as_of,
                    version_pk=version_pk,
                    generation=generation,
                    body=body,
                )
        if getattr(request, "accepted_renderer", None) is not None and (
            request.accepted_renderer.format != "json"
        ):
            return Response(json.loads(body))  # the browsable API renders it
        return HttpResponse(body, content_type="application/json")


class PredictBatchView(APIView):
    """Many students at once; above EDUPULSE_API_BATCH_SYNC_MAX it becomes a task (202)."""

    permission_classes = [CanSeeStudents]
    throttle_scope = "predict"

    @extend_schema(
        request=PredictBatchRequestSerializer,
        responses={
            200: PredictBatchResultSerializer,
            202: TaskAcceptedSerializer,
            **errors(400, 409, 503),
        },
        examples=[
            OpenApiExample(
                "by identifiers", value={"student_ids": ["S-000012", "S-000013"]}, request_only=True
            ),
        ],
    )
    def post(self, request: Request) -> Response:
        form = PredictBatchRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        visible = students_visible_to(request.user)  # type: ignore[arg-type]
        if data.get("students") is not None:
            asked = [str(pk) for pk in dict.fromkeys(data["students"])]
            found = dict(
                (str(pk), (pk, code))
                for pk, code in visible.filter(pk__in=data["students"]).values_list(
                    "pk", "student_id"
                )
            )
        else:
            asked = list(dict.fromkeys(data["student_ids"]))
            found = dict(
                (code, (pk, code))
                for pk, code in visible.filter(student_id__in=asked).values_list("pk", "student_id")
            )
        not_found = [key for key in asked if key not in found]
        ids = [found[key][0] for key in asked if key in found]
        _require_active_model()
        as_of: dt.date | None = data.get("as_of")
        if len(ids) > settings.EDUPULSE_API_BATCH_SYNC_MAX:
            return self._enqueue(ids, as_of, not_found)
        predictions, without = _score_now(ids, as_of)
        codes = {pk: code for pk, code in found.values()}
        return Response(
            {
                "predictions": PredictionSerializer(predictions, many=True).data,
                "without_features": [codes[pk] for pk in without],
                "not_found": not_found,
            }
        )

    def _enqueue(self, ids: list[int], as_of: dt.date | None, not_found: list[str]) -> Response:
        from apps.predictions.api.tasks import predict_batch

        task_id = str(uuid.uuid4())
        predict_batch.apply_async(args=[ids, as_of.isoformat() if as_of else None], task_id=task_id)
        return Response(
            {
                "task": task_id,
                "status_url": reverse("api:task-detail", args=[task_id]),
                "not_found": not_found,
            },
            status=status.HTTP_202_ACCEPTED,
        )


def _score_now(ids: list[int], as_of: dt.date | None) -> tuple[list[Prediction], list[int]]:
    """Score the students in one pass and read back each one's latest row up to that week."""
    from apps.predictions.services.scoring import predictions_score

    predictions_score(student_ids=ids, as_of=as_of)
    active = model_version_active()
    week = week_start_of(as_of or timezone.localdate())
    latest: dict[int, Prediction] = {}
    rows = (
        Prediction.objects.filter(student_id__in=ids, model_version=active, week_start__lte=week)
        .select_related("student", "model_version")
        .order_by("student_id", "-week_start")
    )
    for row in rows:
        latest.setdefault(row.student_id, row)
    order = {pk: i for i, pk in enumerate(ids)}
    found = sorted(latest.values(), key=lambda p: order[p.student_id])
    return found, [pk for pk in ids if pk not in latest]
