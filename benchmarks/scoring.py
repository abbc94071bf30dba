"""Batch scoring benchmark: N students with features already in the store, on PostgreSQL.

    DATABASE_URL=postgres://... .venv/bin/python benchmarks/scoring.py
    DATABASE_URL=postgres://... .venv/bin/python benchmarks/scoring.py --students 20000

Creates a throwaway database next to DATABASE_URL's (<name>_scorebench), writes
N students, their enrollments at `--schools` schools and W weeks of synthetic
weekly feature rows straight into the feature store with COPY (no raw records:
the features are "already built"), installs an active model of the production
size (untrained weights; thresholds set on a sample so that about 10% are high
and 15% medium risk, which get explanations), then times:

* seconds: `predictions_score` of every school at week W, in this one process
  (reading the features, static facts, one forward pass per school,
  explanations for the high/medium tiers, the set-based upsert of every row);
  the Celery chord spreads the same per-school work over the ml workers;
* rerun_without_explanations_s: the same again without explanations (rows
  replaced, not added): what scoring alone costs;
* ratio_vs_per_student: a per-student loop (`prediction_for_student` without
  cache or batching: one history read, one forward pass, one write each) on a
  sample, scaled to N, divided by `seconds`.

The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "edupulse.settings.local")

import django  # noqa: E402

django.setup()

from django.db import connection, transaction  # noqa: E402

YEAR = 2025


def _parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--students", type=int, default=100_000)
    p.add_argument("--weeks", type=int, default=30, help="Weeks of features before the score.")
    p.add_argument("--schools", type=int, default=100)
    p.add_argument("--per-student-sample", type=int, default=100)
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads per process (1: fastest on a shared machine; 0: torch's choice).",
    )
    p.add_argument("--seed", type=int, default=13)
    p.add_argument("--keep", action="store_true", help="Keep the benchmark database.")
    return p.parse_args()


def _say(message: str) -> None:
    print(message, flush=True)


def _load(args: argparse.Namespace) -> tuple[np.ndarray, list[int], dt.date]:
    """Students, enrollments and weekly feature rows; returns (ids, school pks, scored week)."""
    from apps.common.bulk import bulk_insert_rows
    from apps.features import store
    from apps.features.calendar import year_calendar
    from apps.features.selectors import feature_set_current
    from apps.students.models import Enrollment, Region, RegionLevel, School, Student

    rng = np.random.default_rng(args.seed)
    n = args.students
    now = dt.datetime.now(tz=dt.UTC)
    division = Region.objects.create(level=RegionLevel.DIVISION, code="S", name="Bench", path="/S/")
    School.objects.bulk_create(
        School(
            eiin=f"8{i:05d}",
            name=f"School {i}",
            school_type="madrasah" if i % 5 == 0 else "government",
            region=division,
        )
        for i in range(args.schools)
    )
    schools = np.array(sorted(School.objects.values_list("pk", flat=True)), dtype=np.int64)
    ids = np.arange(1, n + 1, dtype=np.int64)
    births = np.datetime64("2012-01-01") + rng.integers(-900, 700, n).astype("timedelta64[D]")
    columns = ["id", "student_id", "name", "name_bn", "gender", "date_of_birth"]
    columns += ["guardian_name", "guardian_phone", "stipend_recipient", "has_disability"]
    bulk_insert_rows(
        Student._meta.db_table,
        [*columns, "created_at", "updated_at"],
        (
            (int(i), f"S-{i:07d}", f"Student {i}", "", "female" if i % 2 else "male", str(b))
            + ("", "", bool(i % 3 == 0), bool(i % 50 == 0), now, now)
            for i, b in zip(ids, births, strict=True)
        ),
    )
    school_of = schools[rng.integers(0, len(schools), n)]
    bulk_insert_rows(
        Enrollment._meta.db_table,
        ["student_id", "school_id", "academic_year", "grade_level", "section", "entry_date"]
        + ["exit_date", "exit_reason", "created_at", "updated_at"],
        (
            (int(i), int(s), YEAR, 6 + int(i) % 5, "A", dt.date(YEAR, 1, 1), None, "", now, now)
            for i, s in zip(ids, school_of, strict=True)
        ),
    )
    feature_set = feature_set_current()
    f = len(feature_set.columns)
    calendar = year_calendar(YEAR)
    weeks = calendar.week_starts[: args.weeks]
    # A slice of students at a time keeps memory flat at 100,000 x 30 weeks.
    for first in range(0, n, 20_000):
        part = ids[first : first + 20_000]
        m = len(part) * len(weeks)
        values = rng.random((m, f), dtype=np.float32)
        values[rng.random((m, f)) < 0.1] = np.nan  # some values never observed
        store.rows_insert(
            feature_set_id=feature_set.pk,
            academic_year=YEAR,
            rows=store.Rows(
                student_id=np.repeat(part, len(weeks)),
                school_id=np.repeat(school_of[first : first + 20_000], len(weeks)),
                week_start=np.tile(weeks, len(part)),
                in_session=np.ones(m, dtype=bool),
                values=values,
                state=np.zeros((m, 0), dtype=np.int16),
            ),
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return ids, schools.tolist(), weeks[-1].astype(object)


def _model(model_dir: Path, week: dt.date, args: argparse.Namespace) -> None:
    """A production-size active model; thresholds at one school's 75th/90th percentiles."""
    from apps.features.selectors import feature_set_current
    from apps.predictions.datasets import STATIC_CATEGORICAL_COLUMNS, STATIC_NUMERIC_COLUMNS
    from apps.predictions.models import ModelStatus, ModelVersion
    from ml.checkpoint import save_checkpoint
    from ml.config import ModelConfig
    from ml.data import Normalizer, SequenceArrays
    from ml.inference import Scorer
    from ml.metrics import Thresholds
    from ml.model import EduPulseModel

    columns = list(feature_set_current().columns)
    config = ModelConfig(
        n_seq_features=len(columns),
        n_static_numeric=len(STATIC_NUMERIC_COLUMNS),
        static_cat_cardinalities=(2, 1, 2),
    )
    model = EduPulseModel(config)
    rng = np.random.default_rng(args.seed)
    sample = SequenceArrays(
        seq=rng.random((512, args.weeks, len(columns)), dtype=np.float32),
        lengths=np.full(512, args.weeks),
        static_num=rng.random((512, len(STATIC_NUMERIC_COLUMNS)), dtype=np.float32),
        static_cat=np.zeros((512, 3), dtype=np.int64),
    )
    normalizer = Normalizer.fit(sample)
    path = model_dir / "bench.pt"
    save_kwargs = dict(
        model=model,
        model_config=config,
        normalizer=normalizer,
        feature_version=feature_set_current().version,
        feature_columns=columns,
        static_numeric_columns=list(STATIC_NUMERIC_COLUMNS),
        static_categorical_columns=list(STATIC_CATEGORICAL_COLUMNS),
        extra={"categories": [["female", "male"], [""], ["government", "madrasah"]]},
    )
    save_checkpoint(path, **save_kwargs)  # type: ignore[arg-type]
    from ml.checkpoint import load_checkpoint

    probs = _calibration_probs(Scorer(load_checkpoint(path), device="cpu"), week)
    thresholds = Thresholds(
        high=float(np.quantile(probs, 0.90)),
        watch=float(np.quantile(probs, 0.75)),
        target_recall=0.8,
        watch_recall=0.9,
    )
    save_checkpoint(path, thresholds=thresholds, **save_kwargs)  # type: ignore[arg-type]
    now = dt.datetime.now(tz=dt.UTC)
    ModelVersion.objects.create(
        name="bench",
        status=ModelStatus.ACTIVE,
        file_path=path.name,
        feature_version=feature_set_current().version,
        data_from=dt.date(2020, 1, 1),
        data_to=dt.date(2020, 12, 31),
        training_started_at=now,
        training_finished_at=now,
        thresholds=thresholds.to_dict(),
    )


def _calibration_probs(scorer: object, week: dt.date) -> np.ndarray:
    """Scores of the first school's students, read as scoring reads them (not timed)."""
    from apps.features.selectors import feature_set_current, students_as_of
    from apps.predictions.services.scoring import _arrays, _week_index
    from apps.students.models import School

    class Loaded:  # what _arrays reads of an ActiveModel
        def __init__(self, scorer: object) -> None:
            self.loaded = scorer.loaded  # type: ignore[attr-defined]

    school = School.objects.order_by("pk").first()
    assert school is not None
    history = students_as_of(feature_set_current(), week_start=week, school_ids=[school.pk])
    arrays, _ids = _arrays(Loaded(scorer), history, _week_index(history, week), week)  # type: ignore[arg-type]
    return scorer.score(arrays)  # type: ignore[attr-defined, no-any-return]


def _per_student(ids: np.ndarray, week: dt.date, sample_size: int, seed: int) -> float:
    """Seconds per student for the one-at-a-time path (no cache, no batching)."""
    from django.core.cache import cache

    from apps.predictions.loader import active_model
    from apps.predictions.services.scoring import prediction_for_student
    from apps.students.models import Student

    model = active_model()
    sample = np.random.default_rng(seed).choice(ids, size=min(sample_size, len(ids)), replace=False)
    students = list(Student.objects.filter(pk__in=sample.tolist()))
    cache.clear()
    started = time.perf_counter()
    for student in students:
        with transaction.atomic():
            prediction_for_student(student=student, as_of=week, forward=model.scorer.score)
    return (time.perf_counter() - started) / len(students)


def main() -> None:
    args = _parse()
    if connection.vendor != "postgresql":
        sys.exit("benchmarks/scoring.py needs PostgreSQL: set DATABASE_URL=postgres://...")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    from django.conf import settings
    from django.test import override_settings

    from apps.predictions.models import Prediction
    from apps.predictions.services.scoring import predictions_score

    original = connection.settings_dict["NAME"]
    connection.settings_dict["TEST"]["NAME"] = f"{original}_scorebench"
    bench_name = connection.creation.create_test_db(
        verbosity=0, autoclobber=True, serialize=False, keepdb=False
    )
    _say(f"benchmark database {bench_name}: {args.students:,} students x {args.weeks} weeks")
    model_dir = Path(tempfile.mkdtemp(prefix="edupulse-scorebench-"))
    try:
        with override_settings(EDUPULSE_MODEL_DIR=model_dir):
            started = time.perf_counter()
            ids, _schools, week = _load(args)
            _say(
                f"wrote {args.students * args.weeks:,} feature rows by COPY "
                f"in {time.perf_counter() - started:.1f}s (not timed)"
            )
            _model(model_dir, week, args)

            started = time.perf_counter()
            counts = predictions_score(as_of=week)
            seconds = time.perf_counter() - started
            written = Prediction.objects.filter(week_start=week).count()
            assert written == args.students, f"{written} predictions for {args.students} students"
            _say(
                f"batch: {counts.predictions:,} predictions ({counts.explained:,} explained) "
                f"for {counts.schools} schools in {seconds:.1f}s "
                f"({args.students / seconds:,.0f} students/s)"
            )
            started = time.perf_counter()
            with override_settings(EDUPULSE_EXPLAIN_TIERS=[]):
                predictions_score(as_of=week)
            rerun_s = time.perf_counter() - started
            assert Prediction.objects.count() == args.students, "a re-run added rows"
            _say(f"re-run without explanations (replacing every row): {rerun_s:.1f}s")

            per_student = _per_student(ids, week, args.per_student_sample, args.seed)
            scaled = per_student * args.students
            _say(
                f"per-student loop: {per_student * 1000:.1f} ms/student, {scaled:.0f}s scaled to N"
            )
            result = {
                "students": args.students,
                "seconds": round(seconds, 2),
                "weeks": args.weeks,
                "schools": args.schools,
                "explained": counts.explained,
                "explain_tiers": list(settings.EDUPULSE_EXPLAIN_TIERS),
                "explain_steps": settings.EDUPULSE_EXPLAIN_STEPS,
                "rerun_without_explanations_s": round(rerun_s, 2),
                "per_student_ms": round(per_student * 1000, 1),
                "ratio_vs_per_student": round(scaled / seconds, 1),
                "cpu_count": os.cpu_count(),
            }
    finally:
        if not args.keep:
            connection.creation.destroy_test_db(original, verbosity=0)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
