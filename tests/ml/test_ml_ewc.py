from __future__ import annotations

from pathlib import Path

import torch

from ml.checkpoint import load_checkpoint, save_loaded_model
from ml.data import SequenceArrays
from ml.ewc import EWCPenalty, fine_tune_with_ewc, fisher_information
from ml.inference import Scorer
from ml.metrics import roc_auc
from ml.synthetic import make_synthetic


def _distance(a: torch.nn.Module, b: torch.nn.Module) -> float:
    with torch.no_grad():
        pairs = zip(a.parameters(), b.parameters(), strict=True)
        return sum(float(((p - q) ** 2).sum()) for p, q in pairs)


def test_ewc_keeps_the_old_task_closer_than_plain_fine_tuning(
    checkpoint_path: Path, tiny_split: tuple[SequenceArrays, SequenceArrays], tmp_path: Path
) -> None:
    train, val = tiny_split
    original = load_checkpoint(checkpoint_path)
    # The shifted task: the dropout signal now lives in another feature.
    shifted = make_synthetic(500, 10, 5, seed=11, signal_feature=3)
    kwargs = {"epochs": 4, "lr": 5e-3, "seed": 0, "device": "cpu", "fisher_max_samples": 300}
    plain = fine_tune_with_ewc(original, shifted, train, lambda_=0.0, **kwargs)
    ewc = fine_tune_with_ewc(original, shifted, train, lambda_=200.0, val_arrays=val, **kwargs)

    assert _distance(ewc.loaded.model, original.model) < 0.6 * _distance(
        plain.loaded.model, original.model
    )
    auc_plain = roc_auc(val.labels, Scorer(plain.loaded, "cpu").score(val))
    auc_ewc = roc_auc(val.labels, Scorer(ewc.loaded, "cpu").score(val))
    assert auc_ewc > auc_plain + 0.005
    assert ewc.history[-1]["ewc_penalty"] > 0 and plain.history[-1]["ewc_penalty"] == 0
    # Refitted on val_arrays; the original LoadedModel is untouched.
    assert ewc.loaded.metrics["roc_auc"] == roc_auc(
        val.labels, Scorer(ewc.loaded, "cpu").score(val)
    )
    assert _distance(original.model, load_checkpoint(checkpoint_path).model) == 0.0
    save_loaded_model(tmp_path / "updated.pt", ewc.loaded)
    assert load_checkpoint(tmp_path / "updated.pt", "weekly-v1").extra["ewc_history"]


def test_penalty_is_zero_at_the_anchor_and_grows_with_fisher_weighted_distance(
    checkpoint_path: Path, tiny_split: tuple[SequenceArrays, SequenceArrays]
) -> None:
    train, _ = tiny_split
    loaded = load_checkpoint(checkpoint_path)
    fisher = fisher_information(loaded.model, train, loaded.normalizer, max_samples=100)
    assert set(fisher) == {n for n, _ in loaded.model.named_parameters()}
    assert all((f >= 0).all() for f in fisher.values())
    penalty = EWCPenalty(loaded.model, fisher, lambda_=10.0)
    with torch.no_grad():
        assert penalty(loaded.model).item() == 0.0
        loaded.model.fusion[-1].bias += 1.0
        assert penalty(loaded.model).item() > 0.0
