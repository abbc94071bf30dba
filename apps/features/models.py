from django.db import models
from django.utils.translation import gettext_lazy as _

from apps.common.models import TimeStampedModel
from apps.students.models import School, Student


class FeatureSet(TimeStampedModel):
    """One version of the weekly features: the code, its parameters and its columns.

    A model records the `version` it was trained on; scoring compares it with
    the running code's version (`selectors.feature_set_current`).
    """

    version = models.CharField(_("version"), max_length=40, unique=True)
    code_version = models.CharField(_("extractor code version"), max_length=200)
    params = models.JSONField(_("parameters"), default=dict)
    columns = models.JSONField(_("columns"), default=list)
    # A hash of (code version, parameters, columns): a running code whose
    # definition differs under the same version name refuses to start using it.
    fingerprint = models.CharField(_("fingerprint"), max_length=64)

    class Meta:
        verbose_name = _("feature set")
        verbose_name_plural = _("feature sets")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.version


class WeeklyFeature(models.Model):
    """One student's feature vector for one school week of one academic year.

    `values` holds the F features as little-endian float32 (NaN = not
    observed) and `observed` the same mask as bits (bit i = column i), so a
    whole history is read as one packed value and one `np.frombuffer`
    instead of millions of Python floats. `state` is the attendance
    extractor's running counts (int16) after this week, from which an
    incremental update resumes; only the last weeks a build writes keep one.
    A school's students are found through their enrollments, so the table
    needs no index on school: every index slows the full build's COPY.
    """

    # The natural key is the primary key: a surrogate id would add a second
    # index (and a sequence) to every row the builds write. The first
    # academic week can begin before the year does, so the same week_start
    # may appear in two academic years.
    pk = models.CompositePrimaryKey("feature_set", "student", "week_start", "academic_year")
    # No database-level foreign keys: a full build COPYs millions of rows,
    # and per-row referential checks would cost more than the build itself.
    # Rows are only written by the build, from ids it has just read, and
    # Django's collector still cascades deletes.
    feature_set = models.ForeignKey(
        FeatureSet,
        verbose_name=_("feature set"),
        on_delete=models.CASCADE,
        db_index=False,
        db_constraint=False,
    )
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
    academic_year = models.PositiveSmallIntegerField(_("academic year"))
    week_start = models.DateField(_("week starting"))
    in_session = models.BooleanField(_("in session"))
    observed = models.BigIntegerField(_("observed mask"))
    values = models.BinaryField(_("values"))
    state = models.BinaryField(_("extractor state"))

    class Meta:
        verbose_name = _("weekly feature row")
        verbose_name_plural = _("weekly feature rows")

    def __str__(self) -> str:
        return f"{self.student_id} {self.week_start} {self.feature_set_id}"
