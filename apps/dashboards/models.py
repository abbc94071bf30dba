from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class CaseloadVisit(models.Model):
    """When a user last opened the caseload, for "new high-risk since your last visit"."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.CASCADE,
        related_name="caseload_visit",
    )
    last_seen_at = models.DateTimeField(_("last seen at"))

    class Meta:
        verbose_name = _("caseload visit")
        verbose_name_plural = _("caseload visits")

    def __str__(self) -> str:
        return f"{self.user_id} {self.last_seen_at:%Y-%m-%d %H:%M}"


class OverviewWeek(models.Model):
    """A school's attendance records of one week, for its students of one grade and section.

    The school overview reads its rates and its weekly trend from these rows
    (a year is about fifty weeks times the school's groups) instead of a year
    of daily records: `services.overview_refresh` rewrites the weeks that
    records arrive for, after each import, in the background.
    """

    school = models.ForeignKey(
        "students.School", verbose_name=_("school"), on_delete=models.CASCADE, related_name="+"
    )
    academic_year = models.PositiveSmallIntegerField(_("academic year"))
    week_start = models.DateField(_("week starting"))
    grade_level = models.PositiveSmallIntegerField(_("grade level"))
    section = models.CharField(_("section"), max_length=20, blank=True)
    attended = models.PositiveIntegerField(_("Attended"))
    recorded = models.PositiveIntegerField(_("Days recorded"))

    class Meta:
        verbose_name = _("Attendance by week")
        verbose_name_plural = _("Attendance by week")
        constraints = [
            models.UniqueConstraint(
                fields=["school", "academic_year", "week_start", "grade_level", "section"],
                name="overview_week_natural_key",
            )
        ]

    def __str__(self) -> str:
        return f"{self.school_id} {self.week_start} {self.grade_level}{self.section}"


class OverviewGroup(models.Model):
    """One grade and section of a school's year: its students with a failing mark.

    Written with the school's OverviewWeek rows; a school year without any
    OverviewGroup row has never been summarised (`services.overview_ensure`).
    """

    school = models.ForeignKey(
        "students.School", verbose_name=_("school"), on_delete=models.CASCADE, related_name="+"
    )
    academic_year = models.PositiveSmallIntegerField(_("academic year"))
    grade_level = models.PositiveSmallIntegerField(_("grade level"))
    section = models.CharField(_("section"), max_length=20, blank=True)
    failing = models.PositiveIntegerField(_("Failing at least one subject"))

    class Meta:
        verbose_name = _("Grade and section")
        verbose_name_plural = _("Grade and section")
        constraints = [
            models.UniqueConstraint(
                fields=["school", "academic_year", "grade_level", "section"],
                name="overview_group_natural_key",
            )
        ]

    def __str__(self) -> str:
        return f"{self.school_id} {self.academic_year} {self.grade_level}{self.section}"
