from typing import Any

from celery import Task, shared_task

from apps.predictions.services import training_run_execute


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
