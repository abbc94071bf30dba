from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from apps.ingestion.api.views import report_response
from apps.ingestion.forms import UploadForm
from apps.ingestion.models import ImportJob, ImportProblem, ImportStatus
from apps.ingestion.problems import render_message
from apps.ingestion.selectors import import_jobs_visible_to
from apps.ingestion.services import (
    UploadTooLarge,
    import_job_create,
    import_job_enqueue,
    import_job_progress,
    import_job_restart,
    import_jobs_fail_stale,
)


class ProblemInline(admin.TabularInline):
    model = ImportProblem
    extra = 0
    max_num = 0
    can_delete = False
    fields = ("line", "sheet", "column", "value", "message")
    readonly_fields = fields
    verbose_name_plural = gettext_lazy("Problems (the first 200; download the report for all)")

    def get_queryset(self, request: HttpRequest) -> QuerySet[ImportProblem]:
        queryset = super().get_queryset(request).order_by("line", "id")
        ids = list(queryset.values_list("pk", flat=True)[:200])
        return queryset.filter(pk__in=ids)

    @admin.display(description=gettext_lazy("problem"))
    def message(self, problem: ImportProblem) -> str:
        return problem.message


@admin.register(ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "created_at",
        "kind",
        "file_name",
        "status",
        "dry_run",
        "progress",
        "rows_inserted",
        "rows_updated",
        "rows_unchanged",
        "rows_rejected",
        "error_count",
        "created_by",
        "report_link",
    )
    list_filter = ("status", "kind", "policy", "dry_run")
    search_fields = ("file_name", "checksum")
    list_select_related = ("created_by",)
    date_hierarchy = "created_at"
    inlines = [ProblemInline]
    actions = ["restart_jobs", "fail_stale_jobs"]
    readonly_fields = [
        field.name for field in ImportJob._meta.fields if field.name not in ("id",)
    ] + ["report_link", "warning_messages", "schools"]
    exclude = ("warnings",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[ImportJob]:
        return import_jobs_visible_to(request.user)  # type: ignore[arg-type]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Jobs are a record: visible, never edited by hand.
        return request.method in ("GET", "HEAD") and self.has_view_permission(request, obj)

    @admin.display(description=gettext_lazy("progress"))
    def progress(self, job: ImportJob) -> str:
        if job.status == ImportStatus.LOADING:
            info = import_job_progress(job)
            return _("loading (%(rows)s rows)") % {"rows": info["rows_to_load"]}
        if job.status == ImportStatus.VALIDATING:
            # The job row changes only at COMMIT; the running count is in the cache.
            return _("%(rows)s rows checked") % {"rows": import_job_progress(job)["rows_read"]}
        return job.get_status_display()

    @admin.display(description=gettext_lazy("error report"))
    def report_link(self, job: ImportJob) -> str:
        if not job.error_count:
            return "—"
        url = reverse("admin:ingestion_importjob_report", args=[job.pk])
        return format_html('<a href="{}">{}</a>', url, _("download CSV"))

    @admin.display(description=gettext_lazy("warnings"))
    def warning_messages(self, job: ImportJob) -> str:
        return "; ".join(render_message(w["code"], w.get("params", {})) for w in job.warnings)

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "upload/",
                self.admin_site.admin_view(self.upload_view),
                name="ingestion_importjob_upload",
            ),
            path(
                "<int:pk>/report.csv",
                self.admin_site.admin_view(self.report_view),
                name="ingestion_importjob_report",
            ),
            *super().get_urls(),
        ]

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        return HttpResponseRedirect(reverse("admin:ingestion_importjob_upload"))

    def report_view(self, request: HttpRequest, pk: int) -> StreamingHttpResponse:
        job = get_object_or_404(self.get_queryset(request), pk=pk)
        return report_response(job)

    def upload_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = UploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                job = import_job_create(
                    kind=form.cleaned_data["kind"],
                    source=upload.file,
                    file_name=upload.name,
                    user=request.user,  # type: ignore[arg-type]
                    policy=form.cleaned_data["policy"],
                    dry_run=form.cleaned_data["dry_run"],
                    sheet=form.cleaned_data["sheet"],
                    max_bytes=settings.EDUPULSE_UPLOAD_MAX_MB * 1024 * 1024,
                )
            except UploadTooLarge:
                form.add_error("file", _("The file is too large."))
            else:
                import_job_enqueue(job=job)
                messages.success(request, _("Import job #%(job)s was queued.") % {"job": job.pk})
                return HttpResponseRedirect(
                    reverse("admin:ingestion_importjob_change", args=[job.pk])
                )
        context = {
            **self.admin_site.each_context(request),
            "title": _("Upload a file"),
            "form": form,
            "opts": self.model._meta,
            "limit_mb": settings.EDUPULSE_UPLOAD_MAX_MB,
        }
        return TemplateResponse(request, "admin/ingestion/importjob/upload.html", context)

    @admin.action(description=gettext_lazy("Restart the selected failed jobs"))
    def restart_jobs(self, request: HttpRequest, queryset: QuerySet[ImportJob]) -> None:
        restarted = 0
        for job in queryset.filter(status=ImportStatus.FAILED):
            import_job_restart(job=job)
            restarted += 1
        messages.info(request, _("%(count)s jobs restarted.") % {"count": restarted})

    @admin.action(description=gettext_lazy("Mark jobs whose worker stopped as failed"))
    def fail_stale_jobs(self, request: HttpRequest, queryset: QuerySet[ImportJob]) -> None:
        failed = import_jobs_fail_stale()
        messages.info(request, _("%(count)s stuck jobs marked failed.") % {"count": len(failed)})
