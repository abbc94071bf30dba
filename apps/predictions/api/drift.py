"""Drift of the model's inputs: this week's features against the training statistics.

The checkpoint keeps each sequence feature's training mean and standard deviation
(the normaliser), not its histogram, so the training distribution is taken as the
normal distribution with those moments: the population stability index (PSI)
compares the share of this week's values in the ten deciles of that normal with
the 10% each would hold. Skewed or bounded features (rates near 0 or 1) read a
little high even without drift, so ``mean_shift`` (how many training standard
deviations the mean moved) is reported beside it. PSI < 0.1 is read as stable,
0.1-0.25 as a moderate shift, above 0.25 as a large one.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

# Standard-normal deciles.
_Z_EDGES = np.array([-1.2816, -0.8416, -0.5244, -0.2533, 0.0, 0.2533, 0.5244, 0.8416, 1.2816])
_EPS = 1e-4


def psi_against_normal(values: np.ndarray, mean: float, std: float) -> float | None:
    values = values[~np.isnan(values)]
    if len(values) == 0 or not std > 0:
        return None
    edges = mean + std * _Z_EDGES
    counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=10)
    actual = np.maximum(counts / len(values), _EPS)
    expected = 0.1
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def feature_drift(
    *, columns: list[str], values: np.ndarray, mean: np.ndarray, std: np.ndarray
) -> list[dict[str, Any]]:
    """values: float [N, F] for one week, NaN where not observed."""
    rows = []
    for i, column in enumerate(columns):
        observed = values[:, i][~np.isnan(values[:, i])]
        psi = psi_against_normal(observed, float(mean[i]), float(std[i]))
        shift = (
            float((observed.mean() - mean[i]) / std[i]) if len(observed) and std[i] > 0 else None
        )
        rows.append(
            {
                "feature": column,
                "observed": int(len(observed)),
                "training_mean": float(mean[i]),
                "training_std": float(std[i]),
                "current_mean": float(observed.mean()) if len(observed) else None,
                "mean_shift": None if shift is None or math.isnan(shift) else shift,
                "psi": psi,
                "level": _level(psi),
            }
        )
    return rows


def _level(psi: float | None) -> str:
    if psi is None:
        return "unknown"
    if psi < 0.1:
        return "stable"
    return "moderate" if psi < 0.25 else "large"
