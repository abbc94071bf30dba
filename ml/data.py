from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset


@dataclass
class SequenceArrays:
    """Raw model inputs for N students; ``seq`` uses NaN for a missing value."""

    seq: np.ndarray  # float32 [N, T, F]; weeks >= lengths[i] are padding
    lengths: np.ndarray  # int [N]; number of valid weeks
    static_num: np.ndarray  # float32 [N, S]; NaN = missing
    static_cat: np.ndarray  # int64 [N, C]; out-of-range = unknown category
    labels: np.ndarray | None = None  # float [N] in {0, 1}
    group: dict[str, np.ndarray] = field(default_factory=dict)  # subgroup values for metrics

    def __post_init__(self) -> None:
        self.seq = np.asarray(self.seq, dtype=np.float32)
        n = self.seq.shape[0]
        if self.seq.ndim != 3:
            raise ValueError(f"seq must be [N, T, F], got shape {self.seq.shape}")
        self.lengths = np.asarray(self.lengths, dtype=np.int64).reshape(-1)
        self.static_num = np.asarray(self.static_num, dtype=np.float32).reshape(n, -1)
        self.static_cat = np.asarray(self.static_cat, dtype=np.int64).reshape(n, -1)
        if self.labels is not None:
            self.labels = np.asarray(self.labels, dtype=np.float32).reshape(-1)
        self.group = {k: np.asarray(v) for k, v in self.group.items()}
        for name, arr in [("lengths", self.lengths), ("labels", self.labels), *self.group.items()]:
            if arr is not None and arr.shape[0] != n:
                raise ValueError(f"{name} has {arr.shape[0]} rows, seq has {n}")
        if n and (self.lengths.min() < 0 or self.lengths.max() > self.seq.shape[1]):
            raise ValueError("lengths must lie in [0, T]")

    def __len__(self) -> int:
        return int(self.seq.shape[0])

    @property
    def n_weeks(self) -> int:
        return int(self.seq.shape[1])

    @property
    def n_features(self) -> int:
        return int(self.seq.shape[2])

    def valid_weeks(self) -> np.ndarray:
        return np.arange(self.n_weeks)[None, :] < self.lengths[:, None]

    def observation_mask(self) -> np.ndarray:
        return ~np.isnan(self.seq) & self.valid_weeks()[:, :, None]

    def subset(self, index: np.ndarray | Sequence[int]) -> SequenceArrays:
        idx = np.asarray(index)
        return SequenceArrays(
            seq=self.seq[idx],
            lengths=self.lengths[idx],
            static_num=self.static_num[idx],
            static_cat=self.static_cat[idx],
            labels=None if self.labels is None else self.labels[idx],
            group={k: v[idx] for k, v in self.group.items()},
        )

    def save_npz(self, path: str | Path) -> None:
        payload: dict[str, np.ndarray] = {
            "seq": self.seq,
            "lengths": self.lengths,
            "static_num": self.static_num,
            "static_cat": self.static_cat,
        }
        if self.labels is not None:
            payload["labels"] = self.labels
        payload.update({f"group__{k}": v for k, v in self.group.items()})
        np.savez_compressed(path, **payload)  # type: ignore[arg-type]  # numpy stub overload

    @classmethod
    def load_npz(cls, path: str | Path) -> SequenceArrays:
        # allow_pickle=False: an .npz from elsewhere must not execute code.
        with np.load(path, allow_pickle=False) as data:
            n = data["seq"].shape[0]
            return cls(
                seq=data["seq"],
                lengths=data["lengths"],
                static_num=data["static_num"] if "static_num" in data else np.zeros((n, 0)),
                static_cat=data["static_cat"] if "static_cat" in data else np.zeros((n, 0)),
                labels=data["labels"] if "labels" in data else None,
                group={k[7:]: data[k] for k in data.files if k.startswith("group__")},
            )


def split_arrays(
    arrays: SequenceArrays, val_fraction: float, seed: int = 0
) -> tuple[SequenceArrays, SequenceArrays]:
    # Stratified so that a rare positive class appears in both halves.
    rng = np.random.default_rng(seed)
    labels = arrays.labels if arrays.labels is not None else np.zeros(len(arrays))
    train_idx: list[np.ndarray] = []
    val_idx: list[np.ndarray] = []
    for value in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == value))
        n_val = int(round(len(idx) * val_fraction))
        val_idx.append(idx[:n_val])
        train_idx.append(idx[n_val:])
    return arrays.subset(np.sort(np.concatenate(train_idx))), arrays.subset(
        np.sort(np.concatenate(val_idx))
    )


# Standardised values are clipped to this many standard deviations by default: one
# mistyped value (attendance 9000 %, a grade of 1e6) must not dominate a batch's
# gradients or saturate the GRU for the student. ±10 σ keeps every plausible value.
DEFAULT_CLIP_SIGMA = 10.0


@dataclass
class Normalizer:
    seq_mean: np.ndarray
    seq_std: np.ndarray
    static_mean: np.ndarray
    static_std: np.ndarray
    # |standardised value| is capped at this; None = no clipping (what checkpoints
    # written before clipping existed get, so their scores do not change).
    clip: float | None = None

    @classmethod
    def fit(cls, arrays: SequenceArrays, *, clip: float | None = DEFAULT_CLIP_SIGMA) -> Normalizer:
        if clip is not None and not clip > 0:
            raise ValueError("clip must be positive or None")
        obs = arrays.observation_mask()
        values = np.where(obs, arrays.seq, 0.0).astype(np.float64)
        count = obs.sum(axis=(0, 1))
        mean = values.sum(axis=(0, 1)) / np.maximum(count, 1)
        sq = (np.where(obs, arrays.seq - mean, 0.0) ** 2).sum(axis=(0, 1))
        std = np.sqrt(sq / np.maximum(count, 1))
        static_mean = np.nan_to_num(_nanstat(np.nanmean, arrays.static_num))
        static_std = np.nan_to_num(_nanstat(np.nanstd, arrays.static_num))
        return cls(
            seq_mean=mean.astype(np.float32),
            seq_std=_safe_std(std),
            static_mean=static_mean.astype(np.float32),
            static_std=_safe_std(static_std),
            clip=None if clip is None else float(clip),
        )

    def _clip(self, z: np.ndarray) -> np.ndarray:
        # NaN passes through np.clip unchanged, so missing stays missing; +-inf is capped.
        return z if self.clip is None else np.clip(z, -self.clip, self.clip)

    def transform_seq(self, seq: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # Fill with 0 *after* standardising so a missing value sits at the training
        # mean; the mask channel tells the model it was not observed.
        valid = np.arange(seq.shape[1])[None, :, None] < np.asarray(lengths)[:, None, None]
        mask = ~np.isnan(seq) & valid
        x = self._clip((seq - self.seq_mean) / self.seq_std)
        x = np.where(mask, x, 0.0).astype(np.float32)
        return x, mask

    def transform_static(self, static_num: np.ndarray) -> np.ndarray:
        z = self._clip((static_num - self.static_mean) / self.static_std)
        return np.nan_to_num(z, nan=0.0).astype(np.float32)

    def inverse_seq(self, x: np.ndarray) -> np.ndarray:
        return x * self.seq_std + self.seq_mean

    def transform(self, arrays: SequenceArrays) -> NormalizedArrays:
        x, mask = self.transform_seq(arrays.seq, arrays.lengths)
        return NormalizedArrays(
            x=x,
            mask=mask,
            lengths=arrays.lengths.astype(np.int64),
            static_num=self.transform_static(arrays.static_num),
            static_cat=arrays.static_cat.astype(np.int64),
            labels=arrays.labels,
        )

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {k: getattr(self, k).astype(float).tolist() for k in _STAT_FIELDS}
        data["clip"] = self.clip
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Normalizer:
        clip = data.get("clip")
        return cls(
            **{k: np.asarray(data[k], dtype=np.float32) for k in _STAT_FIELDS},
            clip=None if clip is None else float(clip),
        )


_STAT_FIELDS = ("seq_mean", "seq_std", "static_mean", "static_std")


def _nanstat(fn: Any, a: np.ndarray) -> np.ndarray:
    if a.shape[0] == 0 or a.shape[1] == 0:
        return np.zeros(a.shape[1], dtype=np.float64)
    with warnings.catch_warnings():
        # An all-NaN column is legitimate (a field nobody filled in yet).
        warnings.simplefilter("ignore", RuntimeWarning)
        return fn(a.astype(np.float64), axis=0)


def _safe_std(std: np.ndarray) -> np.ndarray:
    # A constant feature would divide by zero; 1.0 leaves it centred and harmless.
    return np.where(std > 1e-6, std, 1.0).astype(np.float32)


@dataclass
class NormalizedArrays:
    x: np.ndarray  # float32 [N, T, F], 0 where missing or padding
    mask: np.ndarray  # bool [N, T, F], True = observed
    lengths: np.ndarray  # int64 [N]
    static_num: np.ndarray  # float32 [N, S]
    static_cat: np.ndarray  # int64 [N, C]
    labels: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.x.shape[0])


@dataclass
class Batch:
    x: torch.Tensor  # [B, T, F]
    obs_mask: torch.Tensor  # [B, T, F] float 0/1
    lengths: torch.Tensor  # [B] int64, always on CPU (pack_padded_sequence wants it there)
    static_num: torch.Tensor
    static_cat: torch.Tensor
    y: torch.Tensor | None = None

    @property
    def pad_mask(self) -> torch.Tensor:
        # True at padding, the convention of nn.MultiheadAttention's key_padding_mask.
        steps = torch.arange(self.x.shape[1])
        return steps[None, :] >= self.lengths[:, None]

    def to(self, device: torch.device | str) -> Batch:
        return Batch(
            x=self.x.to(device, non_blocking=True),
            obs_mask=self.obs_mask.to(device, non_blocking=True),
            lengths=self.lengths,
            static_num=self.static_num.to(device, non_blocking=True),
            static_cat=self.static_cat.to(device, non_blocking=True),
            y=None if self.y is None else self.y.to(device, non_blocking=True),
        )

    def pin_memory(self) -> Batch:
        # Called by DataLoader(pin_memory=True) for custom batch types.
        return Batch(
            x=self.x.pin_memory(),
            obs_mask=self.obs_mask.pin_memory(),
            lengths=self.lengths,
            static_num=self.static_num.pin_memory(),
            static_cat=self.static_cat.pin_memory(),
            y=None if self.y is None else self.y.pin_memory(),
        )

    def model_inputs(self) -> tuple[torch.Tensor, ...]:
        return (self.x, self.obs_mask, self.lengths, self.static_num, self.static_cat)


class SequenceDataset(Dataset):
    """Indexable by an int (one student) or a list of ints (a whole, already padded batch).

    Fetching whole batches at once (``DataLoader(batch_size=None, sampler=BatchSampler(...))``)
    keeps per-student Python overhead out of 100k-student epochs.
    """

    def __init__(
        self,
        data: NormalizedArrays,
        *,
        augment: bool = False,
        truncation_prob: float = 0.0,
        min_weeks: int = 1,
        feature_dropout_prob: float = 0.0,
        seed: int = 0,
        cat_dropout_prob: float = 0.0,
        feature_groups: Sequence[Sequence[int]] = (),
        feature_group_dropout_prob: float = 0.0,
    ) -> None:
        self.data = data
        self.augment = augment
        self.truncation_prob = truncation_prob
        self.min_weeks = max(1, min_weeks)
        self.feature_dropout_prob = feature_dropout_prob
        self.seed = seed
        self.cat_dropout_prob = cat_dropout_prob
        n_features = data.x.shape[2]
        for group in feature_groups:
            if any(not 0 <= int(c) < n_features for c in group):
                raise ValueError(
                    f"feature group {list(group)} names a column outside [0, {n_features})"
                )
        self.feature_groups = [np.asarray(g, dtype=np.int64) for g in feature_groups if len(g)]
        self.feature_group_dropout_prob = feature_group_dropout_prob
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int | Sequence[int]) -> Batch:
        if isinstance(index, int | np.integer):
            return self._batch(np.asarray([int(index)]), squeeze=True)
        return self._batch(np.asarray(index, dtype=np.int64), squeeze=False)

    def _batch(self, idx: np.ndarray, squeeze: bool) -> Batch:
        d = self.data
        lengths = d.lengths[idx].copy()
        x = d.x[idx]
        mask = d.mask[idx]
        static_cat = d.static_cat[idx]
        if self.augment:
            # The RNG depends only on (seed, epoch, indices) so that results do not
            # change with num_workers or the order workers finish in.
            rng = np.random.default_rng([self.seed, self.epoch, len(idx), *idx[:4].tolist()])
            lengths, x, mask = _augment(
                rng, lengths, x, mask, self.truncation_prob, self.min_weeks,
                self.feature_dropout_prob,
            )  # fmt: skip
            # Drawn after the older augmentations, so switching these on leaves the
            # random numbers of truncation and feature dropout as they were.
            if self.feature_groups and self.feature_group_dropout_prob > 0:
                x, mask = _drop_feature_groups(
                    rng, x, mask, self.feature_groups, self.feature_group_dropout_prob
                )
            if self.cat_dropout_prob > 0 and static_cat.size:
                # -1 is out of range, which the model maps to its "unknown" embedding.
                drop = rng.random(static_cat.shape) < self.cat_dropout_prob
                static_cat = np.where(drop, -1, static_cat)
        t_max = max(1, int(lengths.max())) if len(idx) else 1
        batch = Batch(
            x=torch.from_numpy(np.ascontiguousarray(x[:, :t_max])),
            obs_mask=torch.from_numpy(mask[:, :t_max].astype(np.float32)),
            lengths=torch.from_numpy(lengths),
            static_num=torch.from_numpy(d.static_num[idx]),
            static_cat=torch.from_numpy(np.ascontiguousarray(static_cat)),
            y=None if d.labels is None else torch.from_numpy(d.labels[idx].astype(np.float32)),
        )
        if squeeze:
            return _squeeze(batch)
        return batch


def _augment(
    rng: np.random.Generator,
    lengths: np.ndarray,
    x: np.ndarray,
    mask: np.ndarray,
    truncation_prob: float,
    min_weeks: int,
    feature_dropout_prob: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # Truncation keeps the end-of-year label: the model must learn to predict the
    # same outcome from the first k weeks, which is how it is used in September.
    n, t, _ = x.shape
    truncate = rng.random(n) < truncation_prob
    low = np.minimum(min_weeks, lengths)
    new_len = low + np.floor(rng.random(n) * (lengths - low + 1)).astype(np.int64)
    lengths = np.where(truncate & (lengths > 0), new_len, lengths)
    keep = np.arange(t)[None, :, None] < lengths[:, None, None]
    if feature_dropout_prob > 0:
        keep = keep & (rng.random(mask.shape) >= feature_dropout_prob)
    mask = mask & keep
    x = np.where(mask, x, 0.0).astype(np.float32)
    return lengths, x, mask


def _drop_feature_groups(
    rng: np.random.Generator,
    x: np.ndarray,
    mask: np.ndarray,
    groups: Sequence[np.ndarray],
    prob: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Hide each group of columns for a whole student (every week) with probability ``prob``."""
    n, _, f = x.shape
    hidden = np.zeros((n, f), dtype=bool)
    for columns in groups:
        drop = np.flatnonzero(rng.random(n) < prob)
        hidden[np.ix_(drop, columns)] = True
    mask = mask & ~hidden[:, None, :]
    x = np.where(mask, x, 0.0).astype(np.float32)
    return x, mask


def _squeeze(batch: Batch) -> Batch:
    return Batch(
        x=batch.x[0],
        obs_mask=batch.obs_mask[0],
        lengths=batch.lengths[0],
        static_num=batch.static_num[0],
        static_cat=batch.static_cat[0],
        y=None if batch.y is None else batch.y[0],
    )


def batch_identity(batch: Batch) -> Batch:
    # collate_fn for DataLoader(batch_size=None): the dataset already built the batch.
    # Module-level so that worker processes can pickle it.
    return batch


def collate(samples: Sequence[Batch]) -> Batch:
    """Pad single-student samples (as returned by ``dataset[i]``) into one batch."""
    t_max = max(1, max(int(s.x.shape[0]) for s in samples))
    n_feat = samples[0].x.shape[-1]
    x = torch.zeros(len(samples), t_max, n_feat)
    obs = torch.zeros(len(samples), t_max, n_feat)
    for i, s in enumerate(samples):
        x[i, : s.x.shape[0]] = s.x
        obs[i, : s.obs_mask.shape[0]] = s.obs_mask
    ys = [s.y for s in samples if s.y is not None]
    return Batch(
        x=x,
        obs_mask=obs,
        lengths=torch.stack([torch.as_tensor(s.lengths) for s in samples]).long(),
        static_num=torch.stack([s.static_num for s in samples]),
        static_cat=torch.stack([s.static_cat for s in samples]),
        y=torch.stack(ys) if len(ys) == len(samples) else None,
    )
