from __future__ import annotations

import numpy as np
import pytest

from ml.calibration import fit_temperature
from ml.metrics import (
    Thresholds,
    brier,
    choose_thresholds,
    evaluate,
    expected_calibration_error,
    pr_auc,
    reliability_table,
    roc_auc,
    subgroup_metrics,
    threshold_metrics,
)

LABELS = np.array([0, 0, 1, 1])
PROBS = np.array([0.1, 0.4, 0.35, 0.8])


def test_ranking_metrics_on_the_textbook_example() -> None:
    # 3 of the 4 (positive, negative) pairs are ordered correctly.
    assert roc_auc(LABELS, PROBS) == pytest.approx(0.75)
    # Ranked: 0.8(+) 0.4(-) 0.35(+) 0.1(-) -> AP = (1/1 + 2/3) / 2.
    assert pr_auc(LABELS, PROBS) == pytest.approx((1 + 2 / 3) / 2)
    assert brier(LABELS, PROBS) == pytest.approx((0.01 + 0.16 + 0.4225 + 0.04) / 4)
    assert roc_auc(np.ones(3), np.array([0.1, 0.2, 0.3])) is None


def test_threshold_metrics_count_the_confusion_matrix() -> None:
    m = threshold_metrics(LABELS, PROBS, 0.35)
    assert (m["tp"], m["fp"], m["tn"], m["fn"]) == (2, 1, 1, 0)
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == 1.0
    assert m["f1"] == pytest.approx(0.8)
    assert m["fpr"] == 0.5 and m["fnr"] == 0.0


def test_reliability_table_and_ece() -> None:
    labels = np.array([0, 1, 1, 1])
    probs = np.array([0.05, 0.15, 0.95, 1.0])
    rows = reliability_table(labels, probs, n_bins=2)
    assert [r["count"] for r in rows] == [2, 2]
    assert rows[0]["mean_predicted"] == pytest.approx(0.1)
    assert rows[0]["fraction_positive"] == pytest.approx(0.5)
    # |0.1 - 0.5| * 2/4 + |0.975 - 1| * 2/4
    assert expected_calibration_error(labels, probs, 2) == pytest.approx(0.2125)


def test_thresholds_reach_the_target_recall_with_the_highest_cut() -> None:
    labels = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    probs = np.array([0.9, 0.8, 0.3, 0.2, 0.85, 0.5, 0.25, 0.1, 0.05, 0.0])
    t = choose_thresholds(probs, labels, target_recall=0.5, watch_recall=1.0)
    assert t.high == pytest.approx(0.8)
    assert t.watch == pytest.approx(0.2)
    assert threshold_metrics(labels, probs, t.high)["recall"] == 0.5
    assert [t.level(p) for p in (0.95, 0.5, 0.1)] == ["high", "watch", "low"]
    assert Thresholds.from_dict(t.to_dict()) == t


def test_subgroup_rates_and_ratios() -> None:
    labels = np.array([1, 0, 0, 1, 0, 0])
    probs = np.array([0.9, 0.8, 0.1, 0.2, 0.1, 0.1])
    groups = {"gender": np.array(["f", "f", "f", "m", "m", "m"])}
    report = subgroup_metrics(labels, probs, groups, threshold=0.5)["gender"]
    f, m = report["groups"]["f"], report["groups"]["m"]
    assert (f["n"], f["positives"], f["fpr"], f["fnr"]) == (3, 1, 0.5, 0.0)
    assert (m["fpr"], m["fnr"]) == (0.0, 1.0)
    assert f["auc"] == pytest.approx(1.0)
    # One group has no false positives at all: the ratio is undefined, not infinite.
    assert report["fpr_ratio"] is None
    assert report["fnr_ratio"] is None
    both = subgroup_metrics(labels, np.array([0.9, 0.8, 0.7, 0.2, 0.6, 0.1]), groups, 0.5)
    assert both["gender"]["fpr_ratio"] == pytest.approx(2.0)


def test_evaluate_is_json_ready() -> None:
    import json

    t = choose_thresholds(PROBS, LABELS, 0.5)
    report = evaluate(LABELS, PROBS, t, {"g": np.array([0, 1, 0, 1])})
    json.dumps(report)
    assert report["roc_auc"] == pytest.approx(0.75)


def test_temperature_scaling_recovers_a_known_temperature_and_keeps_the_ranking() -> None:
    rng = np.random.default_rng(0)
    true_logits = rng.normal(scale=1.5, size=20_000)
    labels = (rng.random(20_000) < 1 / (1 + np.exp(-true_logits))).astype(float)
    # An over-confident model: logits 3x too large and shifted by +1.
    temperature, bias = fit_temperature(3 * true_logits + 3.0, labels)
    assert temperature == pytest.approx(3.0, rel=0.1)
    assert bias == pytest.approx(-1.0, abs=0.1)
