from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from apps.common.models import TimeStampedModel


class RegionLevel(models.TextChoices):
    DIVISION = "division", _("Division")
    DISTRICT = "district", _("District")
    UPAZILA = "upazila", _("Upazila")


class Region(TimeStampedModel):
    level = models.CharField(_("level"), max_length=10, choices=RegionLevel.choices)
    code = models.CharField(_("code"), max_length=20)
    name = models.CharField(_("name"), max_length=100)
    name_bn = models.CharField(_("name (Bengali)"), max_length=100, blank=True)
    parent = models.ForeignKey(
        "self",
        verbose_name=_("parent region"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="children",
    )
    # Materialised path ("/3/17/201/") so "everything under this district" is
    # one indexed prefix match instead of a recursive query.
    path = models.CharField(_("path"), max_length=255, editable=False, db_index=True)

    class Meta:
        verbose_name = _("region")
        verbose_name_plural = _("regions")
        ordering = ["path"]
        constraints = [
            models.UniqueConstraint(fields=["level", "code"], name="region_level_code_unique"),
            models.CheckConstraint(
                condition=Q(level=RegionLevel.DIVISION, parent__isnull=True)
                | (~Q(level=RegionLevel.DIVISION) & Q(parent__isnull=False)),
                name="region_only_divisions_are_roots",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_level_display()})"


class SchoolType(models.TextChoices):
    GOVERNMENT = "government", _("Government")
    NON_GOVERNMENT = "non_government", _("Non-government")
    MADRASAH = "madrasah", _("Madrasah")
    TECHNICAL = "technical", _("Technical and vocational")
    NGO = "ngo", _("NGO-run")


class School(TimeStampedModel):
    eiin = models.CharField(
        _("EIIN"),
        max_length=12,
        unique=True,
        help_text=_("Educational Institution Identification Number or the district's school code."),
    )
    name = models.CharField(_("name"), max_length=200)
    name_bn = models.CharField(_("name (Bengali)"), max_length=200, blank=True)
    school_type = models.CharField(_("type"), max_length=20, choices=SchoolType.choices)
    region = models.ForeignKey(
        Region, verbose_name=_("region"), on_delete=models.PROTECT, related_name="schools"
    )
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("school")
        verbose_name_plural = _("schools")
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.eiin} {self.name}"


class Gender(models.TextChoices):
    FEMALE = "female", _("Female")
    MALE = "male", _("Male")
    OTHER = "other", _("Other")


class Student(TimeStampedModel):
    # Names, birth date and guardian contact are personal data: they are shown
    # to users in scope but never logged and never put in URLs (use the pk).
    student_id = models.CharField(_("student identifier"), max_length=32, unique=True)
    name = models.CharField(_("name"), max_length=200)
    name_bn = models.CharField(_("name (Bengali)"), max_length=200, blank=True)
    gender = models.CharField(_("gender"), max_length=10, choices=Gender.choices)
    date_of_birth = models.DateField(_("date of birth"), null=True, blank=True)
    guardian_name = models.CharField(_("guardian's name"), max_length=200, blank=True)
    guardian_phone = models.CharField(_("guardian's phone"), max_length=20, blank=True)
    stipend_recipient = models.BooleanField(_("receives a stipend"), default=False)
    has_disability = models.BooleanField(_("has a disability"), default=False)

    class Meta:
        verbose_name = _("student")
        verbose_name_plural = _("students")
        ordering = ["student_id"]

    def __str__(self) -> str:
        return self.student_id


class ExitReason(models.TextChoices):
    DROPPED_OUT = "dropped_out", _("Dropped out")
    TRANSFERRED = "transferred", _("Transferred")
    GRADUATED = "graduated", _("Graduated")
    DECEASED = "deceased", _("Deceased")
    OTHER = "other", _("Other")


class Enrollment(TimeStampedModel):
    student = models.ForeignKey(
        Student, verbose_name=_("student"), on_delete=models.CASCADE, related_name="enrollments"
    )
    school = models.ForeignKey(
        School, verbose_name=_("school"), on_delete=models.PROTECT, related_name="enrollments"
    )
    academic_year = models.PositiveSmallIntegerField(
        _("academic year"), help_text=_("The calendar year in which the academic year starts.")
    )
    grade_level = models.PositiveSmallIntegerField(
        _("grade level"), validators=[MinValueValidator(1), MaxValueValidator(12)]
    )
    section = models.CharField(_("section"), max_length=20, blank=True)
    entry_date = models.DateField(_("entry date"))
    exit_date = models.DateField(_("exit date"), null=True, blank=True)
    exit_reason = models.CharField(
        _("exit reason"), max_length=20, choices=ExitReason.choices, blank=True
    )

    class Meta:
        verbose_name = _("enrollment")
        verbose_name_plural = _("enrollments")
        ordering = ["-academic_year", "student_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["student", "school", "academic_year"],
                name="enrollment_student_school_year_unique",
            ),
            # A student can be open at one school at a time; a mid-year
            # transfer closes one enrollment before the next opens.
            models.UniqueConstraint(
                fields=["student", "academic_year"],
                condition=Q(exit_date__isnull=True),
                name="enrollment_one_open_per_year",
            ),
            models.CheckConstraint(
                condition=Q(grade_level__gte=1, grade_level__lte=12),
                name="enrollment_grade_level_1_to_12",
            ),
            models.CheckConstraint(
                condition=Q(exit_date__isnull=True) | Q(exit_date__gte=F("entry_date")),
                name="enrollment_exit_not_before_entry",
            ),
            models.CheckConstraint(
                condition=(Q(exit_date__isnull=True) & Q(exit_reason=""))
                | (Q(exit_date__isnull=False) & ~Q(exit_reason="")),
                name="enrollment_exit_date_and_reason_together",
            ),
        ]
        indexes = [models.Index(fields=["school", "academic_year", "grade_level", "section"])]

    def __str__(self) -> str:
        return f"{self.student_id} @ {self.school_id} ({self.academic_year})"


class Subject(TimeStampedModel):
    code = models.CharField(_("code"), max_length=20, unique=True)
    name = models.CharField(_("name"), max_length=100)
    name_bn = models.CharField(_("name (Bengali)"), max_length=100, blank=True)
    is_core = models.BooleanField(
        _("core subject"), default=False, help_text=_("Failing a core subject is a risk indicator.")
    )

    class Meta:
        verbose_name = _("subject")
        verbose_name_plural = _("subjects")
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name


class Holiday(TimeStampedModel):
    date = models.DateField(_("date"))
    name = models.CharField(_("name"), max_length=100)
    name_bn = models.CharField(_("name (Bengali)"), max_length=100, blank=True)
    region = models.ForeignKey(
        Region,
        verbose_name=_("region"),
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        help_text=_("Leave empty for a holiday everywhere."),
    )

    class Meta:
        verbose_name = _("holiday")
        verbose_name_plural = _("holidays")
        ordering = ["date"]
        constraints = [
            models.UniqueConstraint(
                fields=["date"], condition=Q(region__isnull=True), name="holiday_national_unique"
            ),
            models.UniqueConstraint(fields=["date", "region"], name="holiday_regional_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.date} {self.name}"


class AttendanceStatus(models.TextChoices):
    PRESENT = "present", _("Present")
    ABSENT = "absent", _("Absent")
    EXCUSED = "excused", _("Excused absence")
    LATE = "late", _("Late")


class AttendanceRecord(models.Model):
    # No timestamps: this is the biggest table (a row per student per school
    # day) and the import job records when its rows arrived.
    # The FK indexes would duplicate the prefixes of the (student, date) and
    # (school, date) indexes and slow every bulk load of this table.
    # No database FK constraints either (db_constraint=False): checking two
    # references per row roughly doubled the load of a million-row import,
    # and the only writer of this table in bulk (apps/ingestion) checks every
    # student and school first. Django still cascades deletes; an orphan can
    # only come from raw SQL (docs/data-model.md).
    student = models.ForeignKey(
        Student,
        verbose_name=_("student"),
        on_delete=models.CASCADE,
        db_index=False,
        db_constraint=False,
    )
    school = models.ForeignKey(
        School,
        verbose_name=_("school"),
        on_delete=models.CASCADE,
        db_index=False,
        db_constraint=False,
    )
    date = models.DateField(_("date"))
    status = models.CharField(_("status"), max_length=10, choices=AttendanceStatus.choices)

    class Meta:
        verbose_name = _("attendance record")
        verbose_name_plural = _("attendance records")
        constraints = [
            models.UniqueConstraint(
                fields=["student", "date"], name="attendance_student_date_unique"
            )
        ]
        indexes = [models.Index(fields=["school", "date"])]

    def __str__(self) -> str:
        return f"{self.student_id} {self.date} {self.status}"


class GradeRecord(TimeStampedModel):
    student = models.ForeignKey(Student, verbose_name=_("student"), on_delete=models.CASCADE)
    subject = models.ForeignKey(Subject, verbose_name=_("subject"), on_delete=models.PROTECT)
    academic_year = models.PositiveSmallIntegerField(_("academic year"))
    term = models.CharField(_("term"), max_length=30)
    assessment = models.CharField(_("assessment"), max_length=60, default="exam")
    assessment_date = models.DateField(_("assessment date"))
    score = models.DecimalField(_("score"), max_digits=6, decimal_places=2, null=True, blank=True)
    max_score = models.DecimalField(_("maximum score"), max_digits=6, decimal_places=2)
    is_missing = models.BooleanField(
        _("missing"), default=False, help_text=_("The student did not sit or submit it.")
    )

    class Meta:
        verbose_name = _("grade record")
        verbose_name_plural = _("grade records")
        constraints = [
            models.UniqueConstraint(
                fields=["student", "academic_year", "term", "subject", "assessment"],
                name="grade_natural_key_unique",
            ),
            models.CheckConstraint(condition=Q(max_score__gt=0), name="grade_max_score_positive"),
            models.CheckConstraint(
                condition=(Q(is_missing=True) & Q(score__isnull=True))
                | (
                    Q(is_missing=False)
                    & Q(score__isnull=False)
                    & Q(score__gte=0)
                    & Q(score__lte=F("max_score"))
                ),
                name="grade_score_within_max_or_missing",
            ),
        ]
        indexes = [models.Index(fields=["student", "assessment_date"])]

    def __str__(self) -> str:
        return f"{self.student_id} {self.subject_id} {self.term} {self.assessment}"


class IncidentCategory(models.TextChoices):
    TRUANCY = "truancy", _("Truancy")
    DISRUPTION = "disruption", _("Classroom disruption")
    FIGHTING = "fighting", _("Fighting")
    BULLYING = "bullying", _("Bullying")
    CHEATING = "cheating", _("Cheating")
    SUBSTANCE = "substance", _("Substance use")
    VANDALISM = "vandalism", _("Vandalism")
    OTHER = "other", _("Other")


class Severity(models.IntegerChoices):
    MINOR = 1, _("Minor")
    MODERATE = 2, _("Moderate")
    SERIOUS = 3, _("Serious")


class DisciplineIncident(TimeStampedModel):
    student = models.ForeignKey(Student, verbose_name=_("student"), on_delete=models.CASCADE)
    school = models.ForeignKey(School, verbose_name=_("school"), on_delete=models.CASCADE)
    date = models.DateField(_("date"))
    category = models.CharField(_("category"), max_length=20, choices=IncidentCategory.choices)
    severity = models.PositiveSmallIntegerField(_("severity"), choices=Severity.choices)
    action_taken = models.CharField(_("action taken"), max_length=200, blank=True)
    days_suspended = models.PositiveSmallIntegerField(_("days suspended"), default=0)

    class Meta:
        verbose_name = _("discipline incident")
        verbose_name_plural = _("discipline incidents")
        constraints = [
            models.UniqueConstraint(
                fields=["student", "date", "category"], name="incident_natural_key_unique"
            ),
            models.CheckConstraint(
                condition=Q(severity__gte=1, severity__lte=3), name="incident_severity_1_to_3"
            ),
            models.CheckConstraint(
                condition=Q(days_suspended__lte=365), name="incident_suspension_at_most_a_year"
            ),
        ]
        indexes = [models.Index(fields=["school", "date"])]

    def __str__(self) -> str:
        return f"{self.student_id} {self.date} {self.category}"


class StaffScope(TimeStampedModel):
    """Which schools a user may see: one school, or every school under a region."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.CASCADE,
        related_name="scopes",
    )
    school = models.ForeignKey(
        School, verbose_name=_("school"), on_delete=models.CASCADE, null=True, blank=True
    )
    region = models.ForeignKey(
        Region, verbose_name=_("region"), on_delete=models.CASCADE, null=True, blank=True
    )

    class Meta:
        verbose_name = _("staff scope")
        verbose_name_plural = _("staff scopes")
        constraints = [
            models.CheckConstraint(
                condition=(Q(school__isnull=False) & Q(region__isnull=True))
                | (Q(school__isnull=True) & Q(region__isnull=False)),
                name="scope_exactly_one_of_school_or_region",
            ),
            models.UniqueConstraint(fields=["user", "school"], name="scope_user_school_unique"),
            models.UniqueConstraint(fields=["user", "region"], name="scope_user_region_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} → {self.school_id or self.region_id}"


class QualityCheck(models.TextChoices):
    NO_ATTENDANCE_WEEK = "no_attendance_week", _("Students with no attendance in a school week")
    MISSING_MARKS = "missing_marks", _("Missing marks")
    STALE_DATA = "stale_data", _("No recent data")
    PERFECT_ATTENDANCE = "perfect_attendance", _("Perfect attendance every day")
    DROP_TO_ZERO = "drop_to_zero", _("Sudden drop to zero attendance")
    OUT_OF_RANGE = "out_of_range", _("Value outside its possible range")
    SUDDEN_CHANGE = "sudden_change", _("Sudden change that looks like a data error")


class DataQualityFlag(TimeStampedModel):
    """A data problem found by an import or the feature build, shown to data managers.

    Shared by ingestion (per job) and the feature store (per week) so that one
    list answers "can we trust this school's data?".
    """

    school = models.ForeignKey(
        School, verbose_name=_("school"), on_delete=models.CASCADE, null=True, blank=True
    )
    check_code = models.CharField(_("check"), max_length=30, choices=QualityCheck.choices)
    week_start = models.DateField(_("week starting"), null=True, blank=True)
    source = models.CharField(_("source"), max_length=60, help_text=_("Import job or feature set"))
    value = models.FloatField(_("value"), null=True, blank=True)
    detail = models.JSONField(_("detail"), default=dict, blank=True)
    resolved = models.BooleanField(_("resolved"), default=False)

    class Meta:
        verbose_name = _("data quality flag")
        verbose_name_plural = _("data quality flags")
        ordering = ["-created_at"]
        constraints = [
            # Re-running a check updates its flag instead of piling up copies.
            models.UniqueConstraint(
                fields=["school", "check_code", "week_start", "source"],
                name="quality_flag_unique",
                nulls_distinct=False,
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_check_code_display()} {self.school_id or ''} {self.week_start or ''}"
