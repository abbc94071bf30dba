from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from ml.config import ModelConfig, TrainConfig
from ml.data import SequenceArrays, split_arrays
from ml.synthetic import make_synthetic, synthetic_feature_names
from ml.train import TrainResult, train_model

N_FEATURES = 5

# Tiny models gain nothing from intra-op threads, and on a busy 2-core machine
# OpenMP threads spinning against other processes made single tests 40x slower.
torch.set_num_threads(1)


def tiny_model_config(**overrides: object) -> ModelConfig:
    params: dict[str, object] = {
        "n_seq_features": N_FEATURES,
        "n_static_numeric": 2,
        "static_cat_cardinalities": (2, 4),
        "hidden_size": 16,
        "attention_heads": 2,
        "static_embed_dim": 3,
        "fusion_hidden": 16,
        "dropout": 0.1,
    }
    params.update(overrides)
    return ModelConfig(**params)  # type: ignore[arg-type]


def tiny_train_config(**overrides: object) -> TrainConfig:
    params: dict[str, object] = {"epochs": 4, "batch_size": 64, "lr": 5e-3, "seed": 0}
    params.update(overrides)
    return TrainConfig(**params)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def make_model_config() -> Callable[..., ModelConfig]:
    return tiny_model_config


@pytest.fixture(scope="session")
def make_train_config() -> Callable[..., TrainConfig]:
    return tiny_train_config


@pytest.fixture(scope="session")
def tiny_split() -> tuple[SequenceArrays, SequenceArrays]:
    return split_arrays(make_synthetic(800, 10, N_FEATURES, seed=3), 0.3, seed=0)


@pytest.fixture(scope="session")
def trained(tiny_split: tuple[SequenceArrays, SequenceArrays]) -> TrainResult:
    train, val = tiny_split
    return train_model(tiny_model_config(), tiny_train_config(), train, val)


@pytest.fixture(scope="session")
def checkpoint_path(trained: TrainResult, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ckpt") / "model.pt"
    trained.save(
        path,
        feature_version="weekly-v1",
        feature_columns=synthetic_feature_names(N_FEATURES),
        static_numeric_columns=["age", "distance"],
        static_categorical_columns=["gender", "region"],
    )
    return path
