"""Plain sentences for stored risk factors, in the reader's language.

Factors are stored as data (feature, direction, values, weeks); the sentence
is written when it is read, so a Bengali and an English reader see the same
reason in their own words.
"""

from __future__ import annotations

from typing import Any

from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

FEATURE_LABELS = {
    "grade_level": gettext_lazy("Grade level"),
    "over_age": gettext_lazy("Over age for the grade"),
    "weeks_enrolled": gettext_lazy("Weeks enrolled"),
    "school_changes": gettext_lazy("School changes"),
    "school_days": gettext_lazy("School days"),
    "no_school_week": gettext_lazy("Weeks without school"),
    "days_recorded": gettext_lazy("Days recorded"),
    "attendance_rate": gettext_lazy("Attendance"),
    "absences": gettext_lazy("Absences per week"),
    "unexcused_absences": gettext_lazy("Unexcused absences per week"),
    "late_arrivals": gettext_lazy("Late arrivals per week"),
    "absence_streak": gettext_lazy("Longest run of absent days"),
    "attendance_rate_2w": gettext_lazy("Attendance over two weeks"),
    "attendance_rate_4w": gettext_lazy("Attendance over four weeks"),
    "attendance_rate_8w": gettext_lazy("Attendance over eight weeks"),
    "attendance_rate_ytd": gettext_lazy("Attendance this year"),
    "attendance_change": gettext_lazy("Change in attendance"),
    "chronic_absence": gettext_lazy("Chronic absence"),
    "marks_share": gettext_lazy("Share of assessments marked"),
    "marks_average": gettext_lazy("Average marks"),
    "marks_average_ban": gettext_lazy("Bangla marks"),
    "marks_average_eng": gettext_lazy("English marks"),
    "marks_average_math": gettext_lazy("Mathematics marks"),
    "marks_trend": gettext_lazy("Trend in marks"),
    "failing_subjects": gettext_lazy("Failing subjects"),
    "missing_assessments": gettext_lazy("Missing assessments"),
    "incidents": gettext_lazy("Discipline incidents"),
    "incident_severity": gettext_lazy("Severity of incidents"),
    "suspension_days": gettext_lazy("Days suspended"),
    "weeks_since_incident": gettext_lazy("Weeks since the last incident"),
    "stipend": gettext_lazy("Stipend"),
    "disability": gettext_lazy("Disability"),
    "age": gettext_lazy("Age"),
}
# Rates stored as shares (0..1) that read better as percentages.
PERCENT_FEATURES = {
    "attendance_rate",
    "attendance_rate_2w",
    "attendance_rate_4w",
    "attendance_rate_8w",
    "attendance_rate_ytd",
    "marks_share",
}


def feature_label(feature: str) -> str:
    return str(FEATURE_LABELS.get(feature, feature.replace("_", " ")))


def _number(value: float, percent: bool) -> str:
    if percent:
        return number_format(round(value * 100 if abs(value) <= 1.0 else value), 0)
    return number_format(value, 1)


def factor_sentence(factor: dict[str, Any]) -> str:
    """One sentence for one stored factor, in the active language."""
    feature = str(factor.get("feature", ""))
    before, after = factor.get("before"), factor.get("after")
    raises = factor.get("direction") == "raises"
    label = feature_label(feature)
    if factor.get("kind") == "static" or before is None or after is None:
        if raises:
            return _("%(feature)s raises the risk.") % {"feature": label}
        return _("%(feature)s lowers the risk.") % {"feature": label}
    percent = feature in PERCENT_FEATURES
    params = {
        "feature": label,
        "before": _number(float(before), percent),
        "after": _number(float(after), percent),
        "weeks": int(factor.get("recent_weeks") or len(factor.get("weeks") or []) or 1),
    }
    if feature.startswith("attendance_rate"):
        if after < before:
            return (
                _("Attendance fell from %(before)s%% to %(after)s%% over the last %(weeks)s weeks.")
                % params
            )
        return (
            _("Attendance rose from %(before)s%% to %(after)s%% over the last %(weeks)s weeks.")
            % params
        )
    if percent:
        if after < before:
            return (
                _(
                    "%(feature)s fell from %(before)s%% to %(after)s%% over the last %(weeks)s weeks."
                )
                % params
            )
        return (
            _("%(feature)s rose from %(before)s%% to %(after)s%% over the last %(weeks)s weeks.")
            % params
        )
    if after < before:
        return (
            _("%(feature)s fell from %(before)s to %(after)s over the last %(weeks)s weeks.")
            % params
        )
    if after > before:
        return (
            _("%(feature)s rose from %(before)s to %(after)s over the last %(weeks)s weeks.")
            % params
        )
    if raises:
        return _("%(feature)s stayed at %(after)s, which raises the risk.") % params
    return _("%(feature)s stayed at %(after)s, which lowers the risk.") % params


def factor_sentences(factors: list[dict[str, Any]]) -> list[str]:
    return [factor_sentence(f) for f in factors]
