"""Baselines: the ABC indicator rule, logistic regression and gradient-boosted trees."""

from __future__ import annotations

import numpy as np
import pytest

from ml.baselines import (
    BASELINE_NAMES,
    IndicatorRule,
    evaluate_baselines,
    fit_baseline,
    flatten_features,
    indicator_risk,
    predict,
    score_metrics,
)

NAMES = ["attendance_rate", "grade_avg", "discipline_incidents", "serious_incidents"]


def _arrays(rows: list[list[list[float]]], lengths: list[int] | None = None) -> dict:
    seq = np.asarray(rows, dtype=np.float32)
    n, t, _ = seq.shape
    return {
        "seq": seq,
        "lengths": np.asarray(lengths if lengths is not None else [t] * n),
        "static_num": np.zeros((n, 1), dtype=np.float32),
        "static_cat": np.zeros((n, 1), dtype=np.int64),
        "labels": np.zeros(n, dtype=np.float32),
    }


def _student(attendance: float, grade: float, incidents: float = 0.0, serious: float = 0.0):
    return [[attendance, grade, incidents, serious]] * 3


def _learnable(n: int = 400, seed: int = 0) -> dict:
    # Dropouts have falling attendance and a lower static score: both kinds of signal.
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < 0.3).astype(np.float32)
    weeks = np.arange(6)[None, :]
    attendance = 0.93 - 0.05 * labels[:, None] * weeks + 0.03 * rng.normal(size=(n, 6))
    grade = 70 - 10 * labels[:, None] + 5 * rng.normal(size=(n, 6))
    seq = np.stack([attendance, grade, np.zeros((n, 6)), np.zeros((n, 6))], axis=2)
    seq[rng.random(seq.shape) < 0.1] = np.nan
    return {
        "seq": seq.astype(np.float32),
        "lengths": rng.integers(3, 7, size=n),
        "static_num": (rng.normal(size=(n, 2)) - labels[:, None]).astype(np.float32),
        "static_cat": rng.integers(0, 3, size=(n, 2)),
        "labels": labels,
    }


def test_indicator_orders_at_risk_above_watch_above_fine() -> None:
    arrays = _arrays(
        [
            _student(0.97, 0.80),  # fine
            _student(0.85, 0.80),  # watch: attendance below 88%
            _student(0.70, 0.80),  # at risk: attendance below 80%
            _student(0.97, 0.20),  # at risk: failing grade
            _student(0.97, 0.80, serious=1.0),  # at risk: serious incident
            _student(0.97, 0.80, incidents=1.0),  # watch: a minor incident
        ]
    )
    risk = indicator_risk(arrays, NAMES)
    assert np.all((risk >= 0) & (risk <= 1))
    assert risk[0] < 1 / 3
    assert 1 / 3 <= risk[1] < 2 / 3 and 1 / 3 <= risk[5] < 2 / 3
    assert np.all(risk[[2, 3, 4]] >= 2 / 3)


def test_indicator_treats_grades_above_one_as_percentages() -> None:
    arrays = _arrays([_student(0.97, 80.0), _student(0.97, 20.0)])
    risk = indicator_risk(arrays, NAMES)
    assert risk[0] < 1 / 3 <= 2 / 3 <= risk[1]


def test_indicator_ignores_padding_and_missing_weeks() -> None:
    # Week 3 is padding (length 2) and would put the student at risk if it were read.
    seq = [[[0.95, 0.8, 0.0, 0.0], [np.nan, 0.8, 0.0, 0.0], [0.1, 0.1, 5.0, 5.0]]]
    risk = indicator_risk(_arrays(seq, lengths=[2]), NAMES)
    assert risk[0] < 1 / 3


def test_indicator_never_fires_on_columns_a_district_does_not_have() -> None:
    arrays = _arrays([[[0.5]] * 2, [[0.99]] * 2])
    risk = indicator_risk(arrays, ["attendance_rate"])
    assert risk[0] >= 2 / 3 > 1 / 3 > risk[1]
    assert np.all(indicator_risk(arrays, ["something_else"]) == 0)


def test_indicator_any_mode_counts_weeks_with_activity_as_attended() -> None:
    rule = IndicatorRule(attendance_features=("clicks",), attendance_mode="any")
    arrays = _arrays([[[3.0], [0.0], [0.0], [1.0]], [[5.0], [2.0], [1.0], [4.0]]])
    risk = indicator_risk(arrays, ["clicks"], rule)
    assert risk[0] >= 2 / 3 and risk[1] < 1 / 3


def test_indicator_rejects_a_feature_name_count_mismatch() -> None:
    with pytest.raises(ValueError, match="feature names"):
        indicator_risk(_arrays([_student(0.9, 0.9)]), NAMES[:2])


def test_flatten_uses_the_last_valid_weeks_and_counts_missing() -> None:
    seq = [[[1.0], [np.nan], [3.0], [99.0]]]
    arrays = _arrays(seq, lengths=[3])
    flat, names = flatten_features(arrays, ["x"], last_k=2)
    row = dict(zip(names, flat[0], strict=True))
    assert row["x_last1"] == 3.0 and np.isnan(row["x_last2"])
    assert row["x_mean"] == 2.0 and row["x_min"] == 1.0 and row["x_max"] == 3.0
    assert row["x_lastobs"] == 3.0 and row["x_slope"] == pytest.approx(1.0)
    assert row["x_n_missing"] == 1.0 and row["n_weeks"] == 3.0
    assert flat.shape[1] == len(names)


@pytest.mark.parametrize("name", ["logistic", "gbt"])
def test_learned_baselines_find_the_signal(name: str) -> None:
    train, test = _learnable(400, seed=0), _learnable(300, seed=1)
    fitted = fit_baseline(name, train, NAMES, seed=0)
    scores = predict(fitted, test)
    assert scores.shape == (300,) and np.all((scores >= 0) & (scores <= 1))
    assert score_metrics(test["labels"], scores)["roc_auc"] > 0.8


def test_learned_baselines_accept_unseen_categories() -> None:
    train, test = _learnable(300, seed=0), _learnable(50, seed=1)
    test["static_cat"][:, 0] = 7  # a module the training data never had
    for name in ("logistic", "gbt"):
        assert np.isfinite(fit_baseline(name, train, NAMES).predict(test)).all()


def test_fit_baseline_rejects_unknown_names_and_single_class_labels() -> None:
    train = _learnable(100)
    with pytest.raises(ValueError, match="unknown baseline"):
        fit_baseline("forest", train, NAMES)
    train["labels"][:] = 0
    with pytest.raises(ValueError, match="both classes"):
        fit_baseline("logistic", train, NAMES)


def test_evaluate_baselines_reports_every_metric_for_every_baseline() -> None:
    results = evaluate_baselines(_learnable(300, 0), _learnable(200, 1), NAMES)
    assert set(results) == set(BASELINE_NAMES)
    for metrics in results.values():
        assert set(metrics) == {"roc_auc", "pr_auc", "brier"}
        assert 0.0 <= metrics["roc_auc"] <= 1.0
    assert results["gbt"]["roc_auc"] > results["indicator"]["roc_auc"] - 0.2


def test_score_metrics_is_nan_when_only_one_class_is_present() -> None:
    metrics = score_metrics(np.zeros(4), np.linspace(0, 1, 4))
    assert np.isnan(metrics["roc_auc"])
