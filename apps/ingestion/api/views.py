from django.conf import settings
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import generics, serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.ingestion.api.serializers import (
    ImportJobSerializer,
    ProblemSerializer,
    UploadSerializer,
)
from apps.ingestion.models import ImportJob, ImportProblem
from apps.ingestion.report import error_report_rows
from apps.ingestion.selectors import import_jobs_visible_to, import_problems_of
from apps.ingestion.services import UploadTooLarge, import_job_create, import_job_enqueue


class CanUpload(BasePermission):
    def has_permission(self, request: Request, view: APIView) -> bool:
        return bool(request.user and request.user.has_perm("ingestion.add_importjob"))


class UploadView(APIView):
    """Upload a CSV or XLSX file; the import runs on the `ingest` queue."""

    permission_classes = [IsAuthenticated, CanUpload]
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        request=UploadSerializer,
        responses={
            202: inline_serializer(
                "UploadAccepted",
                fields={
                    "job": serializers.IntegerField(),
                    "task": serializers.CharField(),
                    "status": serializers.CharField(),
                },
            )
        },
    )
    def post(self, request: Request) -> Response:
        form = UploadSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        upload = form.validated_data["file"]
        limit = settings.EDUPULSE_UPLOAD_MAX_MB * 1024 * 1024
        if upload.size > limit:
            return _too_large(upload.size)
        try:
            job = import_job_create(
                kind=form.validated_data["kind"],
                source=upload.file,
                file_name=upload.name,
                user=request.user,  # type: ignore[arg-type]
                policy=form.validated_data["policy"],
                dry_run=form.validated_data["dry_run"],
                sheet=form.validated_data["sheet"],
                expected_checksum=form.validated_data["sha256"],
                max_bytes=limit,
            )
        except UploadTooLarge as error:
            return _too_large(int(error.args[0]))
        job = import_job_enqueue(job=job)
        return Response(
            {"job": job.pk, "task": job.celery_task_id, "status": job.status},
            status=status.HTTP_202_ACCEPTED,
        )


def _too_large(size: int) -> Response:
    return Response(
        {
            "code": "too_large",
            "detail": _("The file is %(size)s MB; uploads are limited to %(limit)s MB.")
            % {"size": size // (1024 * 1024), "limit": settings.EDUPULSE_UPLOAD_MAX_MB},
        },
        status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    )


class JobListView(generics.ListAPIView):
    serializer_class = ImportJobSerializer
    filterset_fields = ["kind", "status"]

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return import_jobs_visible_to(self.request.user)  # type: ignore[arg-type]


class JobDetailView(generics.RetrieveAPIView):
    serializer_class = ImportJobSerializer

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return import_jobs_visible_to(self.request.user)  # type: ignore[arg-type]


class JobProblemsView(generics.ListAPIView):
    """The error report of one job, page by page, in English and Bengali."""

    serializer_class = ProblemSerializer

    def get_queryset(self):  # type: ignore[no-untyped-def]
        if getattr(self, "swagger_fake_view", False):  # schema generation: no job, no user
            return ImportProblem.objects.none()
        job = get_object_or_404(import_jobs_visible_to(self.request.user), pk=self.kwargs["pk"])  # type: ignore[arg-type]
        return import_problems_of(job)


class JobReportView(APIView):
    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.STR})
    def get(self, request: Request, pk: int) -> StreamingHttpResponse:
        job = get_object_or_404(import_jobs_visible_to(request.user), pk=pk)  # type: ignore[arg-type]
        return report_response(job)


def report_response(job: ImportJob) -> StreamingHttpResponse:
    response = StreamingHttpResponse(error_report_rows(job), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="import-{job.pk}-errors.csv"'
    return response
