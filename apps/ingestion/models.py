from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from apps.common.models import TimeStampedModel
from apps.students.models import School


class ImportKind(models.TextChoices):
    SCHOOLS = "schools", _("Schools")
    ROSTER = "roster", _("Students and enrollments (roster)")
    EXITS = "exits", _("Enrollment exits")
    ATTENDANCE = "attendance", _("Daily attendance")
    GRADES = "grades", _("Marks")
    INCIDENTS = "incidents", _("Discipline incidents")
    HOLIDAYS = "holidays", _("Holidays")


# The order a historical backfill of a whole directory runs in: each kind
# refers to rows the kinds before it create.
BACKFILL_ORDER = [
    ImportKind.SCHOOLS,
    ImportKind.ROSTER,
    ImportKind.EXITS,
    ImportKind.ATTENDANCE,
    ImportKind.GRADES,
    ImportKind.INCIDENTS,
    ImportKind.HOLIDAYS,
]


class ImportPolicy(models.TextChoices):
    ALL_OR_NOTHING = "all-or-nothing", _("All or nothing")
    SKIP_INVALID = "skip-invalid", _("Skip invalid rows")


class ImportStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    VALIDATING = "validating", _("Validating")
    LOADING = "loading", _("Loading")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")
    REJECTED = "rejected", _("Rejected")


RUNNING_STATUSES = (ImportStatus.VALIDATING, ImportStatus.LOADING)
FINISHED_STATUSES = (ImportStatus.DONE, ImportStatus.FAILED, ImportStatus.REJECTED)


class ImportJob(TimeStampedModel):
    """One import of one file: the historical record of what came in, when and how it went."""

    kind = models.CharField(_("kind"), max_length=20, choices=ImportKind.choices)
    policy = models.CharField(
        _("policy"),
        max_length=20,
        choices=ImportPolicy.choices,
        default=ImportPolicy.ALL_OR_NOTHING,
    )
    dry_run = models.BooleanField(_("dry run"), default=False)
    status = models.CharField(
        _("status"), max_length=12, choices=ImportStatus.choices, default=ImportStatus.QUEUED
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("uploaded by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="import_jobs",
    )
    # The stored copy the worker reads; the original name is kept for people.
    file = models.FileField(_("file"), upload_to="imports/%Y/%m/", max_length=255)
    file_name = models.CharField(_("file name"), max_length=255)
    file_size = models.BigIntegerField(_("file size (bytes)"), default=0)
    checksum = models.CharField(_("SHA-256"), max_length=64, db_index=True)
    sheet = models.CharField(_("sheet"), max_length=100, blank=True)
    file_format = models.CharField(_("format"), max_length=10, blank=True)
    encoding = models.CharField(_("encoding"), max_length=20, blank=True)
    same_file_as = models.ForeignKey(
        "self",
        verbose_name=_("same file as"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text=_("An earlier job that imported a file with the same checksum."),
    )
    celery_task_id = models.CharField(_("task id"), max_length=64, blank=True, db_index=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)

    rows_read = models.PositiveIntegerField(_("rows read"), default=0)
    rows_inserted = models.PositiveIntegerField(_("rows inserted"), default=0)
    rows_updated = models.PositiveIntegerField(_("rows updated"), default=0)
    rows_unchanged = models.PositiveIntegerField(_("rows unchanged"), default=0)
    rows_rejected = models.PositiveIntegerField(_("rows rejected"), default=0)
    error_count = models.PositiveIntegerField(_("errors"), default=0)

    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    # Set while a worker holds the job; a running job whose heartbeat is old
    # belongs to a worker that died (see services.import_jobs_fail_stale).
    heartbeat_at = models.DateTimeField(_("last heartbeat"), null=True, blank=True)
    validate_seconds = models.FloatField(_("validation time (s)"), null=True, blank=True)
    load_seconds = models.FloatField(_("loading time (s)"), null=True, blank=True)

    column_map = models.JSONField(_("columns matched"), default=dict, blank=True)
    warnings = models.JSONField(_("warnings"), default=list, blank=True)
    quality = models.JSONField(_("data quality"), default=dict, blank=True)
    failure = models.TextField(_("failure"), blank=True)
    schools = models.ManyToManyField(
        School, verbose_name=_("schools"), blank=True, related_name="import_jobs"
    )

    class Meta:
        verbose_name = _("import job")
        verbose_name_plural = _("import jobs")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "heartbeat_at"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(checksum__regex=r"^[0-9a-f]{64}$"), name="import_job_checksum_sha256"
            )
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.kind} {self.file_name}"


class ImportProblem(models.Model):
    """One problem found in a file: where it is, what the value was and why it is wrong.

    The message is kept as a code and its parameters so that the report reads
    in the reader's language (English or Bengali), not the uploader's.
    """

    job = models.ForeignKey(
        ImportJob, verbose_name=_("import job"), on_delete=models.CASCADE, related_name="problems"
    )
    line = models.PositiveIntegerField(
        _("line"), null=True, blank=True, help_text=_("Row number in the file; the header is 1.")
    )
    sheet = models.CharField(_("sheet"), max_length=100, blank=True)
    column = models.CharField(_("column"), max_length=200, blank=True)
    value = models.CharField(_("value"), max_length=200, blank=True)
    code = models.CharField(_("code"), max_length=40)
    params = models.JSONField(_("parameters"), default=dict, blank=True)

    class Meta:
        verbose_name = _("import problem")
        verbose_name_plural = _("import problems")
        ordering = ["job", "line", "id"]

    def __str__(self) -> str:
        return f"{self.job_id}:{self.line} {self.code}"

    @property
    def message(self) -> str:
        from apps.ingestion.problems import render_message

        return render_message(self.code, self.params)
