import datetime as dt
from typing import Any

from celery import Task, shared_task

from apps.predictions.services import training_run_execute, training_runs_fail_stale


@shared_task(bind=True, acks_late=True)
def train_model(self: Task, run_id: int) -> dict[str, Any]:
    """Train the model a TrainingRun asks for; routed to the `ml` queue by its name."""

    def report(event: dict[str, Any]) -> None:
        # With a result backend, `AsyncResult(id).info` shows the latest progress.
        if not self.request.is_eager and self.request.id:
            self.update_state(state="PROGRESS", meta=event)

    run = training_run_execute(run_id=run_id, progress=report)
    if run is None:
        return {"run": run_id, "claimed": False}
    return {
        "run": run_id,
        "claimed": True,
        "status": run.status,
        "model_version": run.model_version_id,
        "promoted": bool(run.progress.get("promoted")),
    }


@shared_task(name="apps.predictions.tasks.runs_fail_stale_task")
def runs_fail_stale_task() -> dict[str, list[int]]:
    """Runs on the default queue (see its beat schedule): the ml worker may be the dead one."""
    from apps.predictions.services.scoring_runs import scoring_runs_fail_stale

    return {"training": training_runs_fail_stale(), "scoring": scoring_runs_fail_stale()}


# --------------------------------------------------------------------------- scoring


@shared_task(acks_late=True)
def score_school(run_id: int, school_id: int) -> dict[str, Any]:
    """One school of a scoring run; idempotent (the rows are upserted)."""
    from apps.predictions.services.scoring_runs import scoring_school_execute

    return scoring_school_execute(run_id=run_id, school_id=school_id)


@shared_task(acks_late=True)
def score_finish(results: list[dict[str, Any]], run_id: int) -> dict[str, Any]:
    """The chord's body: total the schools' results on the ScoringRun."""
    from apps.predictions.services.scoring_runs import scoring_run_finish

    run = scoring_run_finish(run_id=run_id, results=results)
    return {"run": run.pk, "status": run.status, "predictions": run.predictions}


@shared_task(acks_late=True)
def score_district(run_id: int | None = None, as_of: str | None = None) -> dict[str, Any]:
    """Fan a scoring run out by school (a chord on the ml queue).

    Without `run_id` (the nightly schedule, a feature update) a run is created
    for every school at `as_of` (default: the latest week with features).
    """
    from celery import chord

    from apps.predictions.loader import NoActiveModel
    from apps.predictions.models import ScoringRun
    from apps.predictions.services.scoring_runs import (
        scoring_run_request,
        scoring_run_schools,
        scoring_run_start,
    )

    if run_id is None:
        try:
            run = scoring_run_request(
                as_of=dt.date.fromisoformat(as_of) if as_of else None, trigger="schedule"
            )
        except NoActiveModel:
            return {"run": None, "skipped": "no active model"}
    else:
        run = ScoringRun.objects.get(pk=run_id)
    scoring_run_start(run=run)
    schools = scoring_run_schools(run)
    if not schools:
        result = score_finish.apply(args=([], run.pk)).get()
        return {"run": run.pk, "schools": 0, **result}
    workflow = chord(score_school.s(run.pk, pk) for pk in schools)(score_finish.s(run.pk))
    return {"run": run.pk, "schools": len(schools), "task": workflow.id}


@shared_task(acks_late=True)
def score_students_updated(*, student_ids: list[int], source: str = "") -> dict[str, Any]:
    """Re-score students after their features changed, as one ScoringRun."""
    from apps.predictions.loader import NoActiveModel
    from apps.predictions.services.scoring_runs import scoring_students_execute

    try:
        run = scoring_students_execute(student_ids=student_ids, trigger=f"features {source}")
    except NoActiveModel:
        return {"run": None, "skipped": "no active model"}
    return {"run": run.pk, "status": run.status, "predictions": run.predictions}
