"""The dashboards' risk source over Prediction rows (the contract: apps/dashboards/risk.py).

Every method answers in one query whatever the number of rows; "current"
means each student's latest prediction by the active model. The active model
is looked up once per request (reset by Django's request signals), so a page
costs exactly one more query than without scores.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Sequence
from typing import Any

from django.db.models import F, OuterRef, QuerySet, Subquery, Window
from django.db.models.functions import RowNumber

from apps.dashboards.risk import RiskFactor, RiskPoint, RiskSource, StudentRisk
from apps.predictions.models import ModelStatus, ModelVersion, Prediction
from apps.predictions.sentences import factor_sentence
from apps.students.models import Enrollment


class PredictionRiskSource:
    available = True

    def __init__(self, model_version_id: int) -> None:
        self.model_version_id = model_version_id

    # ------------------------------------------------------------------ helpers

    def _rows(self) -> QuerySet[Prediction]:
        return Prediction.objects.filter(model_version_id=self.model_version_id)

    def _current(self, rows: QuerySet[Prediction]) -> QuerySet[Prediction]:
        return rows.annotate(
            current_rank=Window(
                RowNumber(),
                partition_by=[F("student_id")],
                order_by=[F("week_start").desc(), F("created_at").desc()],
            )
        ).filter(current_rank=1)

    def _latest(self, field: str) -> Subquery:
        return Subquery(
            self._rows()
            .filter(student_id=OuterRef("student_id"))
            .order_by("-week_start", "-created_at")
            .values(field)[:1]
        )

    @staticmethod
    def _risk(p: Prediction) -> StudentRisk:
        factors = p.factors or []
        return StudentRisk(
            student_id=p.student_id,
            prediction_id=p.pk,
            tier=p.tier,
            probability=p.probability,
            change_since_last_week=p.change_since_previous,
            top_reason=factor_sentence(factors[0]) if factors else "",
            scored_at=p.created_at,
        )

    # ------------------------------------------------------------------ protocol

    def for_students(self, student_ids: Sequence[int]) -> dict[int, StudentRisk]:
        if not student_ids:
            return {}
        rows = self._current(self._rows().filter(student_id__in=list(student_ids)))
        return {p.student_id: self._risk(p) for p in rows}

    def history(self, student_id: int) -> list[RiskPoint]:
        rows = self._rows().filter(student_id=student_id).order_by("week_start")
        return [RiskPoint(p.week_start, p.probability, p.tier) for p in rows]

    def factors(self, student_id: int) -> list[RiskFactor]:
        latest = (
            self._rows()
            .filter(student_id=student_id)
            .order_by("-week_start", "-created_at")
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
        counts: dict[str, int] = {}
        rows = self._current(self._rows().filter(school_id__in=list(school_ids)))
        for tier in rows.values_list("tier", flat=True):
            counts[tier] = counts.get(tier, 0) + 1
        return counts

    def new_high_risk_count(self, student_ids: QuerySet, since: dt.datetime | None) -> int:
        rows = self._current(self._rows().filter(student_id__in=student_ids.values("pk")))
        ids = [
            created
            for tier, created in rows.values_list("tier", "created_at")
            if tier == "high" and (since is None or created > since)
        ]
        return len(ids)

    def top_risers(self, school_ids: Sequence[int], limit: int) -> list[StudentRisk]:
        rows = self._current(self._rows().filter(school_id__in=list(school_ids)))
        rising = [p for p in rows if (p.change_since_previous or 0) > 0]
        rising.sort(key=lambda p: (-(p.change_since_previous or 0), p.student_id))
        return [self._risk(p) for p in rising[:limit]]

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
