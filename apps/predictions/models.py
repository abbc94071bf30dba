from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.common.models import TimeStampedModel


class ModelStatus(models.TextChoices):
    CANDIDATE = "candidate", _("Candidate")
    ACTIVE = "active", _("Active")
    RETIRED = "retired", _("Retired")


class ModelVersion(TimeStampedModel):
    """One trained risk model: where its file is, what it was trained on, how well it did.

    Every metric is measured on held-out students (never seen in training or
    validation); the baselines are fitted and scored on the same split.
    """

    name = models.CharField(_("name"), max_length=100, unique=True)
    status = models.CharField(
        _("status"), max_length=10, choices=ModelStatus.choices, default=ModelStatus.CANDIDATE
    )
    file_path = models.CharField(
        _("model file"),
        max_length=255,
        help_text=_("Relative to the model directory (EDUPULSE_MODEL_DIR)."),
    )
    holdout_path = models.CharField(
        _("held-out data file"),
        max_length=255,
        blank=True,
        help_text=_("The held-out arrays, kept to compare models on the same students."),
    )
    feature_version = models.CharField(_("feature version"), max_length=40)
    feature_spec = models.JSONField(
        _("feature specification"),
        default=dict,
        blank=True,
        help_text=_("Weekly and static columns and the category codes the model was built with."),
    )
    data_from = models.DateField(_("training data from"))
    data_to = models.DateField(_("training data to"))
    label_spec = models.JSONField(_("label definition"), default=dict, blank=True)
    dataset = models.JSONField(
        _("dataset"), default=dict, blank=True, help_text=_("Sizes of the splits.")
    )
    model_config = models.JSONField(_("model configuration"), default=dict, blank=True)
    train_config = models.JSONField(_("training configuration"), default=dict, blank=True)
    metrics = models.JSONField(_("held-out metrics"), default=dict, blank=True)
    validation_metrics = models.JSONField(_("validation metrics"), default=dict, blank=True)
    baseline_metrics = models.JSONField(_("baseline metrics"), default=dict, blank=True)
    subgroup_metrics = models.JSONField(_("subgroup metrics"), default=dict, blank=True)
    calibration = models.JSONField(_("calibration table"), default=list, blank=True)
    thresholds = models.JSONField(_("risk thresholds"), default=dict, blank=True)
    history = models.JSONField(_("training history"), default=list, blank=True)
    timings = models.JSONField(_("timings (seconds)"), default=dict, blank=True)
    mlflow_run_id = models.CharField(_("MLflow run"), max_length=64, blank=True)
    tracking_error = models.TextField(
        _("experiment tracking error"),
        blank=True,
        help_text=_("Why the run could not be logged to MLflow, if it could not."),
    )
    trained_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("trained by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    training_started_at = models.DateTimeField(_("training started at"))
    training_finished_at = models.DateTimeField(_("training finished at"))
    promoted_at = models.DateTimeField(_("promoted at"), null=True, blank=True)
    promoted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("promoted by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    promotion_report = models.JSONField(
        _("promotion check"),
        default=dict,
        blank=True,
        help_text=_("How the model compared with the active one when it was promoted."),
    )
    retired_at = models.DateTimeField(_("retired at"), null=True, blank=True)

    class Meta:
        verbose_name = _("model version")
        verbose_name_plural = _("model versions")
        ordering = ["-training_finished_at", "-pk"]
        permissions = [("promote_modelversion", _("Can promote a model version"))]
        constraints = [
            # Scoring must never have to choose between two models.
            models.UniqueConstraint(
                fields=["status"],
                condition=Q(status=ModelStatus.ACTIVE),
                name="model_version_one_active",
            ),
            models.CheckConstraint(
                condition=Q(data_to__gte=models.F("data_from")),
                name="model_version_data_range_ordered",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def path(self) -> Path:
        return Path(settings.EDUPULSE_MODEL_DIR) / self.file_path

    @property
    def holdout_file(self) -> Path | None:
        return Path(settings.EDUPULSE_MODEL_DIR) / self.holdout_path if self.holdout_path else None

    def headline(self, metric: str = "pr_auc") -> float | None:
        value: Any = self.metrics.get(metric)
        return None if value is None else float(value)


class TrainingStatus(models.TextChoices):
    PENDING = "pending", _("Waiting")
    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Finished")
    FAILED = "failed", _("Failed")


class TrainingRun(TimeStampedModel):
    """A request to train a model; the Celery task or the command claims it once."""

    status = models.CharField(
        _("status"), max_length=10, choices=TrainingStatus.choices, default=TrainingStatus.PENDING
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("requested by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    data_from = models.DateField(
        _("data from"), null=True, blank=True, help_text=_("Empty: from the first week with data.")
    )
    data_to = models.DateField(
        _("data to"), null=True, blank=True, help_text=_("Empty: up to today.")
    )
    options = models.JSONField(_("options"), default=dict, blank=True)
    promote = models.BooleanField(
        _("promote when done"),
        default=False,
        help_text=_("Make the new model active if it is not worse than the active one."),
    )
    progress = models.JSONField(_("progress"), default=dict, blank=True)
    error = models.TextField(_("error"), blank=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    model_version = models.OneToOneField(
        ModelVersion,
        verbose_name=_("model version"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="training_run",
    )

    class Meta:
        verbose_name = _("training run")
        verbose_name_plural = _("training runs")
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(data_from__isnull=True)
                | Q(data_to__isnull=True)
                | Q(data_to__gte=models.F("data_from")),
                name="training_run_data_range_ordered",
            )
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.get_status_display()}"


# --------------------------------------------------------------------------- scoring


class Prediction(models.Model):
    """One student's risk at one week, by one model; history is kept, a re-run replaces.

    `factors` holds the reasons as data (feature, direction, weeks, values);
    apps.predictions.sentences renders them in the reader's language, so the
    same row reads in Bengali and English.
    """

    student = models.ForeignKey(
        "students.Student",
        verbose_name=_("student"),
        on_delete=models.CASCADE,
        related_name="predictions",
    )
    school = models.ForeignKey(
        "students.School",
        verbose_name=_("school"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text=_("Where the student was enrolled that week."),
    )
    academic_year = models.PositiveSmallIntegerField(_("academic year"))
    week_start = models.DateField(_("week"), help_text=_("The week the features were read up to."))
    model_version = models.ForeignKey(
        ModelVersion,
        verbose_name=_("model version"),
        on_delete=models.PROTECT,
        related_name="predictions",
    )
    probability = models.FloatField(_("probability"))
    tier = models.CharField(_("risk tier"), max_length=10)
    factors = models.JSONField(_("risk factors"), default=list, blank=True)
    change_since_previous = models.FloatField(
        _("change since the previous prediction"), null=True, blank=True
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("prediction")
        verbose_name_plural = _("predictions")
        ordering = ["-week_start", "student_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["student", "week_start", "model_version"],
                name="prediction_one_per_student_week_model",
            ),
            models.CheckConstraint(
                condition=Q(probability__gte=0) & Q(probability__lte=1),
                name="prediction_probability_0_1",
            ),
        ]
        indexes = [
            models.Index(fields=["student", "-week_start"], name="prediction_student_week"),
            models.Index(fields=["model_version", "week_start"], name="prediction_model_week"),
            models.Index(fields=["school", "week_start"], name="prediction_school_week"),
        ]

    def __str__(self) -> str:
        return f"{self.student_id} {self.week_start} {self.probability:.2f}"


class ScoringStatus(models.TextChoices):
    PENDING = "pending", _("Waiting")
    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Finished")
    PARTIAL = "partial", _("Finished with failures")
    FAILED = "failed", _("Failed")


class ScoringRun(TimeStampedModel):
    """One batch scoring of the district (or some schools) with one model."""

    model_version = models.ForeignKey(
        ModelVersion,
        verbose_name=_("model version"),
        on_delete=models.PROTECT,
        related_name="scoring_runs",
    )
    as_of = models.DateField(_("as of"))
    week_start = models.DateField(_("week"))
    status = models.CharField(
        _("status"), max_length=10, choices=ScoringStatus.choices, default=ScoringStatus.PENDING
    )
    school_ids = models.JSONField(
        _("schools"), default=list, blank=True, help_text=_("Empty: every school.")
    )
    schools_total = models.PositiveIntegerField(_("schools"), default=0)
    schools_done = models.PositiveIntegerField(_("schools scored"), default=0)
    students = models.PositiveIntegerField(_("students scored"), default=0)
    predictions = models.PositiveIntegerField(_("predictions written"), default=0)
    alerts = models.PositiveIntegerField(_("alerts sent"), default=0)
    failures = models.JSONField(_("failures"), default=list, blank=True)
    duration_s = models.FloatField(_("duration (seconds)"), null=True, blank=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    trigger = models.CharField(_("trigger"), max_length=40, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("requested by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta:
        verbose_name = _("scoring run")
        verbose_name_plural = _("scoring runs")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"#{self.pk} {self.week_start} {self.get_status_display()}"


class AlertKind(models.TextChoices):
    ENTERED_HIGH = "entered_high", _("Entered the high-risk tier")
    ROSE = "rose", _("Risk rose sharply")


class Notification(models.Model):
    """An in-app alert for one counselor about one student's change in risk."""

    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("recipient"),
        on_delete=models.CASCADE,
        related_name="notifications",
    )
    student = models.ForeignKey(
        "students.Student",
        verbose_name=_("student"),
        on_delete=models.CASCADE,
        related_name="+",
    )
    prediction = models.ForeignKey(
        Prediction,
        verbose_name=_("prediction"),
        on_delete=models.CASCADE,
        related_name="notifications",
    )
    kind = models.CharField(_("kind"), max_length=20, choices=AlertKind.choices)
    week_start = models.DateField(_("week"))
    emailed = models.BooleanField(_("emailed"), default=False)
    read_at = models.DateTimeField(_("read at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        ordering = ["-created_at"]
        constraints = [
            # The same change is announced once, whatever re-runs or model swaps follow.
            models.UniqueConstraint(
                fields=["recipient", "student", "week_start", "kind"],
                name="notification_once_per_change",
            )
        ]
        indexes = [models.Index(fields=["recipient", "read_at"], name="notification_unread")]

    def __str__(self) -> str:
        return f"{self.recipient_id} {self.student_id} {self.kind}"
