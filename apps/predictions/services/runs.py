"""Training runs: a request row that exactly one worker (or the command) claims and runs."""

from __future__ import annotations

import datetime as dt
import logging
import traceback
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.accounts.models import User
from apps.predictions.models import TrainingRun, TrainingStatus
from apps.predictions.services.promotion import PromotionRefused, model_version_promote
from apps.predictions.services.training import (
    HistorySource,
    ProgressFn,
    TrainingOptions,
    json_safe,
    model_version_train,
)

logger = logging.getLogger(__name__)


@transaction.atomic
def training_run_request(
    *,
    requested_by: User | None,
    data_from: dt.date | None = None,
    data_to: dt.date | None = None,
    options: dict[str, Any] | None = None,
    promote: bool = False,
    enqueue: bool = True,
) -> TrainingRun:
    """Record a training request; with ``enqueue`` the ml queue runs it after commit."""
    options = options or {}
    TrainingOptions.from_dict(options)  # refuse bad options now, not in the worker
    if promote and requested_by is not None:
        if not requested_by.has_perm("predictions.promote_modelversion"):
            raise PermissionDenied(_("You are not allowed to promote models."))
    if data_from and data_to and data_to < data_from:
        raise ValidationError(_("The end of the date range is before its start."))
    run = TrainingRun.objects.create(
        requested_by=requested_by,
        data_from=data_from,
        data_to=data_to,
        options=options,
        promote=promote,
    )
    if enqueue:
        from apps.predictions.tasks import train_model

        # After commit: a worker that starts at once must find the row.
        transaction.on_commit(lambda: train_model.delay(run.pk))
    return run


def training_run_claim(*, run_id: int) -> bool:
    """Mark a waiting run as running; False when someone else already has it.

    One conditional UPDATE, so two workers handed the same message (acks_late
    redelivery, a double click) can never both train.
    """
    now = timezone.now()
    claimed = TrainingRun.objects.filter(pk=run_id, status=TrainingStatus.PENDING).update(
        status=TrainingStatus.RUNNING, started_at=now, updated_at=now
    )
    return claimed == 1


def _save_progress(run_id: int, event: dict[str, Any]) -> None:
    # Outside any transaction: the admin shows it while training goes on.
    TrainingRun.objects.filter(pk=run_id).update(
        progress=json_safe(event), updated_at=timezone.now()
    )


def training_run_execute(
    *,
    run_id: int,
    progress: ProgressFn | None = None,
    source: HistorySource | None = None,
) -> TrainingRun | None:
    """Claim and run a training run; None when it was not ours to run."""
    if not training_run_claim(run_id=run_id):
        logger.info("training run %s was already claimed", run_id)
        return None
    run = TrainingRun.objects.select_related("requested_by").get(pk=run_id)

    def report(event: dict[str, Any]) -> None:
        _save_progress(run_id, event)
        if progress is not None:
            progress(event)

    try:
        version = model_version_train(
            options=TrainingOptions.from_dict(run.options),
            data_from=run.data_from,
            data_to=run.data_to,
            trained_by=run.requested_by,
            source=source,
            progress=report,
        )
    except Exception as error:
        TrainingRun.objects.filter(pk=run_id).update(
            status=TrainingStatus.FAILED,
            error=f"{error}\n\n{traceback.format_exc()}"[-10000:],
            finished_at=timezone.now(),
            updated_at=timezone.now(),
        )
        raise
    outcome: dict[str, Any] = {"stage": "done", "model_version": version.pk}
    if run.promote:
        try:
            model_version_promote(model_version=version, user=run.requested_by)
            outcome["promoted"] = True
        except (PromotionRefused, PermissionDenied) as refusal:
            # The model is trained and registered either way; only activation failed.
            outcome.update(promoted=False, promotion_refused=str(refusal))
    run.status = TrainingStatus.SUCCEEDED
    run.model_version = version
    run.finished_at = timezone.now()
    run.progress = json_safe(outcome)
    run.save(update_fields=["status", "model_version", "finished_at", "progress", "updated_at"])
    report(outcome)
    return run
