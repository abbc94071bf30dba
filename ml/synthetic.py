from __future__ import annotations

import numpy as np

from ml.data import SequenceArrays

_BASE_NAMES = ("attendance_rate", "grade_avg", "discipline_incidents", "assignments_missing")


def synthetic_feature_names(n_features: int) -> list[str]:
    extra = [f"noise_{i}" for i in range(max(0, n_features - len(_BASE_NAMES)))]
    return list(_BASE_NAMES[:n_features]) + extra


def make_synthetic(
    n_students: int = 1000,
    n_weeks: int = 20,
    n_features: int = 6,
    seed: int = 0,
    *,
    n_static_numeric: int = 2,
    static_cat_cardinalities: tuple[int, ...] = (2, 4),
    missing_rate: float = 0.1,
    min_weeks: int = 4,
    base_rate_logit: float = -1.6,
    signal_feature: int = 0,
) -> SequenceArrays:
    """Students whose dropout shows up as a decline in ``signal_feature`` from a random onset.

    The label also depends on a latent risk that leaks weakly into the other
    features and the first static columns, so early weeks carry some signal and
    later weeks carry more: the shape of the real problem, at numpy speed.
    """
    if n_features < 1 or n_weeks < 1:
        raise ValueError("need at least one feature and one week")
    rng = np.random.default_rng(seed)
    n, t, f = n_students, n_weeks, n_features
    latent = rng.normal(size=n)
    static_num = rng.normal(size=(n, n_static_numeric)).astype(np.float32)
    static_cat = np.stack(
        [rng.integers(0, c, size=n) for c in static_cat_cardinalities], axis=1
    ).reshape(n, len(static_cat_cardinalities))
    logit = base_rate_logit + 1.4 * latent
    if n_static_numeric:
        logit = logit + 0.5 * static_num[:, 0]
    if static_cat_cardinalities:
        logit = logit + 0.3 * (static_cat[:, -1] == 0)
    labels = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(np.float32)

    weeks = np.arange(t)[None, :]
    onset = rng.uniform(0.1, 0.6, size=(n, 1)) * t
    ramp = np.clip((weeks - onset) / max(1.0, 0.25 * t), 0.0, 1.0)  # [N, T]
    seq = rng.normal(scale=1.0, size=(n, t, f)).astype(np.float32)
    drift = labels[:, None] * ramp
    # The signal feature behaves like attendance: high, noisy, falling after onset.
    seq[:, :, signal_feature] = (
        0.92 - 0.04 * latent[:, None] - 0.35 * drift + 0.04 * rng.normal(size=(n, t))
    )
    other = (signal_feature + 1) % f
    if other != signal_feature:
        seq[:, :, other] = (
            72.0 - 5.0 * latent[:, None] - 6.0 * drift + 6.0 * rng.normal(size=(n, t))
        )
    third = (signal_feature + 2) % f
    if third not in (signal_feature, other):
        seq[:, :, third] = rng.poisson(0.1 + 0.4 * drift).astype(np.float32)

    lengths = rng.integers(min(min_weeks, t), t + 1, size=n)
    seq[rng.random(seq.shape) < missing_rate] = np.nan
    seq[weeks >= lengths[:, None]] = np.nan

    group = {f"cat{i}": static_cat[:, i].copy() for i in range(static_cat.shape[1])}
    return SequenceArrays(
        seq=seq,
        lengths=lengths,
        static_num=static_num,
        static_cat=static_cat,
        labels=labels,
        group=group,
    )
