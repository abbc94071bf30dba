"""Batch scoring as a workflow: one ScoringRun, one idempotent task per school, one finish.

The per-school tasks run in parallel on the `ml` queue (a Celery chord); each
upserts its school's rows, so a retried or repeated task replaces, never adds.
The finish task totals the schools' results, so retries never double-count.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from apps.predictions.loader import NoActiveModel
from apps.predictions.models import ModelStatus, ModelVersion, ScoringRun, ScoringStatus
from apps.predictions.services.runs import WORKER_LOST, stale_runs_fail
from apps.predictions.services.scoring import predictions_score, scoring_as_of_default
from apps.students.models import School

logger = logging.getLogger(__name__)


def scoring_run_request(
    *,
    as_of: dt.date | None = None,
    school_ids: Sequence[int] | None = None,
    requested_by: Any = None,
    trigger: str = "",
) -> ScoringRun:
    """A pending run for the active model; NoActiveModel when none is active."""
    from apps.features.calendar import week_start_of

    version = ModelVersion.objects.filter(status=ModelStatus.ACTIVE).first()
    if version is None:
        raise NoActiveModel("no active model version")
    day = as_of or scoring_as_of_default() or timezone.localdate()
    schools = (
        sorted({int(pk) for pk in school_ids})
        if school_ids is not None
        else list(School.objects.order_by("pk").values_list("pk", flat=True))
    )
    return ScoringRun.objects.create(
        model_version=version,
        as_of=day,
        week_start=week_start_of(day),
        school_ids=list(school_ids or []),
        schools_total=len(schools),
        trigger=trigger[:40],
        requested_by=requested_by,
    )


def scoring_run_schools(run: ScoringRun) -> list[int]:
    if run.school_ids:
        return [int(pk) for pk in run.school_ids]
    return list(School.objects.order_by("pk").values_list("pk", flat=True))


def scoring_run_start(*, run: ScoringRun) -> None:
    """Mark the run running; the caller then fans out the schools."""
    now = timezone.now()
    ScoringRun.objects.filter(pk=run.pk).update(
        status=ScoringStatus.RUNNING, started_at=now, updated_at=now
    )


def scoring_school_execute(*, run_id: int, school_id: int) -> dict[str, Any]:
    """Score one school of a run; failures are reported, not raised, so the others go on."""
    run = ScoringRun.objects.select_related("model_version").get(pk=run_id)
    clock = time.perf_counter()
    try:
        counts = predictions_score(school_ids=[school_id], as_of=run.as_of, scoring_run=run)
    except Exception as error:  # noqa: BLE001 - one school's failure is recorded, not fatal
        logger.exception("scoring run %s: school %s failed", run_id, school_id)
        return {"school": school_id, "error": f"{type(error).__name__}: {error}"[:500]}
    # updated_at says the workflow is alive (scoring_runs_fail_stale).
    ScoringRun.objects.filter(pk=run_id).update(
        schools_done=F("schools_done") + 1, updated_at=timezone.now()
    )
    return {"school": school_id, "seconds": time.perf_counter() - clock, **counts.to_dict()}


@transaction.atomic
def scoring_run_finish(*, run_id: int, results: Sequence[dict[str, Any]]) -> ScoringRun:
    """Total the schools' results onto the run."""
    run = ScoringRun.objects.select_for_update().get(pk=run_id)
    failures = [r for r in results if "error" in r]
    done = [r for r in results if "error" not in r]
    run.students = sum(int(r.get("students", 0)) for r in done)
    run.predictions = sum(int(r.get("predictions", 0)) for r in done)
    run.alerts = sum(int(r.get("alerts", 0)) for r in done)
    run.schools_done = len(done)
    run.failures = failures
    run.finished_at = timezone.now()
    started = run.started_at or run.created_at
    run.duration_s = (run.finished_at - started).total_seconds()
    if not failures:
        run.status = ScoringStatus.SUCCEEDED
    elif done:
        run.status = ScoringStatus.PARTIAL
    else:
        run.status = ScoringStatus.FAILED
    run.save()
    logger.info(
        "scoring run %s: %s predictions, %s failures in %.1fs",
        run.pk,
        run.predictions,
        len(failures),
        run.duration_s,
    )
    return run


def scoring_run_fail(*, run_id: int, error: str) -> None:
    ScoringRun.objects.filter(pk=run_id).update(
        status=ScoringStatus.FAILED,
        failures=[{"error": error[:500]}],
        finished_at=timezone.now(),
        updated_at=timezone.now(),
    )


def scoring_runs_fail_stale(*, older_than: dt.timedelta | None = None) -> list[int]:
    """Mark failed the running scoring runs whose workflow stopped; returns their ids.

    A school task killed with its worker is redelivered (acks_late), but a worker
    lost inside `score_district` before the fan-out, or a finishing task that
    failed, leaves the run "running" for ever. Every finished school moves the
    row's updated_at; a run whose schools are merely queued (behind a training on
    the ml queue) is safe as long as the limit exceeds the task time limit. Should
    the workflow finish after all, `scoring_run_finish` records its real outcome.
    """
    if older_than is None:
        older_than = dt.timedelta(minutes=settings.EDUPULSE_SCORING_STALE_MINUTES)
    return stale_runs_fail(
        ScoringRun.objects.filter(status=ScoringStatus.RUNNING),
        cutoff=timezone.now() - older_than,
        values={"status": ScoringStatus.FAILED, "failures": [{"error": WORKER_LOST}]},
    )


def scoring_students_execute(
    *, student_ids: Sequence[int], as_of: dt.date | None = None, trigger: str = ""
) -> ScoringRun:
    """Score some students now (after a feature update), recorded as one run."""
    run = scoring_run_request(as_of=as_of, school_ids=[], trigger=trigger)
    scoring_run_start(run=run)
    run.refresh_from_db()
    try:
        counts = predictions_score(student_ids=student_ids, as_of=run.as_of, scoring_run=run)
    except Exception as error:
        scoring_run_fail(run_id=run.pk, error=f"{type(error).__name__}: {error}")
        raise
    return scoring_run_finish(run_id=run.pk, results=[{"school": None, **counts.to_dict()}])
