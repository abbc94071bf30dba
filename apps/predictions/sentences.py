"""Plain sentences for stored risk factors, in the reader's language.

Factors are stored as data (feature, direction, values, weeks); the sentence
is written when it is read, so a Bengali and an English reader see the same
reason in their own words.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.utils import translation
from django.utils.formats import get_format
from django.utils.translation import gettext_lazy

from apps.common.digits import localise_digits

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


# The sentences, keyed by (kind, direction). Kept lazy here and translated
# once per language (`_phrases`): an export writes thousands of sentences, and
# each gettext call costs tens of microseconds in the locale lookup alone.
SENTENCES = {
    ("static", "raises"): gettext_lazy("%(feature)s raises the risk."),
    ("static", "lowers"): gettext_lazy("%(feature)s lowers the risk."),
    ("attendance", "fell"): gettext_lazy(
        "Attendance fell from %(before)s%% to %(after)s%% over the last %(weeks)s weeks."
    ),
    ("attendance", "rose"): gettext_lazy(
        "Attendance rose from %(before)s%% to %(after)s%% over the last %(weeks)s weeks."
    ),
    ("percent", "fell"): gettext_lazy(
        "%(feature)s fell from %(before)s%% to %(after)s%% over the last %(weeks)s weeks."
    ),
    ("percent", "rose"): gettext_lazy(
        "%(feature)s rose from %(before)s%% to %(after)s%% over the last %(weeks)s weeks."
    ),
    ("number", "fell"): gettext_lazy(
        "%(feature)s fell from %(before)s to %(after)s over the last %(weeks)s weeks."
    ),
    ("number", "rose"): gettext_lazy(
        "%(feature)s rose from %(before)s to %(after)s over the last %(weeks)s weeks."
    ),
    ("stayed", "raises"): gettext_lazy("%(feature)s stayed at %(after)s, which raises the risk."),
    ("stayed", "lowers"): gettext_lazy("%(feature)s stayed at %(after)s, which lowers the risk."),
}


@dataclass(frozen=True)
class _Phrases:
    labels: dict[str, str]
    sentences: dict[tuple[str, str], str]
    decimal_separator: str


@functools.lru_cache(maxsize=16)
def _phrases(language: str) -> _Phrases:
    with translation.override(language):
        return _Phrases(
            labels={key: str(label) for key, label in FEATURE_LABELS.items()},
            sentences={key: str(sentence) for key, sentence in SENTENCES.items()},
            decimal_separator=str(get_format("DECIMAL_SEPARATOR")),
        )


def _active_phrases() -> tuple[str, _Phrases]:
    language = translation.get_language() or settings.LANGUAGE_CODE
    return language, _phrases(language)


def feature_label(feature: str) -> str:
    _language, phrases = _active_phrases()
    return phrases.labels.get(feature) or feature.replace("_", " ")


def _number(value: float, percent: bool, language: str, phrases: _Phrases) -> str:
    # The language's decimal separator and digits, looked up once per language
    # rather than per number (number_format's lookups cost more than the rest).
    if percent:
        shown = str(round(value * 100 if abs(value) <= 1.0 else value))
    else:
        shown = f"{value:.1f}".replace(".", phrases.decimal_separator)
    return localise_digits(shown, language)


def factor_sentence(factor: dict[str, Any]) -> str:
    """One sentence for one stored factor, in the active language and its digits."""
    language, phrases = _active_phrases()
    feature = str(factor.get("feature", ""))
    before, after = factor.get("before"), factor.get("after")
    direction = "raises" if factor.get("direction") == "raises" else "lowers"
    label = phrases.labels.get(feature) or feature.replace("_", " ")
    if factor.get("kind") == "static" or before is None or after is None:
        return phrases.sentences["static", direction] % {"feature": label}
    percent = feature in PERCENT_FEATURES
    shown_before = _number(float(before), percent, language, phrases)
    shown_after = _number(float(after), percent, language, phrases)
    params = {
        "feature": label,
        "before": shown_before,
        "after": shown_after,
        "weeks": localise_digits(
            str(int(factor.get("recent_weeks") or len(factor.get("weeks") or []) or 1)), language
        ),
    }
    # Compared as shown: "fell from 90% to 90%" reads as a mistake.
    if shown_before == shown_after:
        if percent:
            params["after"] = shown_after + "%"
        return phrases.sentences["stayed", direction] % params
    change = "fell" if after < before else "rose"
    if feature.startswith("attendance_rate"):
        return phrases.sentences["attendance", change] % params
    return phrases.sentences["percent" if percent else "number", change] % params


def factor_sentences(factors: list[dict[str, Any]]) -> list[str]:
    return [factor_sentence(f) for f in factors]
