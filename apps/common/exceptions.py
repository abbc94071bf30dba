"""One JSON shape for every API error, with a machine-readable code.

    {"error": {"code": "not_found", "message": "...", "details": {...}}}

Scripts branch on ``code`` (stable, English, snake_case); people read
``message`` (translated); ``details`` carries field errors or the numbers behind
the refusal (``wait_seconds`` on a 429). Domain exceptions from the services are
mapped here so views stay thin and never build error bodies by hand.
"""

from __future__ import annotations

import logging
import math
import sys
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from apps.features.exceptions import FeatureVersionMismatch
from apps.predictions.loader import NoActiveModel
from apps.predictions.services.promotion import PromotionRefused
from apps.predictions.services.training import TrainingDataError, json_safe

logger = logging.getLogger(__name__)


class ApiError(exceptions.APIException):
    """An error a view raises with its own code and optional details."""

    status_code: int = status.HTTP_400_BAD_REQUEST
    default_code = "bad_request"
    default_detail = gettext_lazy("The request could not be processed.")

    def __init__(
        self,
        message: Any = None,
        *,
        code: str | None = None,
        status_code: int | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message, code)
        if status_code is not None:
            self.status_code = status_code
        self.error_code = code or self.default_code
        self.details = details or {}


class ServiceUnavailable(ApiError):
    status_code: int = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "service_unavailable"
    default_detail = gettext_lazy("The service is not ready.")


# Domain exception -> (HTTP status, code). Their message is already a sentence for people.
_DOMAIN_ERRORS: dict[type[Exception], tuple[int, str]] = {
    FeatureVersionMismatch: (status.HTTP_409_CONFLICT, "feature_version_mismatch"),
    PromotionRefused: (status.HTTP_409_CONFLICT, "promotion_refused"),
    TrainingDataError: (status.HTTP_422_UNPROCESSABLE_ENTITY, "training_data_error"),
    NoActiveModel: (status.HTTP_503_SERVICE_UNAVAILABLE, "no_active_model"),
}
# ml.checkpoint imports torch; its errors are mapped only once something has loaded it
# (an exception of a module nobody imported cannot be raised).
_CHECKPOINT_ERROR = (status.HTTP_503_SERVICE_UNAVAILABLE, "model_unavailable")

# DRF's own exception classes -> our codes (DRF's default codes are close but not stable
# across versions, e.g. "not_authenticated" vs "authentication_failed").
_DRF_CODES: dict[type[exceptions.APIException], str] = {
    exceptions.ValidationError: "invalid",
    exceptions.ParseError: "parse_error",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "throttled",
}


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": str(message), "details": details or {}}}


def _code_for(exc: exceptions.APIException) -> str:
    if isinstance(exc, ApiError):
        return exc.error_code
    for cls in type(exc).__mro__:
        if cls in _DRF_CODES:
            return _DRF_CODES[cls]
    return exc.default_code if isinstance(exc.default_code, str) else "error"


def _translate(exc: Exception) -> exceptions.APIException | None:
    """Django and domain exceptions as DRF ones; None for what stays a 500."""
    if isinstance(exc, exceptions.APIException):
        return exc
    if isinstance(exc, Http404):
        return exceptions.NotFound()
    if isinstance(exc, DjangoPermissionDenied):
        return exceptions.PermissionDenied()
    if isinstance(exc, DjangoValidationError):
        details = (
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
        return ApiError(
            _("The request is not valid."),
            code="invalid",
            status_code=status.HTTP_400_BAD_REQUEST,
            details=details,
        )
    for cls, (status_code, code) in _DOMAIN_ERRORS.items():
        if isinstance(exc, cls):
            details = json_safe(dict(getattr(exc, "report", None) or {}))
            return ApiError(str(exc), code=code, status_code=status_code, details=details)
    checkpoint = sys.modules.get("ml.checkpoint")
    if checkpoint is not None and isinstance(exc, checkpoint.CheckpointError):
        status_code, code = _CHECKPOINT_ERROR
        return ApiError(str(exc), code=code, status_code=status_code)
    return None


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    api_exc = _translate(exc)
    if api_exc is None:
        return None  # a bug: Django's 500 handling and logging take over
    response = drf_exception_handler(api_exc, context)
    if response is None:  # pragma: no cover - DRF handles every APIException
        return None
    code = _code_for(api_exc)
    details: dict[str, Any] = {}
    if isinstance(api_exc, ApiError):
        message = str(api_exc.detail)
        details = api_exc.details
    elif isinstance(api_exc, exceptions.ValidationError):
        message = _("The request is not valid.")
        data = api_exc.detail
        details = data if isinstance(data, dict) else {"non_field_errors": data}  # type: ignore[assignment]
    elif isinstance(api_exc, exceptions.Throttled):
        wait = math.ceil(getattr(api_exc, "wait", None) or 1)
        message = _("Too many requests. Try again in %(seconds)s seconds.") % {"seconds": wait}
        details = {"wait_seconds": wait}
    else:
        detail = api_exc.detail
        message = (
            str(detail) if not isinstance(detail, (list, dict)) else str(api_exc.default_detail)
        )
    response.data = error_body(code, message, details)
    return response
