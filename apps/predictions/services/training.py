"""Train a risk model on the feature store and register it as a candidate ModelVersion.

The pipeline: labelled samples from the weekly feature store (several prediction
weeks per student-year), a split by student (a stable hash, so no student is in
two splits and every model is tested on the same held-out students), ml.train,
evaluation of the saved checkpoint and of the baselines on the same held-out
samples, MLflow when configured, and the ModelVersion row.

torch and scikit-learn are imported inside the functions that need them.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max, Min
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.accounts.models import User
from apps.predictions.datasets import (
    STATIC_CATEGORICAL_COLUMNS,
    STATIC_NUMERIC_COLUMNS,
    EnrollmentFacts,
    Samples,
    SamplingOptions,
    StudentFacts,
    WeeklyHistoryLike,
    category_vocabulary,
    concat_samples,
    samples_from_history,
    save_samples,
    split_students,
    to_arrays,
)
from apps.predictions.labels import Stint
from apps.predictions.models import ModelVersion
from apps.students.models import Enrollment, Student
from apps.students.services import academic_year_bounds, academic_year_of

if TYPE_CHECKING:
    from ml.baselines import IndicatorRule
    from ml.data import SequenceArrays

logger = logging.getLogger(__name__)

ProgressFn = Callable[[dict[str, Any]], None]


class TrainingDataError(Exception):
    """The feature store and enrollments do not give enough labelled samples to train."""


@dataclass(frozen=True)
class TrainingOptions:
    # Defaults measured on the synthetic district (docs/predictions.md): they beat
    # the baselines there and keep the demo's training near two minutes on 2 cores.
    epochs: int = 5
    batch_size: int = 256
    lr: float = 3e-3
    hidden_size: int = 32
    attention_heads: int = 4
    dropout: float = 0.1
    early_stopping_patience: int = 3
    seed: int = 0
    prediction_weeks: int = 5
    # ml's random truncation keeps a sample's label while cutting its weeks, but
    # here a label belongs to its prediction week: samples already come at
    # several weeks of the year, each with its own label, so truncation is off.
    truncation_prob: float = 0.0
    min_week: int = 3
    test_fraction: float = 0.2
    val_fraction: float = 0.15
    target_recall: float = 0.8
    # None: settings.EDUPULSE_LABEL_HORIZON_DAYS (0 = end of the academic year).
    horizon_days: int | None = None
    # Caps the training samples (random, seeded) to bound the time a run takes.
    max_train_samples: int | None = None
    device: str = "auto"

    def __post_init__(self) -> None:
        checks = [
            (self.epochs >= 1, _("The number of epochs must be at least 1.")),
            (self.batch_size >= 1, _("The batch size must be at least 1.")),
            (self.prediction_weeks >= 1, _("Predict at one week of the year at least.")),
            (
                0 < self.test_fraction < 1
                and 0 < self.val_fraction < 1
                and self.test_fraction + self.val_fraction < 0.9,
                _("The held-out and validation shares must leave students to train on."),
            ),
            (0 < self.target_recall <= 1, _("The target recall must be above 0 and at most 1.")),
            (
                self.max_train_samples is None or self.max_train_samples >= 10,
                _("Keep at least 10 training samples."),
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ValidationError(message)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingOptions:
        names = {f.name for f in fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValidationError(
                _("Unknown training options: %(names)s") % {"names": ", ".join(sorted(unknown))}
            )
        return cls(**data)


class HistorySource(Protocol):
    """Where weekly histories come from: the feature store, or arrays a test builds."""

    feature_version: str

    def chunks(self, *, academic_year: int, until: dt.date) -> Iterator[WeeklyHistoryLike]: ...


class FeatureStoreSource:
    """The current feature set of apps.features."""

    def __init__(self) -> None:
        from apps.features.selectors import feature_set_current

        self.feature_set = feature_set_current()
        self.feature_version: str = self.feature_set.version

    def chunks(self, *, academic_year: int, until: dt.date) -> Iterator[WeeklyHistoryLike]:
        from apps.features.selectors import history_chunks

        yield from history_chunks(self.feature_set, academic_year=academic_year, until=until)


# --------------------------------------------------------------------------- samples


def student_facts(
    student_ids: np.ndarray, *, academic_year: int, horizon_days: int
) -> dict[int, StudentFacts]:
    """Students and their enrollments of the year (and later years a long horizon reaches).

    Two queries per chunk, whatever its size.
    """
    ids = [int(pk) for pk in student_ids]
    last_year = academic_year + (1 + horizon_days // 365 if horizon_days else 0)
    enrollments: dict[int, list[EnrollmentFacts]] = {}
    rows = Enrollment.objects.filter(
        student_id__in=ids, academic_year__gte=academic_year, academic_year__lte=last_year
    ).values_list(
        "student_id",
        "academic_year",
        "entry_date",
        "exit_date",
        "exit_reason",
        "grade_level",
        "school__school_type",
        "school__region_id",
    )
    for pk, year, entry, exit_date, reason, grade, school_type, region_id in rows:
        enrollments.setdefault(pk, []).append(
            EnrollmentFacts(
                stint=Stint(
                    academic_year=year, entry_date=entry, exit_date=exit_date, exit_reason=reason
                ),
                grade_level=grade,
                school_type=school_type,
                region_id=region_id,
            )
        )
    students = Student.objects.filter(pk__in=ids).values_list(
        "pk", "gender", "stipend_recipient", "has_disability", "date_of_birth"
    )
    return {
        pk: StudentFacts(
            gender=gender,
            stipend=stipend,
            disability=disability,
            date_of_birth=born,
            enrollments=tuple(sorted(enrollments.get(pk, []), key=lambda e: e.stint.entry_date)),
        )
        for pk, gender, stipend, disability, born in students
    }


def academic_years_in(data_from: dt.date | None, data_to: dt.date) -> list[int]:
    bounds = Enrollment.objects.aggregate(first=Min("academic_year"), last=Max("academic_year"))
    if bounds["first"] is None:
        return []
    first = (
        bounds["first"] if data_from is None else max(bounds["first"], academic_year_of(data_from))
    )
    last = min(bounds["last"], academic_year_of(data_to))
    return list(range(first, last + 1))


def training_samples_collect(
    *,
    source: HistorySource,
    sampling: SamplingOptions,
    today: dt.date,
    progress: ProgressFn,
) -> Samples | None:
    until = min(sampling.data_to or today, today)
    parts: list[Samples] = []
    for year in academic_years_in(sampling.data_from, until):
        if (
            sampling.closed_windows_only
            and sampling.horizon_days == 0
            and academic_year_bounds(year)[1] >= today
        ):
            # Every window of a year still running ends with the year: nothing to read.
            progress({"stage": "samples", "academic_year": year, "skipped": "year_open"})
            continue
        for chunk in source.chunks(academic_year=year, until=until):
            if chunk.feature_version != source.feature_version:
                raise TrainingDataError(
                    _("The feature store changed version while the training data was read.")
                )
            facts = student_facts(
                chunk.student_ids, academic_year=year, horizon_days=sampling.horizon_days
            )
            part = samples_from_history(chunk, facts, sampling, today=today)
            if part is not None:
                parts.append(part)
            progress(
                {
                    "stage": "samples",
                    "academic_year": year,
                    "students": int(len(chunk.student_ids)),
                    "samples": int(sum(len(p) for p in parts)),
                }
            )
    return concat_samples(parts) if parts else None


# --------------------------------------------------------------------------- helpers


def json_safe(value: Any) -> Any:
    """Plain JSON: numpy scalars unwrapped, NaN and infinities as null (jsonb rejects NaN)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return [json_safe(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _concat_arrays(a: SequenceArrays, b: SequenceArrays) -> SequenceArrays:
    from ml.data import SequenceArrays

    t = max(a.n_weeks, b.n_weeks)

    def pad(seq: np.ndarray) -> np.ndarray:
        extra = t - seq.shape[1]
        return np.pad(seq, ((0, 0), (0, extra), (0, 0)), constant_values=np.nan) if extra else seq

    assert a.labels is not None and b.labels is not None
    return SequenceArrays(
        seq=np.concatenate([pad(a.seq), pad(b.seq)]),
        lengths=np.concatenate([a.lengths, b.lengths]),
        static_num=np.concatenate([a.static_num, b.static_num]),
        static_cat=np.concatenate([a.static_cat, b.static_cat]),
        labels=np.concatenate([a.labels, b.labels]),
        group={k: np.concatenate([a.group[k], b.group[k]]) for k in a.group},
    )


def _check_classes(samples: Samples, split: str) -> None:
    positives = int(samples.labels.sum())
    if len(samples) == 0 or positives == 0 or positives == len(samples):
        raise TrainingDataError(
            _(
                "The %(split)s split has %(n)d samples and %(positives)d dropouts; "
                "it needs both dropouts and students who stayed."
            )
            % {"split": split, "n": len(samples), "positives": positives}
        )


def _by_prediction_week(labels: np.ndarray, probs: np.ndarray, lengths: np.ndarray) -> list[dict]:
    """Model quality by how many weeks of the year it had seen: early warnings are harder."""
    from ml.metrics import pr_auc, roc_auc

    rows = []
    for weeks in np.unique(lengths):
        sel = lengths == weeks
        rows.append(
            {
                "weeks_seen": int(weeks),
                "n": int(sel.sum()),
                "positives": int(labels[sel].sum()),
                "roc_auc": roc_auc(labels[sel], probs[sel]),
                "pr_auc": pr_auc(labels[sel], probs[sel]),
            }
        )
    return rows


def indicator_rule() -> IndicatorRule:
    """The attendance / behaviour / course-failure rule over the feature store's columns.

    At risk: year-to-date attendance below 80%, any suspension (the store's mark
    of a serious incident), or a core subject's average below the 33% pass mark;
    watch: attendance below 88%, any incident, or a core subject below 45%.
    Columns a feature version lacks simply never fire.
    """
    from ml.baselines import IndicatorRule

    return IndicatorRule(
        attendance_features=("attendance_rate",),
        incident_features=("incidents",),
        serious_incident_features=("suspension_days",),
        grade_features=("marks_average_ban", "marks_average_eng", "marks_average_math"),
        failure_count_features=(),
        grade_max=1.0,
    )


def _baselines(
    train: SequenceArrays, test: SequenceArrays, feature_columns: list[str], seed: int
) -> dict[str, dict[str, Any]]:
    from ml.baselines import evaluate_baselines, indicator_risk
    from ml.metrics import threshold_metrics

    rule = indicator_rule()
    results: dict[str, dict[str, Any]] = {
        name: dict(values)
        for name, values in evaluate_baselines(
            train,
            test,
            feature_columns,
            static_num_names=STATIC_NUMERIC_COLUMNS,
            rule=rule,
            seed=seed,
        ).items()
    }
    # What the rule itself tells a counselor: its "at risk" tier (score >= 2/3).
    assert test.labels is not None
    at_risk = threshold_metrics(test.labels, indicator_risk(test, feature_columns, rule), 2.0 / 3.0)
    results["indicator"]["at_risk"] = at_risk
    return results


def _comparison(metrics: dict[str, Any], baselines: dict[str, dict[str, Any]]) -> dict[str, Any]:
    margins: dict[str, dict[str, float | None]] = {}
    beats_all = True
    for name, values in baselines.items():
        margins[name] = {}
        for metric in ("roc_auc", "pr_auc"):
            ours, theirs = metrics.get(metric), values.get(metric)
            if ours is None or theirs is None or not math.isfinite(float(theirs)):
                margins[name][metric] = None
                continue
            margins[name][metric] = float(ours) - float(theirs)
            beats_all = beats_all and float(ours) > float(theirs)
    return {"margins": margins, "beats_all_baselines": beats_all}


# --------------------------------------------------------------------------- the service


def model_version_train(
    *,
    options: TrainingOptions,
    data_from: dt.date | None = None,
    data_to: dt.date | None = None,
    trained_by: User | None = None,
    source: HistorySource | None = None,
    progress: ProgressFn | None = None,
) -> ModelVersion:
    """Train, evaluate against the baselines on held-out students, save, register."""
    from apps.predictions import tracking
    from ml.checkpoint import load_checkpoint
    from ml.config import ModelConfig, TrainConfig
    from ml.inference import Scorer
    from ml.metrics import evaluate
    from ml.train import train_model

    report: ProgressFn = progress or (lambda event: None)
    started_at = timezone.now()
    clock = time.perf_counter()
    timings: dict[str, float] = {}
    today = timezone.localdate()
    horizon_days = (
        settings.EDUPULSE_LABEL_HORIZON_DAYS
        if options.horizon_days is None
        else options.horizon_days
    )
    source = source or FeatureStoreSource()
    sampling = SamplingOptions(
        prediction_weeks=options.prediction_weeks,
        min_week=options.min_week,
        horizon_days=horizon_days,
        data_from=data_from,
        data_to=data_to,
    )

    samples = training_samples_collect(
        source=source, sampling=sampling, today=today, progress=report
    )
    if samples is None:
        raise TrainingDataError(
            _("No labelled samples: build the weekly features and check the date range.")
        )
    split_of = split_students(
        samples.student_ids, test_fraction=options.test_fraction, val_fraction=options.val_fraction
    )
    which = np.array([split_of[int(pk)] for pk in samples.student_ids])
    train_s = samples.subset(np.flatnonzero(which == "train"))
    val_s = samples.subset(np.flatnonzero(which == "val"))
    test_s = samples.subset(np.flatnonzero(which == "test"))
    if options.max_train_samples is not None and len(train_s) > options.max_train_samples:
        rng = np.random.default_rng(options.seed)
        keep = np.sort(rng.choice(len(train_s), options.max_train_samples, replace=False))
        train_s = train_s.subset(keep)
    for part, name in ((train_s, "training"), (val_s, "validation"), (test_s, "held-out")):
        _check_classes(part, name)
    vocabulary = category_vocabulary(train_s.raw_cat)
    train_a, val_a, test_a = (to_arrays(s, vocabulary) for s in (train_s, val_s, test_s))
    timings["samples_s"] = time.perf_counter() - clock
    report({"stage": "split", "train": len(train_s), "val": len(val_s), "test": len(test_s)})

    model_config = ModelConfig(
        n_seq_features=len(samples.feature_columns),
        n_static_numeric=len(STATIC_NUMERIC_COLUMNS),
        static_cat_cardinalities=tuple(len(v) for v in vocabulary),
        hidden_size=options.hidden_size,
        attention_heads=options.attention_heads,
        dropout=options.dropout,
    )
    train_config = TrainConfig(
        epochs=options.epochs,
        batch_size=options.batch_size,
        lr=options.lr,
        seed=options.seed,
        early_stopping_patience=options.early_stopping_patience,
        target_recall=options.target_recall,
        truncation_prob=options.truncation_prob,
        device=options.device,
    )
    lap = time.perf_counter()
    result = train_model(
        model_config,
        train_config,
        train_a,
        val_a,
        progress=lambda record: report({"stage": "training", "epochs": options.epochs, **record}),
    )
    timings["training_s"] = time.perf_counter() - lap

    name = f"{samples.feature_version}-{started_at:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"
    relative = Path(samples.feature_version) / f"{name}.pt"
    holdout_relative = Path(samples.feature_version) / f"{name}.holdout.npz"
    model_dir = Path(settings.EDUPULSE_MODEL_DIR)
    (model_dir / relative).parent.mkdir(parents=True, exist_ok=True)
    feature_spec = {
        "feature_columns": list(samples.feature_columns),
        "static_numeric_columns": list(STATIC_NUMERIC_COLUMNS),
        "static_categorical_columns": list(STATIC_CATEGORICAL_COLUMNS),
        "categories": dict(zip(STATIC_CATEGORICAL_COLUMNS, vocabulary, strict=True)),
    }
    label_spec = {
        "positive": "dropped_out",
        "horizon_days": horizon_days,
        "horizon": "end_of_academic_year" if horizon_days == 0 else "days_after_prediction_week",
        "labelled_on": today.isoformat(),
    }
    result.save(
        model_dir / relative,
        feature_version=samples.feature_version,
        feature_columns=list(samples.feature_columns),
        static_numeric_columns=list(STATIC_NUMERIC_COLUMNS),
        static_categorical_columns=list(STATIC_CATEGORICAL_COLUMNS),
        extra={"model_version": name, "categories": vocabulary, "label": label_spec},
    )
    save_samples(model_dir / holdout_relative, test_s)

    # Measure what was saved, not what is in memory: the registry describes the file.
    report({"stage": "evaluating"})
    lap = time.perf_counter()
    loaded = load_checkpoint(model_dir / relative, expected_feature_version=samples.feature_version)
    probs = Scorer(loaded, device=options.device).score(test_a)
    assert test_a.labels is not None
    metrics = evaluate(test_a.labels, probs, loaded.thresholds, test_a.group)
    metrics["by_weeks_seen"] = _by_prediction_week(test_a.labels, probs, test_a.lengths)
    timings["evaluation_s"] = time.perf_counter() - lap

    report({"stage": "baselines"})
    lap = time.perf_counter()
    baselines = _baselines(
        _concat_arrays(train_a, val_a), test_a, list(samples.feature_columns), options.seed
    )
    timings["baselines_s"] = time.perf_counter() - lap
    metrics["comparison"] = _comparison(metrics, baselines)

    weeks = samples.week_starts.astype("datetime64[D]")
    first_week = weeks.min().item()
    last_week = weeks.max().item() + dt.timedelta(days=6)
    dataset = {
        "samples": {"train": len(train_s), "val": len(val_s), "test": len(test_s)},
        "students": {
            "train": int(len(np.unique(train_s.student_ids))),
            "val": int(len(np.unique(val_s.student_ids))),
            "test": int(len(np.unique(test_s.student_ids))),
        },
        "positives": {
            "train": int(train_s.labels.sum()),
            "val": int(val_s.labels.sum()),
            "test": int(test_s.labels.sum()),
        },
        "academic_years": sorted({int(y) for y in samples.academic_years}),
        "prediction_weeks": sorted({str(w) for w in weeks}),
        "split": "student hash",
    }
    timings["total_s"] = time.perf_counter() - clock
    finished_at = timezone.now()
    row = json_safe(
        {
            "metrics": metrics,
            "validation_metrics": result.val_metrics,
            "baseline_metrics": baselines,
            "subgroup_metrics": metrics.get("subgroups", {}),
            "calibration": metrics.get("reliability", []),
            "thresholds": loaded.thresholds.to_dict() if loaded.thresholds else {},
            "history": result.history,
            "model_config": model_config.to_dict(),
            "train_config": train_config.to_dict(),
            "dataset": dataset,
            "timings": timings,
            "feature_spec": feature_spec,
            "label_spec": label_spec,
        }
    )
    run_id, tracking_error = tracking.log_training_run(
        name=name,
        params={
            **options.to_dict(),
            "horizon_days": horizon_days,
            "feature_version": samples.feature_version,
        },
        metrics=row["metrics"],
        baselines=row["baseline_metrics"],
        history=row["history"],
        artefacts=[model_dir / relative],
        card=row,
    )
    with transaction.atomic():
        version = ModelVersion.objects.create(
            name=name,
            file_path=str(relative),
            holdout_path=str(holdout_relative),
            feature_version=samples.feature_version,
            data_from=first_week,
            data_to=last_week,
            trained_by=trained_by,
            training_started_at=started_at,
            training_finished_at=finished_at,
            mlflow_run_id=run_id or "",
            tracking_error=tracking_error,
            **row,
        )
    report({"stage": "done", "model_version": version.pk})
    logger.info("trained model version %s (%s samples)", version.pk, len(samples))
    return version
