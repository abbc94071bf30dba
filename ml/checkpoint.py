from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ml.config import ModelConfig, TrainConfig
from ml.data import Normalizer
from ml.metrics import Thresholds
from ml.model import EduPulseModel

FORMAT_VERSION = 1


class CheckpointError(Exception):
    pass


class IncompatibleFeatureVersion(CheckpointError):
    """The model was trained on features computed differently from what the caller has."""

    def __init__(self, expected: str, found: str) -> None:
        super().__init__(
            f"checkpoint was trained on feature version {found!r}, but the caller provides "
            f"{expected!r}; retrain the model or recompute features with {found!r}"
        )
        self.expected = expected
        self.found = found


@dataclass
class LoadedModel:
    model: EduPulseModel  # eval mode, on CPU
    model_config: ModelConfig
    normalizer: Normalizer
    feature_version: str
    feature_columns: list[str]
    static_numeric_columns: list[str]
    static_categorical_columns: list[str]
    thresholds: Thresholds | None
    metrics: dict[str, Any]
    temperature: float
    train_config: TrainConfig | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def save_checkpoint(
    path: str | Path,
    *,
    model: nn.Module,
    model_config: ModelConfig,
    normalizer: Normalizer,
    feature_version: str,
    feature_columns: list[str],
    static_numeric_columns: list[str] | None = None,
    static_categorical_columns: list[str] | None = None,
    thresholds: Thresholds | None = None,
    metrics: dict[str, Any] | None = None,
    temperature: float | None = None,
    train_config: TrainConfig | None = None,
    extra: dict[str, Any] | None = None,
) -> None:
    if len(feature_columns) != model_config.n_seq_features:
        raise ValueError(
            f"{len(feature_columns)} feature columns for a model with "
            f"{model_config.n_seq_features} weekly features"
        )
    module = getattr(model, "module", model)  # unwrap DistributedDataParallel
    if temperature is not None and isinstance(module, EduPulseModel):
        module.temperature.fill_(float(temperature))
    state = {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}
    metadata = {
        "format_version": FORMAT_VERSION,
        "model_config": model_config.to_dict(),
        "train_config": None if train_config is None else train_config.to_dict(),
        "normalizer": normalizer.to_dict(),
        "feature_version": feature_version,
        "feature_columns": list(feature_columns),
        "static_numeric_columns": list(static_numeric_columns or []),
        "static_categorical_columns": list(static_categorical_columns or []),
        "thresholds": None if thresholds is None else thresholds.to_dict(),
        "metrics": metrics or {},
        "temperature": float(state["temperature"]),
        "extra": extra or {},
    }
    # Metadata goes in as a JSON string: it proves the payload is plain data and
    # lets load use weights_only=True (no pickle code execution).
    payload = {"state_dict": state, "metadata_json": json.dumps(metadata, allow_nan=True)}
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)  # atomic: a crashed save never leaves a half-written model


def read_metadata(path: str | Path) -> dict[str, Any]:
    payload = torch.load(Path(path), map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or "metadata_json" not in payload:
        raise CheckpointError(f"{path} is not an EduPulse checkpoint")
    metadata: dict[str, Any] = json.loads(payload["metadata_json"])
    return metadata


def load_checkpoint(path: str | Path, expected_feature_version: str | None = None) -> LoadedModel:
    payload = torch.load(Path(path), map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or "metadata_json" not in payload:
        raise CheckpointError(f"{path} is not an EduPulse checkpoint")
    meta = json.loads(payload["metadata_json"])
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"unsupported checkpoint format {meta.get('format_version')!r}")
    found = meta["feature_version"]
    if expected_feature_version is not None and found != expected_feature_version:
        raise IncompatibleFeatureVersion(expected_feature_version, found)
    config = ModelConfig.from_dict(meta["model_config"])
    model = EduPulseModel(config)
    model.load_state_dict(payload["state_dict"])
    model.eval()
    return LoadedModel(
        model=model,
        model_config=config,
        normalizer=Normalizer.from_dict(meta["normalizer"]),
        feature_version=found,
        feature_columns=list(meta["feature_columns"]),
        static_numeric_columns=list(meta["static_numeric_columns"]),
        static_categorical_columns=list(meta["static_categorical_columns"]),
        thresholds=None if meta["thresholds"] is None else Thresholds.from_dict(meta["thresholds"]),
        metrics=meta["metrics"],
        temperature=float(meta["temperature"]),
        train_config=None
        if meta["train_config"] is None
        else TrainConfig.from_dict(meta["train_config"]),
        extra=meta["extra"],
    )


def save_loaded_model(path: str | Path, loaded: LoadedModel) -> None:
    """Write a (for example fine-tuned) LoadedModel back out with all its metadata."""
    save_checkpoint(
        path,
        model=loaded.model,
        model_config=loaded.model_config,
        normalizer=loaded.normalizer,
        feature_version=loaded.feature_version,
        feature_columns=loaded.feature_columns,
        static_numeric_columns=loaded.static_numeric_columns,
        static_categorical_columns=loaded.static_categorical_columns,
        thresholds=loaded.thresholds,
        metrics=loaded.metrics,
        train_config=loaded.train_config,
        extra=loaded.extra,
    )
