"""Writes of the predictions app (STYLE rule 3); one module per concern."""

from apps.predictions.services.promotion import (
    PromotionRefused,
    model_version_promote,
    promotion_check,
)
from apps.predictions.services.runs import (
    run_error_text,
    training_run_claim,
    training_run_execute,
    training_run_request,
    training_runs_fail_stale,
)
from apps.predictions.services.training import (
    TrainingDataError,
    TrainingOptions,
    model_version_train,
)

__all__ = [
    "PromotionRefused",
    "TrainingDataError",
    "TrainingOptions",
    "model_version_promote",
    "model_version_train",
    "promotion_check",
    "run_error_text",
    "training_run_claim",
    "training_run_execute",
    "training_run_request",
    "training_runs_fail_stale",
]
