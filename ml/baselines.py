"""Simple baselines every EduPulse model is compared against (DESIGN "Risk model").

Three of them, all reading the exact arrays the sequence model reads (``seq`` [N, T, F]
with NaN for missing, ``lengths`` [N], ``static_num`` [N, S], ``static_cat`` [N, C],
``labels`` [N]), so a comparison never hides a difference in information:

* ``indicator``: the attendance / behaviour / course-failure ("ABC") early-warning rule
  that districts run by hand. No fitting.
* ``logistic``: logistic regression on a flattened summary of the weeks.
* ``gbt``: histogram gradient-boosted trees on the same summary.

Pure numpy and scikit-learn: no torch, no Django.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from ml.metrics import brier, pr_auc, roc_auc

# A mapping of the array names below, or any object with them as attributes
# (ml.data.SequenceArrays).
Arrays = Mapping[str, np.ndarray] | Any

BASELINE_NAMES = ("indicator", "logistic", "gbt")


def _get(arrays: Arrays, key: str) -> np.ndarray | None:
    if isinstance(arrays, Mapping):
        value = arrays.get(key)
    else:
        value = getattr(arrays, key, None)
    return None if value is None else np.asarray(value)


def _require(arrays: Arrays, key: str) -> np.ndarray:
    value = _get(arrays, key)
    if value is None:
        raise ValueError(f"the arrays have no {key!r}")
    return value


# --------------------------------------------------------------------------- indicator rule


@dataclass(frozen=True)
class IndicatorRule:
    """The ABC early-warning indicators, expressed over weekly feature columns.

    A student is *at risk* when year-to-date attendance is below ``attendance_at_risk``,
    or any serious incident was recorded, or a core subject is failing; *watch* when
    attendance is below ``attendance_watch``, any incident was recorded, or a grade is
    within reach of failing. Feature names select the columns; a rule whose columns are
    absent simply never fires, so one rule runs on districts with no discipline data.
    """

    # Columns holding a weekly attendance share in [0, 1] (or, with attendance_mode
    # "any", a weekly activity count where > 0 means "attended that week").
    attendance_features: tuple[str, ...] = ("attendance_rate", "attendance")
    attendance_mode: str = "share"
    # Columns counting incidents per week; "serious" ones put a student straight at risk.
    incident_features: tuple[str, ...] = ("incidents", "discipline_incidents")
    serious_incident_features: tuple[str, ...] = ("serious_incidents", "suspensions")
    # Columns holding a grade as a share of the maximum; the last observed value counts.
    grade_features: tuple[str, ...] = ("grade_avg", "core_grade", "math_grade", "language_grade")
    # Columns that directly count failed courses/assessments in a week.
    failure_count_features: tuple[str, ...] = ("failing_subjects",)
    attendance_at_risk: float = 0.80
    attendance_watch: float = 0.88
    grade_fail: float = 0.33  # Bangladesh's SSC pass mark is 33%.
    grade_watch: float = 0.45
    # Grades arrive as a share (0-1) or a percentage (0-100); None = tell from the data
    # (a column whose values exceed 1.5 is taken as a percentage).
    grade_max: float | None = None

    def __post_init__(self) -> None:
        if self.attendance_mode not in {"share", "any"}:
            raise ValueError("attendance_mode must be 'share' or 'any'")
        if not self.attendance_at_risk <= self.attendance_watch:
            raise ValueError("attendance_at_risk must not exceed attendance_watch")
        if not self.grade_fail <= self.grade_watch:
            raise ValueError("grade_fail must not exceed grade_watch")


def _valid_steps(arrays: Arrays) -> np.ndarray:
    """[N, T] mask of the steps inside each sequence (padding after ``lengths`` excluded)."""
    seq = _require(arrays, "seq")
    lengths = np.asarray(_require(arrays, "lengths")).reshape(-1)
    return np.arange(seq.shape[1])[None, :] < lengths[:, None]


def _columns(
    seq: np.ndarray, valid: np.ndarray, names: Sequence[str], wanted: Sequence[str]
) -> np.ndarray:
    """[N, T, k] of the wanted columns that exist, NaN outside the valid steps."""
    index = [i for i, name in enumerate(names) if name in set(wanted)]
    block = seq[:, :, index].astype(np.float64)
    block[~valid] = np.nan
    return block


def _last_observed(values: np.ndarray) -> np.ndarray:
    """Last non-NaN value along axis 1 of [N, T]; NaN where none."""
    observed = ~np.isnan(values)
    has_any = observed.any(axis=1)
    last_idx = values.shape[1] - 1 - np.argmax(observed[:, ::-1], axis=1)
    out = values[np.arange(len(values)), last_idx]
    return np.where(has_any, out, np.nan)


def _grade_scale(grades: np.ndarray, grade_max: float | None) -> np.ndarray:
    """Per grade column, the value of a perfect mark."""
    if grade_max is not None:
        return np.full(grades.shape[2], float(grade_max))
    with _quiet_nan_warnings():
        top = np.nanmax(grades, axis=(0, 1))
    return np.where(np.nan_to_num(top, nan=0.0) > 1.5, 100.0, 1.0)


def indicator_risk(
    arrays: Arrays, feature_names: Sequence[str], rule: IndicatorRule | None = None
) -> np.ndarray:
    """Risk score in [0, 1] from the ABC rule: tier (none / watch / at risk) plus severity.

    The tier fixes the band (0-1/3, 1/3-2/3, 2/3-1) so the score orders students exactly
    as the rule does; within a band the severity (how far below the thresholds) breaks
    ties, which lets ROC-AUC be computed without rewarding the rule for anything it
    would not tell a counselor.
    """
    rule = rule or IndicatorRule()
    seq = np.asarray(_require(arrays, "seq"))
    n = seq.shape[0]
    names = list(feature_names)
    if len(names) != seq.shape[2]:
        raise ValueError(f"{len(names)} feature names for {seq.shape[2]} sequence features")
    valid = _valid_steps(arrays)
    at_risk = np.zeros(n, dtype=bool)
    watch = np.zeros(n, dtype=bool)
    severities: list[np.ndarray] = []

    with np.errstate(invalid="ignore"), _quiet_nan_warnings():
        attendance = _columns(seq, valid, names, rule.attendance_features)
        if attendance.shape[2]:
            if rule.attendance_mode == "any":
                attendance = np.where(np.isnan(attendance), np.nan, (attendance > 0).astype(float))
            rate = np.nanmean(np.nanmean(attendance, axis=2), axis=1)
            known = ~np.isnan(rate)
            at_risk |= known & (rate < rule.attendance_at_risk)
            watch |= known & (rate < rule.attendance_watch)
            severities.append(np.where(known, np.clip(1.0 - rate, 0.0, 1.0), np.nan))

        serious = _columns(seq, valid, names, rule.serious_incident_features)
        if serious.shape[2]:
            at_risk |= np.nansum(serious, axis=(1, 2)) > 0
        incidents = _columns(seq, valid, names, rule.incident_features)
        if incidents.shape[2]:
            total = np.nansum(incidents, axis=(1, 2))
            watch |= total > 0
            severities.append(np.clip(total / 3.0, 0.0, 1.0))

        grades = _columns(seq, valid, names, rule.grade_features)
        if grades.shape[2]:
            last = np.stack([_last_observed(grades[:, :, j]) for j in range(grades.shape[2])], 1)
            last = last / _grade_scale(grades, rule.grade_max)[None, :]
            worst = np.nanmin(last, axis=1)
            known = ~np.isnan(worst)
            at_risk |= known & (worst < rule.grade_fail)
            watch |= known & (worst < rule.grade_watch)
            severities.append(np.where(known, np.clip(1.0 - worst, 0.0, 1.0), np.nan))

        failures = _columns(seq, valid, names, rule.failure_count_features)
        if failures.shape[2]:
            total = np.nansum(failures, axis=(1, 2))
            at_risk |= total > 0
            severities.append(np.clip(total / 3.0, 0.0, 1.0))

        if severities:
            severity = np.nanmean(np.stack(severities, axis=1), axis=1)
            severity = np.nan_to_num(severity, nan=0.0)
        else:
            severity = np.zeros(n)

    tier = np.where(at_risk, 2.0, np.where(watch, 1.0, 0.0))
    # Severity stays just below 1 so the three bands never overlap.
    return ((tier + 0.999 * severity) / 3.0).astype(np.float64)


@contextmanager
def _quiet_nan_warnings() -> Iterator[None]:
    """Silence numpy's "mean of empty slice": all-NaN rows are expected and handled."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        yield


# --------------------------------------------------------------------------- flat features


def flatten_features(
    arrays: Arrays,
    feature_names: Sequence[str],
    static_num_names: Sequence[str] | None = None,
    last_k: int = 4,
) -> tuple[np.ndarray, list[str]]:
    """One row per student: last-k weekly values and summary statistics, then static numerics.

    Per weekly feature: the values of the last ``last_k`` weeks (most recent first), the
    mean, min, max and last observed value over all weeks, the least-squares slope per
    week, and how many weeks are missing. The categorical statics are not included: each
    baseline encodes ``static_cat`` its own way.
    """
    seq = np.asarray(_require(arrays, "seq"), dtype=np.float64)
    n, t, f = seq.shape
    if len(feature_names) != f:
        raise ValueError(f"{len(feature_names)} feature names for {f} sequence features")
    lengths = np.asarray(_require(arrays, "lengths")).reshape(-1).astype(np.int64)
    valid = _valid_steps(arrays)
    seq = np.where(valid[:, :, None], seq, np.nan)
    rows = np.arange(n)
    blocks: list[np.ndarray] = []
    names: list[str] = []

    for j in range(1, last_k + 1):
        idx = lengths - j
        vals = seq[rows, np.clip(idx, 0, t - 1), :]
        blocks.append(np.where((idx >= 0)[:, None], vals, np.nan))
        names += [f"{name}_last{j}" for name in feature_names]

    with _quiet_nan_warnings():
        blocks.append(np.nanmean(seq, axis=1))
        names += [f"{name}_mean" for name in feature_names]
        blocks.append(np.nanmin(seq, axis=1))
        names += [f"{name}_min" for name in feature_names]
        blocks.append(np.nanmax(seq, axis=1))
        names += [f"{name}_max" for name in feature_names]
    blocks.append(np.stack([_last_observed(seq[:, :, k]) for k in range(f)], axis=1))
    names += [f"{name}_lastobs" for name in feature_names]
    blocks.append(_slopes(seq))
    names += [f"{name}_slope" for name in feature_names]
    missing = (np.isnan(seq) & valid[:, :, None]).sum(axis=1).astype(np.float64)
    blocks.append(missing)
    names += [f"{name}_n_missing" for name in feature_names]
    blocks.append(lengths[:, None].astype(np.float64))
    names.append("n_weeks")

    static_num = _get(arrays, "static_num")
    if static_num is not None and np.asarray(static_num).size:
        static_num = np.asarray(static_num, dtype=np.float64).reshape(n, -1)
        blocks.append(static_num)
        if static_num_names is None:
            static_num_names = [f"static_{i}" for i in range(static_num.shape[1])]
        names += list(static_num_names)
    return np.concatenate(blocks, axis=1), names


def _slopes(seq: np.ndarray) -> np.ndarray:
    """Least-squares slope per step of each feature over its observed steps; NaN below 2."""
    t = np.arange(seq.shape[1], dtype=np.float64)[None, :, None]
    observed = ~np.isnan(seq)
    count = observed.sum(axis=1)
    y = np.where(observed, seq, 0.0)
    tt = np.where(observed, t, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        t_mean = tt.sum(axis=1) / count
        y_mean = y.sum(axis=1) / count
        dt = np.where(observed, t - t_mean[:, None, :], 0.0)
        dy = np.where(observed, seq - y_mean[:, None, :], 0.0)
        var = (dt * dt).sum(axis=1)
        slope = (dt * dy).sum(axis=1) / var
    return np.where((count >= 2) & (var > 0), slope, np.nan)


# --------------------------------------------------------------------------- fit / predict


@dataclass
class FittedBaseline:
    """A fitted baseline; ``predict`` returns the probability-like risk of each student."""

    name: str
    feature_names: list[str]
    static_num_names: list[str] | None = None
    estimator: Any = None
    rule: IndicatorRule | None = None
    last_k: int = 4
    flat_names: list[str] = field(default_factory=list)

    def predict(self, arrays: Arrays) -> np.ndarray:
        if self.name == "indicator":
            return indicator_risk(arrays, self.feature_names, self.rule)
        design = _design(arrays, self.feature_names, self.static_num_names, self.last_k)
        return self.estimator.predict_proba(design)[:, 1]


def _design(
    arrays: Arrays,
    feature_names: Sequence[str],
    static_num_names: Sequence[str] | None,
    last_k: int,
) -> np.ndarray:
    flat, _ = flatten_features(arrays, feature_names, static_num_names, last_k)
    cats = _get(arrays, "static_cat")
    n = flat.shape[0]
    cats = np.zeros((n, 0)) if cats is None else np.asarray(cats).reshape(n, -1)
    # Categories ride along as float columns; each estimator's pipeline splits them off.
    return np.concatenate([flat, cats.astype(np.float64)], axis=1)


def fit_baseline(
    name: str,
    arrays: Arrays,
    feature_names: Sequence[str],
    *,
    static_num_names: Sequence[str] | None = None,
    rule: IndicatorRule | None = None,
    last_k: int = 4,
    seed: int = 0,
) -> FittedBaseline:
    """Fit one baseline (``indicator``, ``logistic`` or ``gbt``) on labelled arrays."""
    if name not in BASELINE_NAMES:
        raise ValueError(f"unknown baseline {name!r}; choose from {BASELINE_NAMES}")
    fitted = FittedBaseline(
        name=name,
        feature_names=list(feature_names),
        static_num_names=list(static_num_names) if static_num_names is not None else None,
        rule=rule or IndicatorRule(),
        last_k=last_k,
    )
    if name == "indicator":
        return fitted

    labels = np.asarray(_require(arrays, "labels")).reshape(-1)
    keep = ~np.isnan(labels)
    if len(np.unique(labels[keep])) < 2:
        raise ValueError("a baseline needs both classes in its training labels")
    design = _design(arrays, feature_names, static_num_names, last_k)[keep]
    y = labels[keep].astype(np.int64)
    static_cat = _get(arrays, "static_cat")
    n_cat = 0 if static_cat is None else static_cat.reshape(len(labels), -1).shape[1]
    n_num = design.shape[1] - n_cat
    num_cols = list(range(n_num))
    cat_cols = list(range(n_num, design.shape[1]))
    # Columns that are NaN for every training row would make the imputer drop them and
    # shift everything after; fill them with 0 instead (they carry no information).
    all_nan = np.isnan(design[:, :n_num]).all(axis=0)
    design[:, np.flatnonzero(all_nan)] = 0.0

    if name == "logistic":
        numeric = Pipeline(
            [
                ("impute", SimpleImputer(strategy="median", add_indicator=True)),
                ("scale", StandardScaler()),
            ]
        )
        transformer = ColumnTransformer(
            [
                ("num", numeric, num_cols),
                ("cat", OneHotEncoder(handle_unknown="ignore"), cat_cols),
            ]
        )
        estimator = Pipeline(
            [
                ("features", transformer),
                ("model", LogisticRegression(C=0.5, max_iter=2000)),
            ]
        )
    else:
        categorical = np.zeros(design.shape[1], dtype=bool)
        # Native categorical splits need codes below max_bins; wider columns stay ordinal.
        categorical[[c for c in cat_cols if np.nanmax(design[:, c], initial=0) < 254]] = True
        estimator = HistGradientBoostingClassifier(
            learning_rate=0.1,
            max_iter=300,
            max_leaf_nodes=31,
            min_samples_leaf=40,
            l2_regularization=1.0,
            categorical_features=categorical if categorical.any() else None,
            early_stopping=True,
            validation_fraction=0.15,
            n_iter_no_change=30,
            random_state=seed,
        )
    estimator.fit(design, y)
    fitted.estimator = _NanSafe(estimator, all_nan)
    return fitted


@dataclass
class _NanSafe:
    """Applies the training-time fill of all-NaN columns before predicting."""

    estimator: Any
    all_nan: np.ndarray

    def predict_proba(self, design: np.ndarray) -> np.ndarray:
        design = design.copy()
        design[:, np.flatnonzero(self.all_nan)] = 0.0
        return self.estimator.predict_proba(design)


def predict(fitted: FittedBaseline, arrays: Arrays) -> np.ndarray:
    """Risk scores of a fitted baseline for the students in ``arrays``."""
    return fitted.predict(arrays)


# --------------------------------------------------------------------------- evaluation


def score_metrics(labels: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """ROC-AUC, PR-AUC (average precision) and Brier score; NaN where undefined.

    The Brier score is only meaningful for probabilities; the indicator's banded score is
    reported too, but compare it on ROC-AUC and PR-AUC.
    """
    labels = np.asarray(labels, dtype=np.float64).reshape(-1)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    keep = ~np.isnan(labels) & ~np.isnan(scores)
    y, s = labels[keep], scores[keep]
    auc, ap = roc_auc(y, s), pr_auc(y, s)
    return {
        "roc_auc": float("nan") if auc is None else auc,
        "pr_auc": float("nan") if ap is None else ap,
        "brier": brier(y, np.clip(s, 0.0, 1.0)) if y.size else float("nan"),
    }


def evaluate_baselines(
    train_arrays: Arrays,
    test_arrays: Arrays,
    feature_names: Sequence[str],
    *,
    static_num_names: Sequence[str] | None = None,
    rule: IndicatorRule | None = None,
    names: Sequence[str] = BASELINE_NAMES,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Fit each baseline on ``train_arrays`` and score it on ``test_arrays``."""
    results: dict[str, dict[str, float]] = {}
    for name in names:
        fitted = fit_baseline(
            name,
            train_arrays,
            feature_names,
            static_num_names=static_num_names,
            rule=rule,
            seed=seed,
        )
        results[name] = score_metrics(_require(test_arrays, "labels"), fitted.predict(test_arrays))
    return results
