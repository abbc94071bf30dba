"""Continuous learning: fine-tune the active model on what was learnt since it was trained.

New labels come from the outcomes observed since the active model's training data
ended (the weekly features of those weeks and who dropped out); the students
counselors gave feedback on since then (apps.feedback.TrainingFeedback) count
twice, because a verdict says the model was looked at and judged there. The update
runs ml.ewc.fine_tune_with_ewc so the model does not forget the years it was
trained on, is measured on the active model's own held-out students (so the
promotion check compares like with like) and is registered as a new candidate
ModelVersion; with ``promote`` it goes through the usual promotion check.

A request is a TrainingRun with ``options["mode"] == "update"``; its Celery task id
is chosen up front so the API can answer with it at once.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import time
import traceback
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from celery import Task, shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.accounts.models import User
from apps.feedback.models import TrainingFeedback
from apps.predictions.datasets import SamplingOptions, load_samples, split_students, to_arrays
from apps.predictions.models import ModelVersion, TrainingRun, TrainingStatus
from apps.predictions.services.promotion import PromotionRefused, model_version_promote
from apps.predictions.services.runs import training_run_claim
from apps.predictions.services.training import (
    FeatureStoreSource,
    HistorySource,
    ProgressFn,
    TrainingDataError,
    json_safe,
    training_samples_collect,
)

logger = logging.getLogger(__name__)

UPDATE_MODE = "update"


@transaction.atomic
def model_update_request(
    *,
    requested_by: User | None,
    base: ModelVersion,
    since: dt.date | None = None,
    epochs: int = 3,
    ewc_lambda: float = 100.0,
    promote: bool = False,
    enqueue: bool = True,
) -> TrainingRun:
    """Record an update of ``base``; with ``enqueue`` the ml queue runs it after commit."""
    task_id = str(uuid.uuid4())
    run = TrainingRun.objects.create(
        requested_by=requested_by,
        data_from=since or base.data_to,
        data_to=None,
        options={
            "mode": UPDATE_MODE,
            "base": base.pk,
            "epochs": epochs,
            "ewc_lambda": ewc_lambda,
            "task_id": task_id,
        },
        promote=promote,
    )
    if enqueue:
        # After commit: a worker that starts at once must find the row.
        transaction.on_commit(lambda: update_model.apply_async(args=[run.pk], task_id=task_id))
    return run


def model_update_execute(
    *,
    run_id: int,
    source: HistorySource | None = None,
    progress: ProgressFn | None = None,
) -> TrainingRun | None:
    """Claim and run an update request; None when it was not ours to run."""
    if not training_run_claim(run_id=run_id):
        return None
    run = TrainingRun.objects.select_related("requested_by").get(pk=run_id)

    def report(event: dict[str, Any]) -> None:
        TrainingRun.objects.filter(pk=run_id).update(
            progress=json_safe(event), updated_at=timezone.now()
        )
        if progress is not None:
            progress(event)

    try:
        version = _fine_tune(run, source=source or FeatureStoreSource(), report=report)
    except Exception as error:
        TrainingRun.objects.filter(pk=run_id).update(
            status=TrainingStatus.FAILED,
            error=f"{error}\n\n{traceback.format_exc()}"[-10000:],
            finished_at=timezone.now(),
            updated_at=timezone.now(),
        )
        raise
    outcome: dict[str, Any] = {"stage": "done", "model_version": version.pk, "mode": UPDATE_MODE}
    if run.promote:
        try:
            model_version_promote(model_version=version, user=run.requested_by)
            outcome["promoted"] = True
        except PromotionRefused as refusal:
            outcome.update(promoted=False, promotion_refused=str(refusal))
    run.status = TrainingStatus.SUCCEEDED
    run.model_version = version
    run.finished_at = timezone.now()
    run.progress = json_safe(outcome)
    run.save(update_fields=["status", "model_version", "finished_at", "progress", "updated_at"])
    return run


def _fine_tune(run: TrainingRun, *, source: HistorySource, report: ProgressFn) -> ModelVersion:
    from ml.checkpoint import load_checkpoint, save_loaded_model
    from ml.ewc import fine_tune_with_ewc
    from ml.inference import Scorer
    from ml.metrics import evaluate

    started_at = timezone.now()
    clock = time.perf_counter()
    base = ModelVersion.objects.get(pk=run.options["base"])
    loaded = load_checkpoint(base.path, expected_feature_version=base.feature_version)
    if source.feature_version != base.feature_version:
        raise TrainingDataError(
            _("The feature store has changed version since this model was trained; retrain it.")
        )
    today = timezone.localdate()
    sampling = SamplingOptions(
        prediction_weeks=int(base.train_config.get("prediction_weeks", 6) or 6),
        min_week=3,
        horizon_days=int(base.label_spec.get("horizon_days", 0) or 0),
        data_from=run.data_from,
        data_to=None,
    )
    samples = training_samples_collect(
        source=source, sampling=sampling, today=today, progress=report
    )
    if samples is None or len(samples) == 0:
        raise TrainingDataError(
            _("No new labelled weeks since the active model was trained: nothing to learn yet.")
        )
    # Feedback since the update window opened weighs double: repeat those students' samples.
    judged = set(
        TrainingFeedback.objects.filter(
            created_at__date__gte=run.data_from or base.data_to
        ).values_list("student_id", flat=True)
    )
    repeat = np.flatnonzero(np.isin(samples.student_ids, list(judged)))
    split_of = split_students(samples.student_ids, test_fraction=0.01, val_fraction=0.2)
    which = np.array([split_of[int(pk)] for pk in samples.student_ids])
    train_idx = np.concatenate([np.flatnonzero(which != "val"), repeat[which[repeat] != "val"]])
    val_idx = np.flatnonzero(which == "val")
    vocabulary = base.feature_spec["categories"]
    vocab = [vocabulary[c] for c in base.feature_spec["static_categorical_columns"]]
    new_a = to_arrays(samples.subset(np.sort(train_idx)), vocab)
    val_a = to_arrays(samples.subset(val_idx), vocab) if len(val_idx) else None
    if new_a.labels is None or len(np.unique(new_a.labels)) < 2:
        raise TrainingDataError(_("The new labels are all of one class: nothing to learn yet."))
    holdout = base.holdout_file
    if holdout is None or not holdout.is_file():
        raise TrainingDataError(_("The active model's held-out students are missing."))
    old_a = to_arrays(load_samples(holdout), vocab)
    report({"stage": "fine-tuning", "samples": len(new_a.labels), "feedback_students": len(judged)})
    result = fine_tune_with_ewc(
        loaded,
        new_a,
        old_a,
        lambda_=float(run.options.get("ewc_lambda", 100.0)),
        epochs=int(run.options.get("epochs", 3)),
        val_arrays=val_a if val_a is not None and val_a.labels is not None else None,
        device="cpu",
        progress=lambda record: report({"stage": "fine-tuning", **record}),
    )
    name = f"{base.feature_version}-update-{started_at:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"
    relative = Path(base.feature_version) / f"{name}.pt"
    model_dir = Path(settings.EDUPULSE_MODEL_DIR)
    (model_dir / relative).parent.mkdir(parents=True, exist_ok=True)
    save_loaded_model(model_dir / relative, result.loaded)
    # Measured on the base model's held-out students: the promotion check compares
    # the two on the same students.
    probs = Scorer(result.loaded, device="cpu").score(old_a)
    assert old_a.labels is not None
    metrics = evaluate(old_a.labels, probs, result.loaded.thresholds, old_a.group)
    weeks = samples.week_starts.astype("datetime64[D]")
    row = json_safe(
        {
            "metrics": metrics,
            "baseline_metrics": base.baseline_metrics,
            "subgroup_metrics": metrics.get("subgroups", {}),
            "calibration": metrics.get("reliability", []),
            "thresholds": result.loaded.thresholds.to_dict() if result.loaded.thresholds else {},
            "history": result.history,
            "model_config": base.model_config,
            "train_config": {
                **base.train_config,
                "mode": UPDATE_MODE,
                "base_model_version": base.name,
                "ewc_lambda": run.options.get("ewc_lambda"),
                "epochs": run.options.get("epochs"),
            },
            "dataset": {
                "samples": {"update": int(len(new_a.labels))},
                "feedback_students": len(judged),
            },
            "timings": {"total_s": time.perf_counter() - clock},
            "feature_spec": base.feature_spec,
            "label_spec": base.label_spec,
        }
    )
    with transaction.atomic():
        return ModelVersion.objects.create(
            name=name,
            file_path=str(relative),
            holdout_path=base.holdout_path,
            feature_version=base.feature_version,
            data_from=base.data_from,
            data_to=max(base.data_to, weeks.max().item() + dt.timedelta(days=6)),
            trained_by=run.requested_by,
            training_started_at=started_at,
            training_finished_at=timezone.now(),
            **row,
        )


# The task lives beside its service: apps.predictions.tasks belongs to the training
# pipeline. Its name keeps it on the `ml` queue (CELERY_TASK_ROUTES), and
# CELERY_IMPORTS makes the worker load this module.
@shared_task(bind=True, acks_late=True, name="apps.predictions.tasks.update_model")
def update_model(self: Task, run_id: int) -> dict[str, Any]:
    def report(event: dict[str, Any]) -> None:
        if not self.request.is_eager and self.request.id:
            self.update_state(state="PROGRESS", meta=json_safe(event))

    run = model_update_execute(run_id=run_id, progress=report)
    if run is None:
        return {"run": run_id, "claimed": False}
    return {
        "run": run_id,
        "claimed": True,
        "status": run.status,
        "model_version": run.model_version_id,
        "promoted": bool(run.progress.get("promoted")),
    }
