"""Elastic weight consolidation for continuous learning (Kirkpatrick et al., 2017).

Fine-tuning on new outcomes alone lets the model forget the older cohorts it was
trained on; EWC adds  lambda/2 * sum_i F_i (theta_i - theta*_i)^2  so that the
parameters the old data relied on (high Fisher information F) move least.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import BatchSampler, DataLoader, RandomSampler

from ml.calibration import apply_calibration, fit_temperature
from ml.checkpoint import LoadedModel
from ml.data import Batch, Normalizer, SequenceArrays, SequenceDataset, batch_identity
from ml.device import select_device
from ml.metrics import choose_thresholds, evaluate
from ml.model import batched_forward
from ml.train import deterministic_mode, resolve_pos_weight, seed_everything


def fisher_information(
    model: nn.Module,
    arrays: SequenceArrays,
    normalizer: Normalizer,
    *,
    batch_size: int = 16,
    max_samples: int = 2000,
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """Diagonal empirical Fisher of the log-likelihood on (a sample of) the old data.

    Per-student gradients would cost one backward each; instead the squared
    gradient of each mini-batch mean is scaled by the batch size, which equals
    the mean per-student squared gradient when gradients average ~0 (at a
    trained optimum).
    """
    if arrays.labels is None:
        raise ValueError("Fisher information needs labelled arrays")
    rng = np.random.default_rng(seed)
    if len(arrays) > max_samples:
        arrays = arrays.subset(np.sort(rng.choice(len(arrays), max_samples, replace=False)))
    data = normalizer.transform(arrays)
    dataset = SequenceDataset(data)
    device = next(model.parameters()).device
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    fisher = {n: torch.zeros_like(p) for n, p in params.items()}
    was_training = model.training
    model.eval()  # no dropout: the Fisher of the deployed (deterministic) model
    n_batches = 0
    try:
        with torch.backends.cudnn.flags(enabled=False):
            for start in range(0, len(dataset), batch_size):
                batch = dataset[list(range(start, min(start + batch_size, len(dataset))))]
                batch = batch.to(device)
                assert batch.y is not None
                logits = model(*batch.model_inputs())
                loss = nn.functional.binary_cross_entropy_with_logits(logits, batch.y)
                grads = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
                for (name, _), grad in zip(params.items(), grads, strict=True):
                    if grad is not None:
                        fisher[name] += grad.detach() ** 2 * len(batch.y)
                n_batches += 1
    finally:
        model.train(was_training)
    return {n: f / max(1, n_batches) for n, f in fisher.items()}


class EWCPenalty:
    def __init__(
        self,
        model: nn.Module,
        fisher: dict[str, torch.Tensor],
        lambda_: float,
        normalize: bool = True,
    ) -> None:
        # Normalising F to mean 1 makes lambda_ comparable across models and
        # datasets (raw Fisher values scale with the loss and the data size).
        scale = 1.0
        if normalize:
            total = sum(float(f.sum()) for f in fisher.values())
            count = sum(f.numel() for f in fisher.values())
            scale = total / count if total > 0 else 1.0
        self.fisher = {n: f.detach() / scale for n, f in fisher.items()}
        self.reference = {
            n: p.detach().clone() for n, p in model.named_parameters() if n in self.fisher
        }
        self.lambda_ = lambda_

    def __call__(self, model: nn.Module) -> torch.Tensor:
        terms = [
            (self.fisher[n] * (p - self.reference[n]) ** 2).sum()
            for n, p in model.named_parameters()
            if n in self.fisher
        ]
        return 0.5 * self.lambda_ * torch.stack(terms).sum()


@dataclass
class FineTuneResult:
    loaded: LoadedModel  # the updated model with its metadata; save with save_checkpoint
    history: list[dict[str, Any]]


def fine_tune_with_ewc(
    loaded: LoadedModel,
    new_arrays: SequenceArrays,
    old_arrays_for_fisher: SequenceArrays,
    lambda_: float = 100.0,
    epochs: int = 5,
    *,
    lr: float = 5e-4,
    batch_size: int = 64,
    seed: int = 0,
    val_arrays: SequenceArrays | None = None,
    device: str | None = "auto",
    fisher_batch_size: int = 16,
    fisher_max_samples: int = 2000,
    progress: Callable[[dict[str, Any]], None] | None = None,
) -> FineTuneResult:
    """Fine-tune a trained model on new labels without forgetting the old ones.

    The normaliser is kept: the feature definitions have not changed, and moving
    the standardisation would shift every input under the old weights. With
    ``val_arrays`` the calibration, thresholds and metrics are refitted on them.
    """
    if new_arrays.labels is None:
        raise ValueError("new_arrays need labels")
    tc = loaded.train_config
    dev = select_device(device)
    with deterministic_mode(tc.deterministic if tc else True):
        seed_everything(seed)
        model = copy.deepcopy(loaded.model).to(dev)
        fisher = fisher_information(
            model,
            old_arrays_for_fisher,
            loaded.normalizer,
            batch_size=fisher_batch_size,
            max_samples=fisher_max_samples,
            seed=seed,
        )
        penalty = EWCPenalty(model, fisher, lambda_)
        data = loaded.normalizer.transform(new_arrays)
        dataset = SequenceDataset(
            data,
            augment=True,
            truncation_prob=tc.truncation_prob if tc else 0.5,
            min_weeks=tc.min_weeks if tc else 2,
            feature_dropout_prob=tc.feature_dropout_prob if tc else 0.05,
            seed=seed,
        )
        sampler = RandomSampler(dataset, generator=torch.Generator().manual_seed(seed))
        loader: DataLoader[Batch] = DataLoader(
            dataset,
            batch_size=None,
            sampler=BatchSampler(sampler, batch_size, drop_last=False),
            collate_fn=batch_identity,  # type: ignore[arg-type]  # batches, not lists
        )
        pos_weight = resolve_pos_weight(tc.pos_weight if tc else "auto", new_arrays.labels)
        loss_fn = nn.BCEWithLogitsLoss(
            pos_weight=None if pos_weight is None else torch.tensor(pos_weight, device=dev)
        )
        # No weight decay: it would pull weights towards 0 against the EWC anchor.
        optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
        history: list[dict[str, Any]] = []
        for epoch in range(epochs):
            dataset.set_epoch(epoch)
            model.train()
            sums = {"task_loss": 0.0, "ewc_penalty": 0.0}
            for batch in loader:
                batch = batch.to(dev)
                assert batch.y is not None
                task = loss_fn(model(*batch.model_inputs()), batch.y)
                reg = penalty(model)
                optimizer.zero_grad(set_to_none=True)
                (task + reg).backward()
                nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                sums["task_loss"] += float(task.detach()) / len(loader)
                sums["ewc_penalty"] += float(reg.detach()) / len(loader)
            record = {"epoch": epoch, **sums}
            history.append(record)
            if progress is not None:
                progress(dict(record))
        model.eval()

    updated = replace(loaded, model=model.cpu(), extra={**loaded.extra, "ewc_history": history})
    if val_arrays is not None and val_arrays.labels is not None:
        updated = _recalibrate(updated, val_arrays, pos_weight)
    return FineTuneResult(loaded=updated, history=history)


def _recalibrate(
    loaded: LoadedModel, val_arrays: SequenceArrays, pos_weight: float | None
) -> LoadedModel:
    assert val_arrays.labels is not None
    model = loaded.model
    logits, _ = batched_forward(model, loaded.normalizer.transform(val_arrays))
    initial = -math.log(pos_weight) if pos_weight else 0.0
    temperature, bias = fit_temperature(logits, val_arrays.labels, True, initial)
    model.set_calibration(temperature, bias)
    probs = apply_calibration(logits, float(model.temperature), float(model.logit_bias))
    target = loaded.thresholds.target_recall if loaded.thresholds else 0.8
    watch = loaded.thresholds.watch_recall if loaded.thresholds else None
    thresholds = choose_thresholds(probs, val_arrays.labels, target, watch)
    metrics = evaluate(val_arrays.labels, probs, thresholds, val_arrays.group or None)
    return replace(
        loaded,
        thresholds=thresholds,
        metrics=metrics,
        temperature=float(model.temperature),
    )
