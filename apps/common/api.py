from __future__ import annotations

from typing import Any

from celery.backends.base import DisabledBackend
from celery.result import AsyncResult
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import Model
from django.http import JsonResponse
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.common.exceptions import error_body
from apps.common.progress import task_progress

# --- The one error shape, for the OpenAPI schema --------------------------------


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Machine-readable, stable: not_found, throttled, ...")
    message = serializers.CharField(help_text="For people, in the request's language.")
    details = serializers.DictField(help_text="Field errors or the figures behind the refusal.")


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()


def _error(description: str, code: str, message: str) -> OpenApiResponse:
    return OpenApiResponse(
        response=ErrorSerializer,
        description=description,
        examples=[
            OpenApiExample(code, value={"error": {"code": code, "message": message, "details": {}}})
        ],
    )


ERROR_400 = _error("Invalid request", "invalid", "The request is not valid.")
ERROR_401 = _error(
    "Not authenticated", "not_authenticated", "Authentication credentials were not provided."
)
ERROR_403 = _error(
    "Not allowed for this role",
    "permission_denied",
    "You do not have permission to perform this action.",
)
ERROR_404 = _error("Not found, or outside the caller's scope", "not_found", "No such object.")
ERROR_409 = _error("Conflict with the model or features", "feature_version_mismatch", "...")
ERROR_429 = OpenApiResponse(
    response=ErrorSerializer,
    description="Throttled",
    examples=[
        OpenApiExample(
            "throttled",
            value={
                "error": {
                    "code": "throttled",
                    "message": "Too many requests. Try again in 12 seconds.",
                    "details": {"wait_seconds": 12},
                }
            },
        )
    ],
)
ERROR_422 = _error(
    "The data cannot serve this request", "training_data_error", "Nothing to learn yet."
)
ERROR_503 = _error("Not ready", "service_unavailable", "The service is not ready.")

# Every authenticated endpoint can answer these.
COMMON_ERRORS: dict[int, OpenApiResponse] = {401: ERROR_401, 403: ERROR_403, 429: ERROR_429}


def errors(*statuses: int) -> dict[int, OpenApiResponse]:
    table = {
        400: ERROR_400,
        404: ERROR_404,
        409: ERROR_409,
        422: ERROR_422,
        503: ERROR_503,
        **COMMON_ERRORS,
    }
    return {**COMMON_ERRORS, **{code: table[code] for code in statuses}}


# --- Permissions by role -----------------------------------------------------


def requires_perms(*perms: str) -> type[BasePermission]:
    """A permission class: the user holds every one of these Django permissions.

    Roles map to permissions in apps.accounts.roles, so "counselors read their scope,
    data managers upload, administrators train" is decided there, in one place.
    """

    class _HasPerms(BasePermission):
        def has_permission(self, request: Request, view: APIView) -> bool:
            user = request.user
            return bool(user and user.is_authenticated and user.has_perms(perms))

    _HasPerms.__name__ = "HasPerms_" + "_".join(p.replace(".", "_") for p in perms)
    return _HasPerms


class CanViewModel(BasePermission):
    """Read access to a list/detail view needs the view permission of its model."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        model: type[Model] = getattr(view, "model", None) or view.get_queryset().model  # type: ignore[attr-defined]
        meta = model._meta
        return bool(user.has_perm(f"{meta.app_label}.view_{meta.model_name}"))


class HealthView(APIView):
    """Liveness: the process answers. Readiness (database, broker, model) is separate."""

    permission_classes = [AllowAny]
    authentication_classes: list[type] = []
    # Liveness probes hit this every few seconds from one address: never throttle them.
    throttle_classes: list[type] = []

    @extend_schema(
        responses=inline_serializer("Health", fields={"status": serializers.CharField()}),
    )
    def get(self, request: Request) -> Response:
        return Response({"status": "ok"})


class ReadyView(APIView):
    """Readiness: database, cache, broker and the active model. 503 with details when not."""

    permission_classes = [AllowAny]
    authentication_classes: list[type] = []
    throttle_classes: list[type] = []

    @extend_schema(
        responses={
            200: inline_serializer(
                "Ready",
                fields={
                    "status": serializers.CharField(),
                    "checks": serializers.DictField(child=serializers.DictField()),
                },
            ),
            503: inline_serializer(
                "NotReady",
                fields={
                    "status": serializers.CharField(),
                    "checks": serializers.DictField(child=serializers.DictField()),
                },
            ),
        },
        examples=[
            OpenApiExample(
                "ready",
                value={
                    "status": "ok",
                    "checks": {
                        "database": {"ok": True},
                        "cache": {"ok": True},
                        "broker": {"ok": True},
                        "model": {"ok": True, "version": "lstm-2026-11-01"},
                    },
                },
            )
        ],
    )
    def get(self, request: Request) -> Response:
        checks = {
            "database": _check(_database_ok),
            "cache": _check(_cache_ok),
            "broker": _check(_broker_ok),
            "model": _check(_model_ok),
        }
        ready = all(check["ok"] for check in checks.values())
        return Response(
            {"status": "ok" if ready else "unavailable", "checks": checks},
            status=200 if ready else 503,
        )


def _check(probe: Any) -> dict[str, Any]:
    try:
        detail = probe() or {}
    except Exception as error:  # readiness reports every failure, it never raises
        return {"ok": False, "error": f"{type(error).__name__}: {error}"[:300]}
    return {"ok": True, **detail}


def _database_ok() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _cache_ok() -> None:
    cache.set("edupulse:ready", "1", 10)
    if cache.get("edupulse:ready") != "1":
        raise RuntimeError("the cache did not keep a value")


def _broker_ok() -> dict[str, Any] | None:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return {"mode": "eager"}  # tasks run inline: no broker to reach
    from edupulse.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
    return None


def _model_ok() -> dict[str, Any]:
    # Loads the active model into this process if it is not yet (once; cached), so
    # the first request after a deploy does not pay for it.
    from apps.predictions.loader import active_model

    model = active_model()
    return {"version": model.version.name}


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


def api_not_found(request: Any, *args: Any, **kwargs: Any) -> JsonResponse:
    """Any other path under /api/v1/: the JSON error shape, not Django's HTML page."""
    return JsonResponse(error_body("not_found", _("No such API endpoint.")), status=404)
