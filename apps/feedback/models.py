from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from apps.common.models import TimeStampedModel
from apps.students.models import Student


class InterventionType(models.TextChoices):
    HOME_VISIT = "home_visit", _("Home visit")
    GUARDIAN_MEETING = "guardian_meeting", _("Guardian meeting")
    TUTORING = "tutoring", _("Tutoring")
    STIPEND_FOLLOW_UP = "stipend_follow_up", _("Stipend follow-up")
    COUNSELLING = "counselling", _("Counselling")
    REFERRAL = "referral", _("Referral")


class SupportTier(models.IntegerChoices):
    # The three tiers of a multi-tiered system of support, as counselors use them.
    UNIVERSAL = 1, _("Tier 1: universal")
    TARGETED = 2, _("Tier 2: targeted")
    INTENSIVE = 3, _("Tier 3: intensive")


class InterventionStatus(models.TextChoices):
    PLANNED = "planned", _("Planned")
    IN_PROGRESS = "in_progress", _("In progress")
    COMPLETED = "completed", _("Completed")
    CANCELLED = "cancelled", _("Cancelled")


OPEN_STATUSES = (InterventionStatus.PLANNED, InterventionStatus.IN_PROGRESS)


class Intervention(TimeStampedModel):
    student = models.ForeignKey(
        Student, verbose_name=_("student"), on_delete=models.CASCADE, related_name="interventions"
    )
    intervention_type = models.CharField(_("type"), max_length=20, choices=InterventionType.choices)
    support_tier = models.PositiveSmallIntegerField(
        _("tier of support"), choices=SupportTier.choices, default=SupportTier.TARGETED
    )
    goal = models.CharField(_("goal"), max_length=300)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("owner"),
        on_delete=models.PROTECT,
        related_name="owned_interventions",
    )
    start_date = models.DateField(_("start date"))
    review_date = models.DateField(_("review date"))
    status = models.CharField(
        _("status"),
        max_length=20,
        choices=InterventionStatus.choices,
        default=InterventionStatus.PLANNED,
    )
    notes = models.TextField(_("notes"), blank=True)
    outcome = models.TextField(_("outcome"), blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        on_delete=models.PROTECT,
        related_name="+",
    )

    class Meta:
        verbose_name = _("intervention")
        verbose_name_plural = _("interventions")
        ordering = ["-start_date", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(review_date__gte=F("start_date")),
                name="intervention_review_not_before_start",
            ),
            models.CheckConstraint(
                condition=Q(support_tier__gte=1, support_tier__lte=3),
                name="intervention_support_tier_1_to_3",
            ),
        ]
        indexes = [
            # The caseload counts open and overdue plans per student.
            models.Index(fields=["student", "status", "review_date"]),
        ]

    def __str__(self) -> str:
        return f"{self.student_id} {self.intervention_type} {self.start_date}"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


class OutcomeKind(models.TextChoices):
    RETURNED = "returned", _("Returned to regular attendance")
    DROPPED_OUT = "dropped_out", _("Dropped out")
    TRANSFERRED = "transferred", _("Transferred")


class OutcomeRecord(TimeStampedModel):
    """What happened to a student, as a counselor observed it: a label for the next model."""

    student = models.ForeignKey(
        Student, verbose_name=_("student"), on_delete=models.CASCADE, related_name="outcomes"
    )
    outcome = models.CharField(_("outcome"), max_length=20, choices=OutcomeKind.choices)
    observed_on = models.DateField(_("observed on"))
    intervention = models.ForeignKey(
        Intervention,
        verbose_name=_("intervention"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="outcomes",
    )
    note = models.TextField(_("note"), blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("recorded by"),
        on_delete=models.PROTECT,
        related_name="+",
    )

    class Meta:
        verbose_name = _("outcome record")
        verbose_name_plural = _("outcome records")
        ordering = ["-observed_on", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["student", "outcome", "observed_on"], name="outcome_natural_key_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.student_id} {self.outcome} {self.observed_on}"


class Verdict(models.TextChoices):
    AGREE = "agree", _("Agree")
    NOT_USEFUL = "not_useful", _("Not useful / wrong")


class TrainingFeedback(TimeStampedModel):
    """A counselor's verdict on one prediction; the continuous-learning update reads these.

    `prediction` was a plain integer until the predictions app existed; the
    column (`prediction_id`) and its data stayed when it became a ForeignKey.
    """

    prediction = models.ForeignKey(
        "predictions.Prediction",
        verbose_name=_("prediction"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="feedback",
    )
    student = models.ForeignKey(
        Student,
        verbose_name=_("student"),
        on_delete=models.CASCADE,
        related_name="training_feedback",
    )
    verdict = models.CharField(_("verdict"), max_length=20, choices=Verdict.choices)
    reason = models.TextField(_("reason"), blank=True)
    given_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("given by"),
        on_delete=models.PROTECT,
        related_name="+",
    )

    class Meta:
        verbose_name = _("training feedback")
        verbose_name_plural = _("training feedback")
        ordering = ["-created_at"]
        constraints = [
            # One click per person and prediction: clicking again changes the verdict.
            models.UniqueConstraint(
                fields=["prediction", "given_by"],
                condition=Q(prediction__isnull=False),
                name="feedback_one_per_user_and_prediction",
            )
        ]

    def __str__(self) -> str:
        return f"{self.student_id} {self.verdict} ({self.prediction_id})"


class AuditAction(models.TextChoices):
    VIEWED_STUDENT = "viewed_student", _("Viewed a student page")
    EXPORTED = "exported", _("Exported a list")


class AuditEvent(models.Model):
    """Who saw or exported what, and when. Written by services, never edited."""

    # SET_NULL keeps the trail when an account or a student is deleted;
    # `username` and `detail` still say who and what.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
    )
    username = models.CharField(_("username"), max_length=150)
    action = models.CharField(_("action"), max_length=20, choices=AuditAction.choices)
    student = models.ForeignKey(
        Student,
        verbose_name=_("student"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    # Ids and list names only: the audit trail must not copy personal data.
    detail = models.JSONField(_("detail"), default=dict, blank=True)
    created_at = models.DateTimeField(_("when"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["student", "created_at"])]

    def __str__(self) -> str:
        return f"{self.username} {self.action} {self.created_at:%Y-%m-%d %H:%M}"
