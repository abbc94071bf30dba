import datetime as dt
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.accounts.models import User
from apps.predictions.selectors import model_version_active
from apps.predictions.services import (
    TrainingDataError,
    training_run_execute,
    training_run_request,
)


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{value!r} is not a date like 2026-06-30.") from None


class Command(BaseCommand):
    help = (
        "Train a dropout-risk model on the weekly feature store, evaluate it and the "
        "baselines on held-out students, and register it as a candidate ModelVersion. "
        "With --promote it becomes the active model unless it is worse than the active one. "
        "With --queue the ml Celery queue trains it instead of this process."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--from", dest="data_from", type=_date, default=None)
        parser.add_argument("--to", dest="data_to", type=_date, default=None)
        parser.add_argument("--epochs", type=int, default=None)
        parser.add_argument("--batch-size", type=int, default=None)
        parser.add_argument("--hidden-size", type=int, default=None)
        parser.add_argument("--lr", type=float, default=None)
        parser.add_argument("--seed", type=int, default=None)
        parser.add_argument(
            "--prediction-weeks", type=int, default=None, help="Samples per student-year."
        )
        parser.add_argument(
            "--max-train-samples", type=int, default=None, help="Cap, to bound the run time."
        )
        parser.add_argument("--target-recall", type=float, default=None)
        parser.add_argument(
            "--horizon-days",
            type=int,
            default=None,
            help="Label window after the prediction week; 0 = end of the academic year.",
        )
        parser.add_argument("--device", default=None, help="auto (default), cpu or cuda.")
        parser.add_argument(
            "--threads",
            type=int,
            default=None,
            help="CPU threads for torch (default: torch's choice); 1 is fastest on a busy machine.",
        )
        parser.add_argument("--promote", action="store_true")
        parser.add_argument("--user", default=None, help="Record this username as the trainer.")
        parser.add_argument("--queue", action="store_true", help="Enqueue on the ml queue.")
        parser.add_argument(
            "--if-none-active",
            action="store_true",
            help="Do nothing (and succeed) when a model is already active; the demo re-runs use it.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["if_none_active"] and model_version_active() is not None:
            self.stdout.write("A model is already active; nothing trained.")
            return
        keys = [
            "epochs",
            "batch_size",
            "hidden_size",
            "lr",
            "seed",
            "prediction_weeks",
            "max_train_samples",
            "target_recall",
            "horizon_days",
            "device",
        ]
        training_options = {k: options[k] for k in keys if options[k] is not None}
        user = None
        if options["user"]:
            user = User.objects.filter(username=options["user"]).first()
            if user is None:
                raise CommandError(f"No user named {options['user']!r}.")
        try:
            run = training_run_request(
                requested_by=user,
                data_from=options["data_from"],
                data_to=options["data_to"],
                options=training_options,
                promote=options["promote"],
                enqueue=options["queue"],
            )
        except ValidationError as error:
            raise CommandError("; ".join(error.messages)) from None
        except PermissionDenied as error:
            raise CommandError(str(error)) from None
        if options["queue"]:
            self.stdout.write(f"Training run {run.pk} is queued on the ml queue.")
            return
        if options["threads"]:
            import torch

            torch.set_num_threads(options["threads"])
        try:
            done = training_run_execute(run_id=run.pk, progress=self._progress)
        except TrainingDataError as error:
            raise CommandError(str(error)) from None
        if done is None or done.model_version is None:
            raise CommandError(f"Training run {run.pk} was taken by another worker.")
        self._summary(done.model_version, done.progress)

    def _progress(self, event: dict[str, Any]) -> None:
        stage = event.get("stage")
        if stage == "samples" and event.get("skipped"):
            self.stdout.write(
                f"  samples: year {event['academic_year']} skipped, its label windows are "
                "still open"
            )
        elif stage == "samples":
            self.stdout.write(
                f"  samples: year {event['academic_year']}, {event['students']} students read, "
                f"{event['samples']} labelled samples so far"
            )
        elif stage == "split":
            self.stdout.write(
                f"  split by student: {event['train']} train / {event['val']} validation / "
                f"{event['test']} held-out samples"
            )
        elif stage == "training":
            roc = event.get("val_roc_auc")
            self.stdout.write(
                f"  epoch {event['epoch'] + 1}/{event['epochs']}: loss {event['train_loss']:.4f}, "
                f"validation PR-AUC {event['val_pr_auc']:.3f}, ROC-AUC "
                f"{'-' if roc is None else f'{roc:.3f}'} ({event['seconds']:.1f}s)"
            )
        elif stage in {"evaluating", "baselines"}:
            self.stdout.write(f"  {stage}...")

    def _summary(self, version: Any, outcome: dict[str, Any]) -> None:
        def fmt(value: Any) -> str:
            return "-" if value is None else f"{value:.3f}"

        metrics = version.metrics
        self.stdout.write(f"Model version {version.pk} ({version.name}), held-out results:")
        self.stdout.write(f"  {'':<12} {'ROC-AUC':>8} {'PR-AUC':>8}")
        self.stdout.write(
            f"  {'EduPulse':<12} {fmt(metrics.get('roc_auc')):>8} {fmt(metrics.get('pr_auc')):>8}"
        )
        for name, values in version.baseline_metrics.items():
            self.stdout.write(
                f"  {name:<12} {fmt(values.get('roc_auc')):>8} {fmt(values.get('pr_auc')):>8}"
            )
        beats = (metrics.get("comparison") or {}).get("beats_all_baselines")
        self.stdout.write(f"  beats every baseline: {'yes' if beats else 'no'}")
        if outcome.get("promoted"):
            self.stdout.write(self.style.SUCCESS("It is now the active model."))
        elif "promotion_refused" in outcome:
            self.stdout.write(self.style.WARNING(f"Not promoted: {outcome['promotion_refused']}"))
        total = version.timings.get("total_s")
        if total is not None:
            self.stdout.write(f"  took {total:.1f}s")
