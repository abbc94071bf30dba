from __future__ import annotations

import copy
import math
import random
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, Sampler
from torch.utils.data.distributed import DistributedSampler

from ml import distributed
from ml.calibration import apply_calibration, fit_temperature
from ml.config import ModelConfig, TrainConfig
from ml.data import Normalizer, SequenceArrays, SequenceDataset, batch_identity
from ml.metrics import Thresholds, choose_thresholds, evaluate, pr_auc, roc_auc
from ml.model import EduPulseModel, batched_forward

ProgressFn = Callable[[dict[str, Any]], None]


@dataclass
class TrainResult:
    model: EduPulseModel  # best epoch, calibrated, eval mode
    normalizer: Normalizer
    model_config: ModelConfig
    train_config: TrainConfig
    history: list[dict[str, Any]]
    best_epoch: int
    val_metrics: dict[str, Any]
    thresholds: Thresholds
    temperature: float
    logit_bias: float
    extra: dict[str, Any] = field(default_factory=dict)

    def save(
        self,
        path: str | Path,
        *,
        feature_version: str,
        feature_columns: list[str],
        static_numeric_columns: list[str] | None = None,
        static_categorical_columns: list[str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        from ml.checkpoint import save_checkpoint

        save_checkpoint(
            path,
            model=self.model,
            model_config=self.model_config,
            normalizer=self.normalizer,
            feature_version=feature_version,
            feature_columns=feature_columns,
            static_numeric_columns=static_numeric_columns or [],
            static_categorical_columns=static_categorical_columns or [],
            thresholds=self.thresholds,
            metrics=self.val_metrics,
            temperature=self.temperature,
            train_config=self.train_config,
            extra={
                "best_epoch": self.best_epoch,
                "history": self.history,
                **self.extra,
                **(extra or {}),
            },
        )


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)  # third-party code may still use the global RNG
    torch.manual_seed(seed)


@contextmanager
def deterministic_mode(enabled: bool) -> Iterator[None]:
    # Restored afterwards: the flag is process-global and the Django worker that
    # calls us may score other models concurrently.
    previous = torch.are_deterministic_algorithms_enabled()
    previous_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    if enabled:
        torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous, warn_only=previous_warn)


def resolve_pos_weight(setting: float | str | None, labels: np.ndarray) -> float | None:
    if setting is None:
        return None
    if setting == "auto":
        positives = float(labels.sum())
        return (labels.size - positives) / positives if positives > 0 else None
    return float(setting)


def log_loss(labels: np.ndarray, logits: np.ndarray) -> float:
    """Mean binary cross-entropy of raw logits (numerically stable, no pos_weight)."""
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    return float(np.mean(np.logaddexp(0.0, z) - y * z)) if y.size else 0.0


def _make_schedule(
    optimizer: torch.optim.Optimizer, tc: TrainConfig, total_steps: int
) -> torch.optim.lr_scheduler.LRScheduler:
    total_steps = max(1, total_steps)
    # OneCycleLR divides by its phase lengths; too few steps would make one zero.
    if tc.schedule == "onecycle" and total_steps >= 8:
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer,
            max_lr=tc.lr,
            total_steps=total_steps,
            pct_start=min(0.5, max(tc.warmup_fraction, 2.0 / total_steps)),
        )
    warmup = max(1, int(tc.warmup_fraction * total_steps))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if tc.schedule == "constant":
            return 1.0
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    # No decay on biases, norms, embeddings and the pooling query: shrinking them
    # towards 0 only distorts the representation.
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        is_matrix = param.ndim >= 2 and "embeddings" not in name
        (decay if is_matrix else no_decay).append(param)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def _autocast(device: torch.device, tc: TrainConfig) -> tuple[torch.dtype | None, bool]:
    """(autocast dtype or None, whether a GradScaler is needed)."""
    if not tc.amp or device.type != "cuda":
        return None, False
    if tc.amp_dtype == "bfloat16" and torch.cuda.is_bf16_supported():
        return torch.bfloat16, False
    return torch.float16, True


def train_model(
    model_config: ModelConfig,
    train_config: TrainConfig,
    train_arrays: SequenceArrays,
    val_arrays: SequenceArrays,
    progress: ProgressFn | None = None,
) -> TrainResult:
    """Train, early-stop on a validation metric, calibrate and choose risk thresholds.

    The metric is ``train_config.early_stopping_metric`` (validation PR-AUC by default).

    Under torchrun (WORLD_SIZE > 1) every rank must call this with the same arrays;
    each rank trains on its DistributedSampler shard and all end with equal weights.
    """
    if train_arrays.labels is None or val_arrays.labels is None:
        raise ValueError("training and validation arrays need labels")
    tc = train_config
    info = distributed.setup(tc.device)
    try:
        with deterministic_mode(tc.deterministic):
            return _train(model_config, tc, train_arrays, val_arrays, progress, info)
    finally:
        distributed.teardown(info)


def _train(
    mc: ModelConfig,
    tc: TrainConfig,
    train_arrays: SequenceArrays,
    val_arrays: SequenceArrays,
    progress: ProgressFn | None,
    info: distributed.DistInfo,
) -> TrainResult:
    device = info.device
    seed_everything(tc.seed)
    normalizer = Normalizer.fit(train_arrays, clip=tc.normalize_clip)
    train_data = normalizer.transform(train_arrays)
    val_data = normalizer.transform(val_arrays)
    assert train_data.labels is not None and val_data.labels is not None

    model = EduPulseModel(mc).to(device)
    net: nn.Module = model
    if info.world_size > 1:
        net = DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )

    dataset = SequenceDataset(
        train_data,
        augment=True,
        truncation_prob=tc.truncation_prob,
        min_weeks=tc.min_weeks,
        feature_dropout_prob=tc.feature_dropout_prob,
        seed=tc.seed,
        cat_dropout_prob=tc.cat_dropout_prob,
        feature_groups=tc.feature_groups,
        feature_group_dropout_prob=tc.feature_group_dropout_prob,
    )
    sampler: Sampler[int]
    if info.world_size > 1:
        sampler = DistributedSampler(
            dataset, num_replicas=info.world_size, rank=info.rank, shuffle=True, seed=tc.seed
        )
    else:
        sampler = RandomSampler(dataset, generator=torch.Generator().manual_seed(tc.seed))
    loader = DataLoader(
        dataset,
        batch_size=None,
        sampler=BatchSampler(sampler, tc.batch_size, drop_last=False),
        num_workers=tc.num_workers,
        collate_fn=batch_identity,  # type: ignore[arg-type]  # batches, not lists
        pin_memory=device.type == "cuda",
        persistent_workers=False,
    )

    pos_weight = resolve_pos_weight(tc.pos_weight, train_data.labels)
    loss_fn = nn.BCEWithLogitsLoss(
        pos_weight=None if pos_weight is None else torch.tensor(pos_weight, device=device)
    )
    optimizer = torch.optim.AdamW(_param_groups(model, tc.weight_decay), lr=tc.lr)
    steps_per_epoch = math.ceil(len(loader) / tc.grad_accum_steps)
    scheduler = _make_schedule(optimizer, tc, tc.epochs * steps_per_epoch)
    amp_dtype, needs_scaler = _autocast(device, tc)
    scaler = torch.amp.GradScaler("cuda", enabled=needs_scaler)

    history: list[dict[str, Any]] = []
    best_score, best_epoch, best_state = -math.inf, 0, copy.deepcopy(model.state_dict())
    stale = 0
    for epoch in range(tc.epochs):
        started = time.perf_counter()
        dataset.set_epoch(epoch)
        if isinstance(sampler, DistributedSampler):
            sampler.set_epoch(epoch)
        net.train()
        total_loss, n_seen = 0.0, 0
        n_batches = len(loader)
        optimizer.zero_grad(set_to_none=True)
        for i, batch in enumerate(loader):
            batch = batch.to(device)
            assert batch.y is not None
            step_now = (i + 1) % tc.grad_accum_steps == 0 or i + 1 == n_batches
            # Skip the gradient all-reduce on accumulation micro-steps.
            sync: AbstractContextManager[Any] = (
                net.no_sync() if isinstance(net, DistributedDataParallel) and not step_now
                else nullcontext()
            )  # fmt: skip
            with sync:
                with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                    logits = net(*batch.model_inputs())
                loss = loss_fn(logits.float(), batch.y)
                scaler.scale(loss / tc.grad_accum_steps).backward()
            if step_now:
                scaler.unscale_(optimizer)
                if tc.grad_clip > 0:
                    nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
                scaler.step(optimizer)
                scaler.update()
                optimizer.zero_grad(set_to_none=True)
                scheduler.step()
            total_loss += float(loss.detach()) * len(batch.y)
            n_seen += len(batch.y)

        val_logits, _ = batched_forward(model, val_data, tc.eval_batch_size, device)
        val_probs = 1.0 / (1.0 + np.exp(-val_logits.astype(np.float64)))
        val_pr = pr_auc(val_data.labels, val_probs) or 0.0
        val_roc = roc_auc(val_data.labels, val_probs)
        val_loss = log_loss(val_data.labels, val_logits)
        # Higher is better for the stopping score; rank 0's number decides for
        # everyone, so ranks can never disagree about stopping (which would deadlock
        # the next all-reduce).
        score = {"pr_auc": val_pr, "roc_auc": val_roc or 0.0, "loss": -val_loss}[
            tc.early_stopping_metric
        ]
        score = distributed.broadcast_float(score, info)
        record = {
            "epoch": epoch,
            "train_loss": total_loss / max(1, n_seen),
            "val_pr_auc": val_pr,
            "val_roc_auc": val_roc,
            "val_loss": val_loss,
            "lr": optimizer.param_groups[0]["lr"],
            "seconds": time.perf_counter() - started,
        }
        history.append(record)
        if progress is not None and info.rank == 0:
            progress(dict(record))
        if score > best_score + 1e-6:
            best_score, best_epoch, stale = score, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            stale += 1
            if stale >= tc.early_stopping_patience and epoch + 1 >= tc.min_epochs:
                break

    model.load_state_dict(best_state)
    model.eval()
    val_logits, _ = batched_forward(model, val_data, tc.eval_batch_size, device)
    initial_bias = -math.log(pos_weight) if pos_weight else 0.0
    temperature, logit_bias = fit_temperature(val_logits, val_data.labels, True, initial_bias)
    model.set_calibration(temperature, logit_bias)
    # Report what the float32 buffers hold, so saved and in-memory values agree.
    temperature, logit_bias = float(model.temperature), float(model.logit_bias)
    probs = apply_calibration(val_logits, temperature, logit_bias)
    thresholds = choose_thresholds(
        probs, val_data.labels, tc.target_recall, tc.resolved_watch_recall
    )
    val_metrics = evaluate(val_data.labels, probs, thresholds, val_arrays.group or None)
    val_metrics["best_epoch"] = best_epoch
    return TrainResult(
        model=model,
        normalizer=normalizer,
        model_config=mc,
        train_config=tc,
        history=history,
        best_epoch=best_epoch,
        val_metrics=val_metrics,
        thresholds=thresholds,
        temperature=temperature,
        logit_bias=logit_bias,
        extra={"pos_weight": pos_weight, "world_size": info.world_size},
    )
