from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score


def _prep(labels: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels, dtype=np.float64).reshape(-1)
    p = np.asarray(probs, dtype=np.float64).reshape(-1)
    if y.shape != p.shape:
        raise ValueError(f"labels {y.shape} and probs {p.shape} differ in length")
    return y, p


def _both_classes(y: np.ndarray) -> bool:
    return bool(y.size) and 0 < y.sum() < y.size


def roc_auc(labels: np.ndarray, probs: np.ndarray) -> float | None:
    # None, not 0.5: with one class present the AUC is undefined, and a fake
    # number would flatter a tiny subgroup.
    y, p = _prep(labels, probs)
    return float(roc_auc_score(y, p)) if _both_classes(y) else None


def pr_auc(labels: np.ndarray, probs: np.ndarray) -> float | None:
    y, p = _prep(labels, probs)
    return float(average_precision_score(y, p)) if y.sum() > 0 else None


def brier(labels: np.ndarray, probs: np.ndarray) -> float:
    y, p = _prep(labels, probs)
    return float(np.mean((p - y) ** 2)) if y.size else float("nan")


def reliability_table(
    labels: np.ndarray, probs: np.ndarray, n_bins: int = 10
) -> list[dict[str, float | int]]:
    y, p = _prep(labels, probs)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # Right-closed last bin so that p == 1.0 is counted.
    idx = np.clip(np.digitize(p, edges[1:-1], right=False), 0, n_bins - 1)
    rows: list[dict[str, float | int]] = []
    for b in range(n_bins):
        sel = idx == b
        count = int(sel.sum())
        rows.append(
            {
                "lower": float(edges[b]),
                "upper": float(edges[b + 1]),
                "count": count,
                "mean_predicted": float(p[sel].mean()) if count else 0.0,
                "fraction_positive": float(y[sel].mean()) if count else 0.0,
            }
        )
    return rows


def expected_calibration_error(labels: np.ndarray, probs: np.ndarray, n_bins: int = 10) -> float:
    rows = reliability_table(labels, probs, n_bins)
    total = sum(int(r["count"]) for r in rows)
    if not total:
        return float("nan")
    return float(
        sum(r["count"] * abs(r["mean_predicted"] - r["fraction_positive"]) for r in rows) / total
    )


def threshold_metrics(labels: np.ndarray, probs: np.ndarray, threshold: float) -> dict[str, Any]:
    y, p = _prep(labels, probs)
    pred = p >= threshold
    pos = y > 0.5
    tp = int((pred & pos).sum())
    fp = int((pred & ~pos).sum())
    fn = int((~pred & pos).sum())
    tn = int((~pred & ~pos).sum())
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None
    return {
        "threshold": float(threshold),
        "tp": tp,
        "fp": fp,
        "tn": tn,
        "fn": fn,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "fpr": fp / (fp + tn) if fp + tn else None,
        "fnr": fn / (fn + tp) if fn + tp else None,
        "flagged_fraction": float(pred.mean()) if y.size else None,
    }


@dataclass
class Thresholds:
    """Risk tiers: p >= high -> "high"; p >= watch -> "watch"; else "low"."""

    high: float
    watch: float
    target_recall: float
    watch_recall: float

    def level(self, prob: float) -> str:
        if prob >= self.high:
            return "high"
        if prob >= self.watch:
            return "watch"
        return "low"

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, float]) -> Thresholds:
        return cls(
            **{k: float(data[k]) for k in ("high", "watch", "target_recall", "watch_recall")}
        )


def threshold_for_recall(labels: np.ndarray, probs: np.ndarray, target_recall: float) -> float:
    """Largest threshold whose recall (p >= threshold) reaches ``target_recall``."""
    y, p = _prep(labels, probs)
    pos = np.sort(p[y > 0.5])[::-1]
    if pos.size == 0:
        return 0.5
    # Flagging the k highest-scored positives gives recall k / n_pos; the k-th
    # positive's score is the largest threshold that catches k of them.
    k = int(np.ceil(target_recall * pos.size - 1e-9))
    return float(pos[max(k, 1) - 1])


def choose_thresholds(
    probs: np.ndarray, labels: np.ndarray, target_recall: float, watch_recall: float | None = None
) -> Thresholds:
    if watch_recall is None:
        watch_recall = target_recall + (1.0 - target_recall) / 2.0
    watch_recall = max(watch_recall, target_recall)
    high = threshold_for_recall(labels, probs, target_recall)
    watch = min(threshold_for_recall(labels, probs, watch_recall), high)
    return Thresholds(
        high=high, watch=watch, target_recall=target_recall, watch_recall=watch_recall
    )


def _ratio(values: list[float]) -> float | None:
    # max/min of a rate across groups; None when it is undefined (a group with a
    # zero rate while another is non-zero), 1.0 when every group is at zero.
    if len(values) < 2:
        return None
    hi, lo = max(values), min(values)
    if hi == 0.0:
        return 1.0
    return hi / lo if lo > 0 else None


def subgroup_metrics(
    labels: np.ndarray,
    probs: np.ndarray,
    groups: Mapping[str, np.ndarray],
    threshold: float,
    min_size: int = 1,
) -> dict[str, dict[str, Any]]:
    y, p = _prep(labels, probs)
    report: dict[str, dict[str, Any]] = {}
    for name, values in groups.items():
        values = np.asarray(values).reshape(-1)
        per_value: dict[str, dict[str, Any]] = {}
        for value in np.unique(values):
            sel = values == value
            if sel.sum() < min_size:
                continue
            tm = threshold_metrics(y[sel], p[sel], threshold)
            per_value[str(value)] = {
                "n": int(sel.sum()),
                "positives": int(y[sel].sum()),
                "auc": roc_auc(y[sel], p[sel]),
                "fpr": tm["fpr"],
                "fnr": tm["fnr"],
            }
        fprs = [g["fpr"] for g in per_value.values() if g["fpr"] is not None]
        fnrs = [g["fnr"] for g in per_value.values() if g["fnr"] is not None]
        report[name] = {
            "groups": per_value,
            "fpr_ratio": _ratio(fprs),
            "fnr_ratio": _ratio(fnrs),
        }
    return report


def evaluate(
    labels: np.ndarray,
    probs: np.ndarray,
    thresholds: Thresholds | None = None,
    groups: Mapping[str, np.ndarray] | None = None,
    n_bins: int = 10,
) -> dict[str, Any]:
    """Everything a ModelVersion stores, as plain JSON-able data."""
    y, p = _prep(labels, probs)
    result: dict[str, Any] = {
        "n": int(y.size),
        "positives": int(y.sum()),
        "roc_auc": roc_auc(y, p),
        "pr_auc": pr_auc(y, p),
        "brier": brier(y, p),
        "ece": expected_calibration_error(y, p, n_bins),
        "reliability": reliability_table(y, p, n_bins),
    }
    if thresholds is not None:
        result["thresholds"] = thresholds.to_dict()
        result["at_high"] = threshold_metrics(y, p, thresholds.high)
        result["at_watch"] = threshold_metrics(y, p, thresholds.watch)
        if groups:
            result["subgroups"] = subgroup_metrics(y, p, groups, thresholds.high)
    return result
