"""The one place the pages read risk scores from: the hook for the predictions app.

Every risk element of the pages (the caseload's tier, change since last week,
top reason and "new high-risk since your last visit"; the student page's risk
history, current factors and feedback buttons; the overview's tier
distribution and the students who rose the most) is rendered from
`risk_source()`. Until a model is active it is
`NoPredictions`, which returns nothing, and the pages hide those elements.

The predictions app installs a provider (`risk_provider_set`, in its ready())
that returns `apps.predictions.risk.PredictionRiskSource` over the active
model's Prediction rows when a model is active. Nothing else in the
dashboards changes: views, templates, exports and tests already read these
dataclasses. Each method is called once per page with all the rows of that
page, so a source must answer it in a fixed number of queries.
"""

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from django.db import models
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from apps.students.models import Enrollment


class RiskTier(models.TextChoices):
    HIGH = "high", _("High risk")
    MEDIUM = "medium", _("Medium risk")
    LOW = "low", _("Low risk")


@dataclass(frozen=True)
class StudentRisk:
    student_id: int
    prediction_id: int  # what a counselor's verdict (TrainingFeedback) points at
    tier: str  # a RiskTier value
    probability: float  # 0..1
    change_since_last_week: float | None  # probability points, + is rising
    top_reason: str  # one translated sentence
    scored_at: dt.datetime

    @property
    def tier_label(self) -> str:
        return str(RiskTier(self.tier).label)

    @property
    def is_rising(self) -> bool:
        return (self.change_since_last_week or 0) > 0


@dataclass(frozen=True)
class RiskPoint:
    week_start: dt.date
    probability: float
    tier: str


@dataclass(frozen=True)
class RiskFactor:
    sentence: str  # translated, e.g. "Attendance fell from 95% to 61% over 6 weeks."
    weeks: Sequence[dt.date] = field(default_factory=tuple)  # the weeks that drove it


class RiskSource(Protocol):
    available: bool

    def for_students(self, student_ids: Sequence[int]) -> dict[int, StudentRisk]: ...

    def history(self, student_id: int) -> list[RiskPoint]: ...

    def factors(self, student_id: int) -> list[RiskFactor]: ...

    def tier_counts(self, school_ids: Sequence[int]) -> dict[str, int]: ...

    def new_high_risk_count(self, student_ids: QuerySet, since: dt.datetime | None) -> int: ...

    def top_risers(self, school_ids: Sequence[int], limit: int) -> list[StudentRisk]:
        """The students of these schools whose risk rose the most since last week."""
        ...

    def annotate(self, enrollments: QuerySet[Enrollment]) -> QuerySet[Enrollment]:
        """Add `risk_probability` (and `risk_change`) so the caseload sorts by risk in SQL."""
        ...

    def filter(
        self, enrollments: QuerySet[Enrollment], *, tier: str, rising: bool
    ) -> QuerySet[Enrollment]: ...


class NoPredictions:
    """The risk source until the predictions app lands: nothing to show, no queries."""

    available = False

    def for_students(self, student_ids: Sequence[int]) -> dict[int, StudentRisk]:
        return {}

    def history(self, student_id: int) -> list[RiskPoint]:
        return []

    def factors(self, student_id: int) -> list[RiskFactor]:
        return []

    def tier_counts(self, school_ids: Sequence[int]) -> dict[str, int]:
        return {}

    def new_high_risk_count(self, student_ids: QuerySet, since: dt.datetime | None) -> int:
        return 0

    def top_risers(self, school_ids: Sequence[int], limit: int) -> list[StudentRisk]:
        return []

    def annotate(self, enrollments: QuerySet[Enrollment]) -> QuerySet[Enrollment]:
        return enrollments

    def filter(
        self, enrollments: QuerySet[Enrollment], *, tier: str, rising: bool
    ) -> QuerySet[Enrollment]:
        return enrollments


NO_PREDICTIONS = NoPredictions()
_source: RiskSource | None = None  # set by tests; None = ask the installed provider
_provider: Callable[[], RiskSource | None] | None = None


def risk_source() -> RiskSource:
    """The swapped-in source, else the predictions app's (when a model is active), else none."""
    if _source is not None:
        return _source
    if _provider is not None:
        found = _provider()
        if found is not None:
            return found
    return NO_PREDICTIONS


def risk_source_set(source: RiskSource | None) -> RiskSource | None:
    """Swap the source (tests); None goes back to the provider. Returns the previous one."""
    global _source
    previous, _source = _source, source
    return previous


def risk_provider_set(provider: Callable[[], RiskSource | None] | None) -> None:
    """Install the function that returns the real source, or None when there are no scores.

    The predictions app installs it in its ready(); it answers in at most one query
    per request, so the pages' query counts stay fixed.
    """
    global _provider
    _provider = provider
