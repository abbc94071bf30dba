from celery.backends.base import DisabledBackend
from celery.result import AsyncResult
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.common.progress import task_progress


class HealthView(APIView):
    """Liveness: the process answers. Readiness (database, broker, model) is separate."""

    permission_classes = [AllowAny]
    authentication_classes: list[type] = []

    @extend_schema(
        responses=inline_serializer("Health", fields={"status": serializers.CharField()}),
    )
    def get(self, request: Request) -> Response:
        return Response({"status": "ok"})


class TaskView(APIView):
    """A Celery task's state and result, plus its app's progress record (an import job's counts).

    Generic: any app registers a progress provider (apps.common.progress). A
    task id nobody knows answers state PENDING, as Celery does.
    """

    @extend_schema(
        responses=inline_serializer(
            "TaskStatus",
            fields={
                "id": serializers.CharField(),
                "state": serializers.CharField(),
                "ready": serializers.BooleanField(),
                "result": serializers.JSONField(allow_null=True),
                "progress": serializers.JSONField(allow_null=True),
            },
        )
    )
    def get(self, request: Request, task_id: str) -> Response:
        result = AsyncResult(task_id)
        if isinstance(result.backend, DisabledBackend):
            # No result backend (the embedded default runs tasks inline).
            state, payload = "PENDING", None
        else:
            state = result.state
            payload = result.result if result.ready() else None
        if isinstance(payload, BaseException):
            payload = {"error": type(payload).__name__}
        progress = task_progress(task_id, request.user)  # type: ignore[arg-type]
        if progress is not None and state == "PENDING" and progress.get("state"):
            # Eager mode keeps no result backend: the app's record knows better.
            state = progress["state"]
        return Response(
            {
                "id": task_id,
                "state": state,
                "ready": state in ("SUCCESS", "FAILURE", "REVOKED"),
                "result": payload,
                "progress": progress,
            }
        )
