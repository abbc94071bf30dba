"""Make a model version the one that scores students.

A candidate is compared with the active model on the candidate's held-out
students: the split is a hash of the student, so neither model trained on them.
When both use the same feature version the active model is re-scored on exactly
those samples; otherwise (the features changed, the old model cannot read the new
ones) the two stored held-out results are compared, and the report says so.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.accounts.models import Role, User
from apps.predictions.models import ModelStatus, ModelVersion

# Held-out PR-AUC a candidate may lose and still count as "not worse": the
# difference between CPU and GPU arithmetic, not a real change in quality.
PROMOTION_TOLERANCE = 0.002
METRIC = "pr_auc"


class PromotionRefused(Exception):
    def __init__(self, message: str, report: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.report = report or {}


def _score_active_on_holdout(
    candidate: ModelVersion, active: ModelVersion
) -> dict[str, float | None] | None:
    """The active model's held-out metrics on the candidate's held-out samples, if possible."""
    holdout = candidate.holdout_file
    if (
        holdout is None
        or not holdout.exists()
        or not active.path.exists()
        or active.feature_version != candidate.feature_version
        or active.feature_spec.get("feature_columns")
        != candidate.feature_spec.get("feature_columns")
    ):
        return None
    from apps.predictions.datasets import load_samples, to_arrays
    from ml.checkpoint import load_checkpoint
    from ml.inference import Scorer
    from ml.metrics import pr_auc, roc_auc

    samples = load_samples(holdout)
    categories = active.feature_spec.get("categories", {})
    vocabulary = [
        [str(v) for v in categories.get(column, [])]
        for column in active.feature_spec.get("static_categorical_columns", [])
    ]
    arrays = to_arrays(samples, vocabulary)
    loaded = load_checkpoint(active.path, expected_feature_version=active.feature_version)
    probs = Scorer(loaded, device="cpu").score(arrays)
    labels = np.asarray(samples.labels)
    return {"roc_auc": roc_auc(labels, probs), "pr_auc": pr_auc(labels, probs)}


def promotion_check(*, candidate: ModelVersion, active: ModelVersion | None) -> dict[str, Any]:
    """How the candidate compares with the active model; ``worse`` decides the promotion."""
    if active is None:
        return {"compared_with": None, "worse": False}
    ours = candidate.headline(METRIC)
    theirs_same_data = _score_active_on_holdout(candidate, active)
    if theirs_same_data is not None:
        theirs = theirs_same_data[METRIC]
        method = "same_holdout"
    else:
        theirs = active.headline(METRIC)
        method = "stored_metrics"
    worse = ours is None or (theirs is not None and ours < theirs - PROMOTION_TOLERANCE)
    return {
        "compared_with": active.pk,
        "compared_with_name": active.name,
        "metric": METRIC,
        "method": method,
        "candidate": ours,
        "active": theirs,
        "tolerance": PROMOTION_TOLERANCE,
        "worse": worse,
    }


def _is_administrator(user: User | None) -> bool:
    return user is not None and (user.is_superuser or user.role == Role.ADMINISTRATOR)


@transaction.atomic
def model_version_promote(
    *, model_version: ModelVersion, user: User | None, force: bool = False
) -> ModelVersion:
    """Make ``model_version`` active and retire the active one, in one transaction.

    ``user=None`` is the operator of a management command or a scheduled job; they
    may promote a model that is not worse, never force one.
    """
    if user is not None and not user.has_perm("predictions.promote_modelversion"):
        raise PermissionDenied(_("You are not allowed to promote models."))
    if force and not _is_administrator(user):
        raise PermissionDenied(_("Only an administrator can promote a model that is worse."))
    # Lock the candidate and the active row so that two promotions run one after the other.
    candidate = ModelVersion.objects.select_for_update().get(pk=model_version.pk)
    if candidate.status == ModelStatus.ACTIVE:
        raise PromotionRefused(_("This model is already active."))
    active = ModelVersion.objects.select_for_update().filter(status=ModelStatus.ACTIVE).first()
    report = promotion_check(candidate=candidate, active=active)
    if report["worse"] and not force:
        raise PromotionRefused(
            _(
                "The candidate's held-out PR-AUC (%(candidate)s) is below the active model's "
                "(%(active)s); an administrator can force the promotion."
            )
            % {"candidate": _fmt(report.get("candidate")), "active": _fmt(report.get("active"))},
            report,
        )
    now = timezone.now()
    if active is not None:
        active.status = ModelStatus.RETIRED
        active.retired_at = now
        active.save(update_fields=["status", "retired_at", "updated_at"])
    candidate.status = ModelStatus.ACTIVE
    candidate.promoted_at = now
    candidate.promoted_by = user
    candidate.retired_at = None
    candidate.promotion_report = {**report, "forced": bool(force and report["worse"])}
    try:
        # A savepoint, so the caller's transaction survives a lost race.
        with transaction.atomic():
            candidate.save(
                update_fields=[
                    "status",
                    "promoted_at",
                    "promoted_by",
                    "retired_at",
                    "promotion_report",
                    "updated_at",
                ]
            )
    except IntegrityError:
        # Another promotion activated a model between our read and our write.
        raise PromotionRefused(
            _("Another model was promoted at the same time; try again.")
        ) from None
    if model_version is not candidate:
        model_version.refresh_from_db()
    return candidate


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"
