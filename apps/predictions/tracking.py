"""Experiment tracking in MLflow, when MLFLOW_TRACKING_URI is set.

MLflow is an optional dependency: it is imported only here, only when a URI is
configured. The client API (not mlflow's global "active run") is used because a
Celery worker may train in several threads. A tracking failure never loses a
trained model: the error is returned and kept on the ModelVersion row, which
holds everything MLflow would have anyway.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from django.conf import settings

logger = logging.getLogger(__name__)


def _flat_params(params: dict[str, Any]) -> dict[str, str]:
    # MLflow params are strings of at most a few thousand characters.
    return {key: str(value)[:500] for key, value in params.items()}


def _flat_metrics(
    metrics: dict[str, Any], baselines: dict[str, dict[str, Any]]
) -> dict[str, float]:
    flat: dict[str, float] = {}
    for key in ("roc_auc", "pr_auc", "brier", "ece"):
        if isinstance(metrics.get(key), int | float):
            flat[f"test_{key}"] = float(metrics[key])
    for tier in ("at_high", "at_watch"):
        for key in ("precision", "recall", "flagged_fraction"):
            value = (metrics.get(tier) or {}).get(key)
            if isinstance(value, int | float):
                flat[f"test_{tier}_{key}"] = float(value)
    for name, values in baselines.items():
        for key in ("roc_auc", "pr_auc", "brier"):
            if isinstance(values.get(key), int | float):
                flat[f"baseline_{name}_{key}"] = float(values[key])
    return flat


def log_training_run(
    *,
    name: str,
    params: dict[str, Any],
    metrics: dict[str, Any],
    baselines: dict[str, dict[str, Any]],
    history: list[dict[str, Any]],
    artefacts: Iterable[Path],
    card: dict[str, Any],
) -> tuple[str | None, str]:
    """(MLflow run id or None, error text or "")."""
    uri = settings.MLFLOW_TRACKING_URI
    if not uri:
        return None, ""
    try:
        from mlflow.entities import Metric, Param
        from mlflow.tracking import MlflowClient
    except ImportError:
        return None, "MLFLOW_TRACKING_URI is set but mlflow is not installed."
    try:
        client = MlflowClient(tracking_uri=uri)
        experiment = client.get_experiment_by_name(settings.MLFLOW_EXPERIMENT_NAME)
        experiment_id = (
            experiment.experiment_id
            if experiment is not None
            else client.create_experiment(settings.MLFLOW_EXPERIMENT_NAME)
        )
        run = client.create_run(experiment_id, run_name=name, tags={"edupulse.model": name})
        run_id = run.info.run_id
        now = int(time.time() * 1000)
        metric_rows = [Metric(k, v, now, 0) for k, v in _flat_metrics(metrics, baselines).items()]
        for record in history:
            for key in ("train_loss", "val_pr_auc", "val_roc_auc"):
                if isinstance(record.get(key), int | float):
                    metric_rows.append(Metric(key, float(record[key]), now, int(record["epoch"])))
        client.log_batch(
            run_id,
            metrics=metric_rows,
            params=[Param(k, v) for k, v in _flat_params(params).items()],
        )
        for path in artefacts:
            client.log_artifact(run_id, str(path))
        with tempfile.TemporaryDirectory() as tmp:
            card_path = Path(tmp) / "model_card.json"
            card_path.write_text(json.dumps(card, indent=1), encoding="utf-8")
            client.log_artifact(run_id, str(card_path))
        client.set_terminated(run_id, "FINISHED")
        return run_id, ""
    except Exception as error:  # noqa: BLE001 - any tracking failure is reported, not fatal
        logger.warning("MLflow logging failed for %s: %s", name, error)
        return None, f"{type(error).__name__}: {error}"[:2000]
