"""Training runs: a request row that exactly one worker (or the command) claims and runs."""

from __future__ import annotations

import datetime as dt
import logging
import traceback
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.accounts.models import User
from apps.common.heartbeat import beating, last_beats
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

# What a run whose worker died records as its error: a code, so the admin can say it in
# the reader's language (run_error_text), not in the sweep's.
WORKER_LOST = "worker_lost"
HEARTBEAT_SECONDS = 60


def _alive_key(run_id: int) -> str:
    return f"predictions:training:{run_id}:alive"


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

    stale_seconds = 60 * settings.EDUPULSE_TRAINING_STALE_MINUTES
    try:
        # Epochs and sample collection can each outlast the stale limit without a
        # progress report; the beat says the worker is alive in between.
        with beating(
            _alive_key(run_id),
            every_seconds=min(HEARTBEAT_SECONDS, stale_seconds / 4),
            ttl_seconds=2 * stale_seconds,
        ):
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


def run_error_text(error: str) -> str:
    """A training or scoring run's recorded error as its reader should see it."""
    if error == WORKER_LOST:
        return _(
            "The worker running this stopped before it finished (restarted, out of memory or "
            "past its time limit). Run it again."
        )
    return error  # an exception's text and traceback, as the worker wrote it


def training_runs_fail_stale(*, older_than: dt.timedelta | None = None) -> list[int]:
    """Mark failed the running runs whose worker stopped beating; returns their ids.

    A worker killed for memory or by the hard time limit never reaches the
    failure handler, and a redelivered task cannot claim a run that is still
    "running": without this the run would show as running forever. Nothing is
    retried automatically (a run that kills its worker would do so again).
    """
    if older_than is None:
        older_than = dt.timedelta(minutes=settings.EDUPULSE_TRAINING_STALE_MINUTES)
    cutoff = timezone.now() - older_than

    def beating_since_cutoff(candidates: list[int]) -> set[int]:
        beats = last_beats(_alive_key(pk) for pk in candidates)
        return {pk for pk in candidates if beats.get(_alive_key(pk), 0.0) >= cutoff.timestamp()}

    return stale_runs_fail(
        TrainingRun.objects.filter(status=TrainingStatus.RUNNING),
        cutoff=cutoff,
        values={"status": TrainingStatus.FAILED, "error": WORKER_LOST},
        still_alive=beating_since_cutoff,
    )


def stale_runs_fail(
    running: QuerySet[Any],
    *,
    cutoff: dt.datetime,
    values: dict[str, Any],
    still_alive: Callable[[list[int]], set[int]] = lambda candidates: set(),
) -> list[int]:
    """Write ``values`` (a failed status) on the running rows untouched since ``cutoff``.

    Each row is updated only if it is still running and still untouched: one that
    moved since it was read (a late progress report) is left alone.
    """
    stale = running.filter(updated_at__lt=cutoff)
    candidates = list(stale.values_list("pk", flat=True))
    alive = still_alive(candidates)
    failed = []
    for pk in candidates:
        if pk in alive:
            continue
        now = timezone.now()
        if stale.filter(pk=pk).update(**values, finished_at=now, updated_at=now):
            logger.warning("%s %s: worker lost, marked failed", running.model.__name__, pk)
            failed.append(pk)
    return failed
