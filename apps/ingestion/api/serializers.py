from typing import Any

from rest_framework import serializers

from apps.ingestion.models import ImportJob, ImportKind, ImportPolicy, ImportProblem
from apps.ingestion.problems import render_message, render_message_in


class UploadSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=ImportKind.choices)
    file = serializers.FileField()
    policy = serializers.ChoiceField(
        choices=ImportPolicy.choices, default=ImportPolicy.ALL_OR_NOTHING
    )
    dry_run = serializers.BooleanField(default=False)
    sheet = serializers.CharField(required=False, allow_blank=True, default="", max_length=100)
    sha256 = serializers.RegexField(
        r"^[0-9a-fA-F]{64}$",
        required=False,
        allow_blank=True,
        default="",
        help_text="Checksum of the file as sent; a mismatch rejects a truncated upload.",
    )


class ProblemSerializer(serializers.ModelSerializer):
    message = serializers.SerializerMethodField()
    message_en = serializers.SerializerMethodField()
    message_bn = serializers.SerializerMethodField()

    class Meta:
        model = ImportProblem
        fields = ["line", "sheet", "column", "value", "code", "message", "message_en", "message_bn"]

    def get_message(self, problem: ImportProblem) -> str:
        return render_message(problem.code, problem.params)

    def get_message_en(self, problem: ImportProblem) -> str:
        return render_message_in("en", problem.code, problem.params)

    def get_message_bn(self, problem: ImportProblem) -> str:
        return render_message_in("bn", problem.code, problem.params)


class ImportJobSerializer(serializers.ModelSerializer):
    warnings = serializers.SerializerMethodField()
    progress = serializers.SerializerMethodField()
    created_by = serializers.CharField(source="created_by.username", default=None)

    class Meta:
        model = ImportJob
        fields = [
            "id",
            "kind",
            "policy",
            "dry_run",
            "status",
            "created_by",
            "created_at",
            "file_name",
            "file_size",
            "checksum",
            "same_file_as",
            "file_format",
            "encoding",
            "sheet",
            "celery_task_id",
            "rows_read",
            "rows_inserted",
            "rows_updated",
            "rows_unchanged",
            "rows_rejected",
            "error_count",
            "started_at",
            "finished_at",
            "validate_seconds",
            "load_seconds",
            "column_map",
            "warnings",
            "quality",
            "progress",
        ]
        read_only_fields = fields

    def get_warnings(self, job: ImportJob) -> list[str]:
        return [render_message(w["code"], w.get("params", {})) for w in job.warnings]

    def get_progress(self, job: ImportJob) -> dict[str, Any]:
        from apps.ingestion.services import import_job_progress

        return import_job_progress(job)
