from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch

from ml.config import ModelConfig, TrainConfig
from ml.data import SequenceArrays
from ml.train import TrainResult, resolve_pos_weight, train_model


def test_training_learns_the_synthetic_signal_and_calibrates(trained: TrainResult) -> None:
    m = trained.val_metrics
    assert m["roc_auc"] > 0.85
    assert m["pr_auc"] > 0.6
    assert m["ece"] < 0.12
    assert m["at_high"]["recall"] >= 0.8
    assert trained.thresholds.watch <= trained.thresholds.high
    assert "cat0" in m["subgroups"]
    assert not trained.model.training
    assert float(trained.model.temperature) == trained.temperature
    assert [h["epoch"] for h in trained.history] == list(range(len(trained.history)))


def test_two_trainings_with_the_same_seed_give_identical_weights(
    tiny_split: tuple[SequenceArrays, SequenceArrays],
    make_model_config: Callable[..., ModelConfig],
    make_train_config: Callable[..., TrainConfig],
) -> None:
    train, val = tiny_split
    train, val = train.subset(range(300)), val.subset(range(120))
    cfg = make_train_config(epochs=2, batch_size=32, grad_accum_steps=2, schedule="onecycle")
    a = train_model(make_model_config(), cfg, train, val)
    b = train_model(make_model_config(), cfg, train, val)
    for (name, pa), pb in zip(
        a.model.state_dict().items(), b.model.state_dict().values(), strict=True
    ):
        assert torch.equal(pa, pb), name
    c = train_model(make_model_config(), make_train_config(epochs=2, seed=1), train, val)
    assert not torch.equal(a.model.pool_query, c.model.pool_query)


def test_progress_is_reported_and_early_stopping_halts(
    tiny_split: tuple[SequenceArrays, SequenceArrays],
    make_model_config: Callable[..., ModelConfig],
    make_train_config: Callable[..., TrainConfig],
) -> None:
    train, val = tiny_split
    seen: list[dict[str, Any]] = []
    # lr=0 never improves after the first epoch, so patience 2 stops at epoch 2.
    cfg = make_train_config(epochs=10, lr=0.0, early_stopping_patience=2, pos_weight=None)
    result = train_model(make_model_config(), cfg, train.subset(range(200)), val, seen.append)
    assert len(seen) == 3 and result.best_epoch == 0
    assert {"train_loss", "val_pr_auc", "val_roc_auc", "lr", "seconds"} <= seen[0].keys()


def test_pos_weight_auto_balances_the_classes() -> None:
    import numpy as np

    assert resolve_pos_weight("auto", np.array([1, 0, 0, 0])) == 3.0
    assert resolve_pos_weight(None, np.array([1, 0])) is None
    assert resolve_pos_weight(2.5, np.array([1, 0])) == 2.5
    assert TrainConfig.from_dict(TrainConfig(epochs=3).to_dict()) == TrainConfig(epochs=3)


def test_data_loader_workers_do_not_change_the_result(
    tiny_split: tuple[SequenceArrays, SequenceArrays],
    make_model_config: Callable[..., ModelConfig],
    make_train_config: Callable[..., TrainConfig],
) -> None:
    # Augmentation randomness is keyed on (seed, epoch, batch indices), not on
    # which worker process happens to build the batch.
    train, val = tiny_split
    train, val = train.subset(range(200)), val.subset(range(80))
    a = train_model(make_model_config(), make_train_config(epochs=1), train, val)
    b = train_model(make_model_config(), make_train_config(epochs=1, num_workers=2), train, val)
    for pa, pb in zip(a.model.parameters(), b.model.parameters(), strict=True):
        assert torch.equal(pa, pb)


def test_min_epochs_holds_off_early_stopping_and_loss_can_pick_the_epoch(
    tiny_split: tuple[SequenceArrays, SequenceArrays],
    make_model_config: Callable[..., ModelConfig],
    make_train_config: Callable[..., TrainConfig],
) -> None:
    train, val = tiny_split
    train = train.subset(range(200))
    cfg = make_train_config(
        epochs=10, lr=0.0, early_stopping_patience=2, min_epochs=5, pos_weight=None,
        early_stopping_metric="loss",
    )  # fmt: skip
    result = train_model(make_model_config(), cfg, train, val)
    # lr=0: the loss never improves after epoch 0, yet training runs 5 epochs.
    assert len(result.history) == 5 and result.best_epoch == 0
    assert all(h["val_loss"] == result.history[0]["val_loss"] for h in result.history)
    # With a real learning rate, the chosen epoch is the one with the lowest validation loss.
    cfg = make_train_config(epochs=4, early_stopping_metric="loss", pos_weight=None)
    result = train_model(make_model_config(), cfg, train, val)
    losses = [h["val_loss"] for h in result.history]
    assert result.best_epoch == losses.index(min(losses))


def test_train_config_rejects_unknown_stopping_metrics_and_bad_probabilities() -> None:
    with pytest.raises(ValueError):
        TrainConfig(early_stopping_metric="accuracy")
    with pytest.raises(ValueError):
        TrainConfig(cat_dropout_prob=1.0)
    assert TrainConfig().truncation_prob == 0.0
    groups = TrainConfig.from_dict({"feature_groups": [[0, 1], [2]]}).feature_groups
    assert groups == ((0, 1), (2,))


def test_category_and_feature_group_dropout_train_and_stay_deterministic(
    tiny_split: tuple[SequenceArrays, SequenceArrays],
    make_model_config: Callable[..., ModelConfig],
    make_train_config: Callable[..., TrainConfig],
) -> None:
    train, val = tiny_split
    train, val = train.subset(range(300)), val.subset(range(120))
    cfg = make_train_config(
        epochs=2, cat_dropout_prob=0.3, feature_groups=((0, 1), (2, 3)),
        feature_group_dropout_prob=0.2,
    )  # fmt: skip
    a = train_model(make_model_config(), cfg, train, val)
    b = train_model(make_model_config(), cfg, train, val)
    plain = train_model(make_model_config(), make_train_config(epochs=2), train, val)
    for pa, pb in zip(a.model.parameters(), b.model.parameters(), strict=True):
        assert torch.equal(pa, pb)
    assert not torch.equal(a.model.pool_query, plain.model.pool_query)
