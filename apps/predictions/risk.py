"""The dashboards' risk source over Prediction rows (the contract: apps/dashboards/risk.py).

Every method answers in a fixed number of queries (one; two for
`for_students`) whatever the number of rows. "Current" means each student's
latest prediction by the active model, found with one step on the
(student, week, model) index per student: it costs the same in week 40 as in
week 2, where a window over every student's history grew with each week
scored. The schools' students (`tier_counts`, `top_risers`) are those
enrolled there now. The active model is looked up once per request (reset by
Django's request signals).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Sequence
from typing import Any

from django.db.models import (
    BooleanField,
    Count,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
)

from apps.dashboards.risk import RiskFactor, RiskPoint, RiskSource, StudentRisk
from apps.predictions.models import ModelStatus, ModelVersion, Prediction
from apps.predictions.sentences import factor_sentence
from apps.students.models import Enrollment, Student

# What a StudentRisk is made of, as plain values: an export reads thousands,
# and of the stored factors only the first (the top reason) is shown.
RISK_VALUES = (
    "student_id",
    "pk",
    "tier",
    "probability",
    "change_since_previous",
    "factors__0",
    "created_at",
)


class PredictionRiskSource:
    available = True

    def __init__(self, model_version_id: int) -> None:
        self.model_version_id = model_version_id

    # ------------------------------------------------------------------ helpers

    def _rows(self) -> QuerySet[Prediction]:
        return Prediction.objects.filter(model_version_id=self.model_version_id)

    def _latest(self, field: str, *, student: str = "student_id") -> Subquery:
        """`field` of the current prediction of the outer row's student.

        One backward step on the (student, week, model) unique index per
        student, whatever the length of their history. One model has at most
        one row per student and week, so the week alone orders them.
        """
        return Subquery(
            self._rows()
            .filter(student_id=OuterRef(student))
            .order_by("-week_start")
            .values(field)[:1]
        )

    def _current_of(self, students: QuerySet[Student]) -> QuerySet[Prediction]:
        """The current predictions of these students, found per student.

        The ids come first (one index step per student), then the rows by
        primary key: a window over every student's history, or a join
        PostgreSQL would plan as a scan of the whole table, costs more with
        each week scored.
        """
        ids = [
            pk
            for pk in students.order_by()
            .annotate(current=self._latest("pk", student="pk"))
            .values_list("current", flat=True)
            if pk is not None
        ]
        return self._rows().filter(pk__in=ids)

    @staticmethod
    def _enrolled_at(school_ids: Sequence[int]) -> QuerySet[Student]:
        """The schools' students now: those with an enrollment there that has not ended."""
        return Student.objects.filter(
            pk__in=Enrollment.objects.filter(
                school_id__in=list(school_ids), exit_date__isnull=True
            ).values("student_id")
        )

    @staticmethod
    def _risks(rows: QuerySet[Prediction]) -> list[StudentRisk]:
        return [
            StudentRisk(
                student_id=student_id,
                prediction_id=pk,
                tier=tier,
                probability=probability,
                change_since_last_week=change,
                top_reason=factor_sentence(top) if top else "",
                scored_at=created_at,
            )
            for student_id, pk, tier, probability, change, top, created_at in rows.values_list(
                *RISK_VALUES
            )
        ]

    # ------------------------------------------------------------------ protocol

    def for_students(self, student_ids: Sequence[int]) -> dict[int, StudentRisk]:
        if not student_ids:
            return {}
        rows = self._current_of(Student.objects.filter(pk__in=list(student_ids)))
        return {risk.student_id: risk for risk in self._risks(rows)}

    def history(self, student_id: int) -> list[RiskPoint]:
        rows = self._rows().filter(student_id=student_id).order_by("week_start")
        return [RiskPoint(p.week_start, p.probability, p.tier) for p in rows]

    def factors(self, student_id: int) -> list[RiskFactor]:
        latest = (
            self._rows()
            .filter(student_id=student_id)
            .order_by("-week_start")
            .only("factors")
            .first()
        )
        if latest is None:
            return []
        return [
            RiskFactor(
                sentence=factor_sentence(f),
                weeks=tuple(dt.date.fromisoformat(w) for w in f.get("weeks", [])),
            )
            for f in latest.factors or []
        ]

    def tier_counts(self, school_ids: Sequence[int]) -> dict[str, int]:
        # Grouped by the subquery itself: a filter on it would run it twice per student.
        rows = (
            self._enrolled_at(school_ids)
            .order_by()
            .annotate(tier=self._latest("tier", student="pk"))
            .values("tier")
            .annotate(students=Count("pk"))
        )
        return {row["tier"]: row["students"] for row in rows if row["tier"] is not None}

    def new_high_risk_count(self, student_ids: QuerySet, since: dt.datetime | None) -> int:
        new_high = Q(tier="high") if since is None else Q(tier="high", created_at__gt=since)
        is_new_high = Subquery(
            self._rows()
            .filter(student_id=OuterRef("pk"))
            .order_by("-week_start")
            .annotate(new_high=ExpressionWrapper(new_high, output_field=BooleanField()))
            .values("new_high")[:1]
        )
        return (
            Student.objects.filter(pk__in=student_ids.values("pk"))
            .annotate(new_high=is_new_high)
            .filter(new_high=True)
            .count()
        )

    def top_risers(self, school_ids: Sequence[int], limit: int) -> list[StudentRisk]:
        # The largest changes first, then only the rises among them: a filter on
        # the change would look it up twice per student.
        largest = (
            self._enrolled_at(school_ids)
            .annotate(
                current=self._latest("pk", student="pk"),
                change=self._latest("change_since_previous", student="pk"),
            )
            .order_by(F("change").desc(nulls_last=True), "pk")
            .values("current")[:limit]
        )
        risers = self._risks(self._rows().filter(pk__in=largest))
        return sorted(
            (r for r in risers if r.is_rising),
            key=lambda r: (-(r.change_since_last_week or 0), r.student_id),
        )

    def annotate(self, enrollments: QuerySet[Enrollment]) -> QuerySet[Enrollment]:
        return enrollments.annotate(
            risk_probability=self._latest("probability"),
            risk_change=self._latest("change_since_previous"),
        )

    def filter(
        self, enrollments: QuerySet[Enrollment], *, tier: str, rising: bool
    ) -> QuerySet[Enrollment]:
        conditions: dict[str, Any] = {}
        if tier:
            conditions["risk_tier"] = tier
        if rising:
            conditions["risk_rise__gt"] = 0
        if not conditions:
            return enrollments
        return enrollments.annotate(
            risk_tier=self._latest("tier"), risk_rise=self._latest("change_since_previous")
        ).filter(**conditions)


# ----------------------------------------------------------------------- the provider

_local = threading.local()
_UNSET = object()


def request_started(**kwargs: Any) -> None:
    _local.in_request = True
    _local.source = _UNSET


def request_finished(**kwargs: Any) -> None:
    _local.in_request = False
    _local.source = _UNSET


def prediction_risk_source() -> RiskSource | None:
    """The source over the active model's rows, or None when no model is active."""
    in_request = getattr(_local, "in_request", False)
    if in_request and getattr(_local, "source", _UNSET) is not _UNSET:
        return _local.source  # type: ignore[no-any-return]
    pk = ModelVersion.objects.filter(status=ModelStatus.ACTIVE).values_list("pk", flat=True).first()
    source = None if pk is None else PredictionRiskSource(pk)
    if in_request:
        _local.source = source
    return source
