"""Reads of the model registry, and the model card as plain rows for templates."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import QuerySet
from django.utils.translation import gettext as _

from apps.predictions.models import (
    ModelStatus,
    ModelVersion,
    Notification,
    Prediction,
    ScoringRun,
    TrainingRun,
)
from apps.students.models import Gender, Region


def model_version_active() -> ModelVersion | None:
    return ModelVersion.objects.filter(status=ModelStatus.ACTIVE).first()


def model_versions_list() -> QuerySet[ModelVersion]:
    return ModelVersion.objects.select_related("trained_by", "promoted_by")


def training_runs_list() -> QuerySet[TrainingRun]:
    return TrainingRun.objects.select_related("requested_by", "model_version")


def _baseline_label(name: str) -> str:
    labels = {
        "indicator": _("Indicator rule (attendance, behaviour, course failure)"),
        "logistic": _("Logistic regression"),
        "gbt": _("Gradient-boosted trees"),
    }
    return labels.get(name, name)


def _group_label(group: str, value: str, regions: dict[str, str]) -> str:
    if group == "gender":
        return str(dict(Gender.choices).get(value, value))
    if group == "region":
        return regions.get(value, value)
    if value == "yes":
        return _("Yes")
    if value == "no":
        return _("No")
    return value


def _subgroup_title(group: str) -> str:
    titles = {
        "gender": _("Gender"),
        "region": _("Region"),
        "stipend": _("Receives a stipend"),
        "disability": _("Has a disability"),
    }
    return titles.get(group, group)


def model_card(version: ModelVersion) -> dict[str, Any]:
    """Everything the card shows, already in display order; one query for region names."""
    metrics = version.metrics or {}
    comparison = (metrics.get("comparison") or {}).get("margins", {})
    rows = [
        {
            "name": _("EduPulse model"),
            "roc_auc": metrics.get("roc_auc"),
            "pr_auc": metrics.get("pr_auc"),
            "brier": metrics.get("brier"),
            "is_model": True,
        }
    ]
    for name, values in (version.baseline_metrics or {}).items():
        rows.append(
            {
                "name": _baseline_label(name),
                "roc_auc": values.get("roc_auc"),
                "pr_auc": values.get("pr_auc"),
                "brier": values.get("brier"),
                "margin_roc_auc": (comparison.get(name) or {}).get("roc_auc"),
                "margin_pr_auc": (comparison.get(name) or {}).get("pr_auc"),
                "is_model": False,
            }
        )
    subgroups = version.subgroup_metrics or {}
    region_ids = [int(v) for v in (subgroups.get("region") or {}).get("groups", {}) if v.isdigit()]
    regions = {
        str(pk): name
        for pk, name in Region.objects.filter(pk__in=region_ids).values_list("pk", "name")
    }
    subgroup_tables = []
    for group in ("gender", "region", "stipend", "disability"):
        data = subgroups.get(group)
        if not data:
            continue
        subgroup_tables.append(
            {
                "title": _subgroup_title(group),
                "fpr_ratio": data.get("fpr_ratio"),
                "fnr_ratio": data.get("fnr_ratio"),
                "rows": [
                    {"label": _group_label(group, value, regions), **values}
                    for value, values in sorted(data.get("groups", {}).items())
                ],
            }
        )
    thresholds = version.thresholds or {}
    tiers = []
    for key, title, recall_key in (
        ("high", _("High risk"), "target_recall"),
        ("watch", _("Watch"), "watch_recall"),
    ):
        at = metrics.get(f"at_{key}") or {}
        tiers.append(
            {
                "title": title,
                "threshold": thresholds.get(key),
                "target_recall": thresholds.get(recall_key),
                "precision": at.get("precision"),
                "recall": at.get("recall"),
                "flagged_fraction": at.get("flagged_fraction"),
            }
        )
    indicator_at_risk = (version.baseline_metrics or {}).get("indicator", {}).get("at_risk")
    return {
        "version": version,
        "comparison_rows": rows,
        "beats_all_baselines": (metrics.get("comparison") or {}).get("beats_all_baselines"),
        "calibration": [row for row in (version.calibration or []) if row.get("count")],
        "ece": metrics.get("ece"),
        "tiers": tiers,
        "indicator_at_risk": indicator_at_risk,
        "subgroup_tables": subgroup_tables,
        "by_weeks_seen": metrics.get("by_weeks_seen", []),
        "dataset": version.dataset or {},
        "history": version.history or [],
        "timings": version.timings or {},
        "promotion_report": version.promotion_report or {},
    }


# --------------------------------------------------------------------------- predictions


def predictions_latest_for(students: Iterable[Any]) -> dict[int, Prediction]:
    """Each student's latest prediction by the active model (any model when none is active).

    `students` are Student rows or pks; one query.
    """
    from django.db.models import F, Window
    from django.db.models.functions import RowNumber

    ids = [getattr(s, "pk", s) for s in students]
    rows = Prediction.objects.filter(student_id__in=ids)
    active = model_version_active()
    if active is not None:
        rows = rows.filter(model_version=active)
    ranked = rows.annotate(
        latest_rank=Window(
            RowNumber(),
            partition_by=[F("student_id")],
            order_by=[F("week_start").desc(), F("created_at").desc()],
        )
    ).filter(latest_rank=1)
    return {p.student_id: p for p in ranked}


def prediction_history(student_id: int) -> QuerySet[Prediction]:
    """A student's predictions over time, oldest first (the active model's when there is one)."""
    rows = Prediction.objects.filter(student_id=student_id)
    active = model_version_active()
    if active is not None:
        rows = rows.filter(model_version=active)
    return rows.order_by("week_start")


def scoring_runs_list() -> QuerySet[ScoringRun]:
    return ScoringRun.objects.select_related("model_version", "requested_by")


def notifications_for(user: Any) -> QuerySet[Notification]:
    return Notification.objects.filter(recipient=user).select_related("student", "prediction")
