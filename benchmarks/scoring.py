"""Batch scoring benchmark: N students with features already in the store, on PostgreSQL.

    DATABASE_URL=postgres://... .venv/bin/python benchmarks/scoring.py
    DATABASE_URL=postgres://... .venv/bin/python benchmarks/scoring.py --students 20000

Creates a throwaway database next to DATABASE_URL's (<name>_scorebench), writes
N students, their enrollments at `--schools` schools, one counselor per school
and W weeks of synthetic weekly feature rows straight into the feature store
with COPY (no raw records: the features are "already built"), installs an active
model of the production size (untrained weights; thresholds at the 90th and
75th percentiles of 10 schools' students, so about 10% are high and 15% medium
risk, the tiers that get explanations), scores week W-1 without explanations
(not timed: every student has a previous prediction, as in a weekly run), then
times week W:

* workflow_s: the production path, the Celery chord (`score_district`: one
  `score_school` task per school, then `score_finish`) on a worker started
  here with `--workers` processes of `cpu_count / workers` torch threads
  (EDUPULSE_TORCH_THREADS), from enqueueing to the finished ScoringRun. Needs a
  Redis it may use for a broker: `--broker`, default EDUPULSE_TEST_REDIS_URL
  (its `ml` queue is purged); skipped without one. The children are warmed up
  on a few schools of week W-1 first (not timed), as long-lived workers are;
* in_process_s: `predictions_score` of every school in this one process
  (`--threads` torch threads), after week W's rows are deleted, with the time
  spent in each stage (stages_s);
* seconds: workflow_s when the workflow ran, else in_process_s. Both include
  reading the features and static facts, one forward pass per school,
  explanations for the high/medium tiers, the change since the previous
  prediction, alerts, and the set-based upsert of every row;
* rerun_without_explanations_s: in this process again without explanations
  (rows replaced, not added): what scoring alone costs;
* ratio_vs_per_student: a per-student loop (`prediction_for_student` without
  cache or batching: one history read, one forward pass, one write each) on a
  sample, scaled to N, divided by `seconds`.

The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import functools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
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
        help="torch threads of the in-process run (1: fastest on a shared machine; "
        "0: torch's choice).",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="worker processes for the Celery workflow (0: skip it); default: one per core.",
    )
    p.add_argument(
        "--broker",
        default=os.environ.get("EDUPULSE_TEST_REDIS_URL", ""),
        help="Redis URL the workflow may use (its ml queue is purged); "
        "default EDUPULSE_TEST_REDIS_URL.",
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
    _counselors(schools.tolist())
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return ids, schools.tolist(), weeks[-1].astype(object)


def _counselors(schools: list[int]) -> None:
    """One active counselor per school, so that scoring raises real alerts."""
    from apps.accounts.models import Role, User
    from apps.students.models import StaffScope

    users = User.objects.bulk_create(
        User(username=f"counselor{pk}", role=Role.COUNSELOR, password="!") for pk in schools
    )
    StaffScope.objects.bulk_create(
        StaffScope(user=user, school_id=pk) for user, pk in zip(users, schools, strict=True)
    )


def _model(model_dir: Path, week: dt.date, args: argparse.Namespace) -> None:
    """A production-size active model; thresholds at the 75th/90th percentiles of a sample."""
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

    probs = _calibration_probs(Scorer(load_checkpoint(path), device="cpu"), week, args.seed)
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


def _calibration_probs(scorer: object, week: dt.date, seed: int) -> np.ndarray:
    """Scores of the students of 10 schools drawn at random, read as scoring reads them
    (not timed).

    One school is not a sample: the untrained model separates school types, so one
    madrasah's quantiles put half the district in the explained tiers.
    """
    from apps.features.selectors import feature_set_current, students_as_of
    from apps.predictions.services.scoring import _arrays, _week_index
    from apps.students.models import School

    class Loaded:  # what _arrays reads of an ActiveModel
        def __init__(self, scorer: object) -> None:
            self.loaded = scorer.loaded  # type: ignore[attr-defined]

    schools = list(School.objects.order_by("pk").values_list("pk", flat=True))
    sample = np.random.default_rng(seed).choice(schools, size=min(10, len(schools)), replace=False)
    history = students_as_of(feature_set_current(), week_start=week, school_ids=sample.tolist())
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


# --------------------------------------------------------------------------- stages

# What each stage of predictions_score is, by the function that does it.
STAGES = {
    "read_features": ("apps.predictions.services.scoring", "students_as_of"),
    "build_inputs": ("apps.predictions.services.scoring", "_arrays"),
    "forward": ("ml.inference", "Scorer.score_with_attention"),
    "explain": ("apps.predictions.services.scoring", "_explain"),
    "previous_lookup": ("apps.predictions.services.scoring", "_previous"),
    "upsert": ("apps.predictions.services.scoring", "_upsert"),
    "alerts": ("apps.predictions.services.alerts", "alerts_raise"),
    "cache_forget": ("apps.predictions.services.scoring", "prediction_cache_forget"),
}


@contextlib.contextmanager
def _stage_clock() -> Iterator[dict[str, float]]:
    """Wall seconds spent in each stage while the block runs (functions wrapped, then restored)."""
    import importlib

    spent = dict.fromkeys(STAGES, 0.0)
    restore: list[tuple[Any, str, Any]] = []

    def clocked(stage: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def inner(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[stage] += time.perf_counter() - started

        return inner

    for stage, (module_name, path) in STAGES.items():
        owner: Any = importlib.import_module(module_name)
        *parents, name = path.split(".")
        for parent in parents:
            owner = getattr(owner, parent)
        original = owner.__dict__[name]
        restore.append((owner, name, original))
        setattr(owner, name, clocked(stage, original))
    try:
        yield spent
    finally:
        for owner, name, original in restore:
            setattr(owner, name, original)


# --------------------------------------------------------------------------- workflow


def _database_url(name: str) -> str:
    return urlsplit(os.environ["DATABASE_URL"])._replace(path=f"/{name}").geturl()


def _wait_for_run(run_id: int, worker: subprocess.Popen[bytes], log: Path) -> Any:
    from apps.predictions.models import ScoringRun, ScoringStatus

    finished = {ScoringStatus.SUCCEEDED, ScoringStatus.PARTIAL, ScoringStatus.FAILED}
    while True:
        run = ScoringRun.objects.get(pk=run_id)
        if run.status in finished:
            return run
        if worker.poll() is not None:
            sys.exit(f"the Celery worker exited ({worker.returncode}):\n{log.read_text()[-3000:]}")
        time.sleep(0.1)


def _workflow(
    args: argparse.Namespace, bench_name: str, model_dir: Path, week: dt.date
) -> tuple[float, Any]:
    """Seconds from enqueueing score_district to the finished run, and the run."""
    from celery import Celery

    from apps.predictions.services.scoring_runs import scoring_run_request
    from apps.students.models import School

    app = Celery("edupulse-scorebench")
    app.config_from_object("django.conf:settings", namespace="CELERY")
    app.conf.update(broker_url=args.broker, result_backend=args.broker, task_always_eager=False)
    threads = max(1, (os.cpu_count() or 1) // args.workers)
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(bench_name),
        "CELERY_BROKER_URL": args.broker,
        "CELERY_RESULT_BACKEND": args.broker,
        "EDUPULSE_MODEL_DIR": str(model_dir),
        "EDUPULSE_TORCH_THREADS": str(threads),
    }
    name = f"scorebench{os.getpid()}@{socket.gethostname()}"
    log = model_dir / "worker.log"
    command = [sys.executable, "-m", "celery", "-A", "edupulse", "worker", "-Q", "ml"]
    command += ["--concurrency", str(args.workers), "--pool", "prefork", "-n", name, "--purge"]
    command += ["--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "WARNING"]
    with log.open("wb") as out:
        worker = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while not app.control.ping(destination=[name], timeout=1.0):
            if worker.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"the Celery worker did not start:\n{log.read_text()[-3000:]}")

        def run(as_of: dt.date, school_ids: list[int] | None, trigger: str) -> tuple[float, Any]:
            scoring_run = scoring_run_request(as_of=as_of, school_ids=school_ids, trigger=trigger)
            started = time.perf_counter()
            app.send_task("apps.predictions.tasks.score_district", args=[scoring_run.pk])
            done = _wait_for_run(scoring_run.pk, worker, log)
            return time.perf_counter() - started, done

        # Each child imports torch and loads the model on its first task; a nightly
        # run finds them long started.
        schools = list(School.objects.order_by("pk").values_list("pk", flat=True))
        run(week - dt.timedelta(days=7), schools[: 2 * args.workers], "benchmark warm-up")
        _say(f"workflow: {args.workers} worker processes x {threads} torch threads, warm")
        return run(week, None, "benchmark")
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def _forget_week(week: dt.date) -> None:
    """Delete week W's predictions and alerts (not timed) so the next run writes them anew."""
    from apps.predictions.models import Notification, Prediction

    with connection.cursor() as cursor:
        for model in (Notification, Prediction):
            cursor.execute(
                f"DELETE FROM {model._meta.db_table} WHERE week_start = %s",  # noqa: S608
                [week],
            )
        cursor.execute(f"VACUUM ANALYZE {Prediction._meta.db_table}")


# --------------------------------------------------------------------------- main


def main() -> None:
    args = _parse()
    if connection.vendor != "postgresql":
        sys.exit("benchmarks/scoring.py needs PostgreSQL: set DATABASE_URL=postgres://...")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    from django.conf import settings
    from django.test import override_settings

    from apps.predictions.models import Notification, Prediction
    from apps.predictions.services.scoring import predictions_score

    original = connection.settings_dict["NAME"]
    connection.settings_dict["TEST"]["NAME"] = f"{original}_scorebench"
    bench_name = connection.creation.create_test_db(
        verbosity=0, autoclobber=True, serialize=False, keepdb=False
    )
    model_dir = Path(tempfile.mkdtemp(prefix="edupulse-scorebench-"))
    _say(
        f"benchmark database {bench_name}, models in {model_dir}: "
        f"{args.students:,} students x {args.weeks} weeks"
    )
    result: dict[str, Any] = {}
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
            with override_settings(EDUPULSE_EXPLAIN_TIERS=[]):
                predictions_score(as_of=week - dt.timedelta(days=7))
            _say(f"scored week W-1 in {time.perf_counter() - started:.1f}s (not timed)")

            workflow_s = None
            if args.workers and args.broker:
                workflow_s, run = _workflow(args, bench_name, model_dir, week)
                assert run.predictions == args.students, f"{run.predictions} predictions"
                assert not run.failures, run.failures
                explained = Prediction.objects.filter(week_start=week).exclude(factors=[]).count()
                _say(
                    f"workflow: {run.predictions:,} predictions ({explained:,} explained, "
                    f"{run.alerts:,} alerts) for {run.schools_done} schools in {workflow_s:.1f}s "
                    f"({args.students / workflow_s:,.0f} students/s)"
                )
                _forget_week(week)
            else:
                _say("workflow: skipped (no --broker or --workers 0)")

            with _stage_clock() as stages:
                started = time.perf_counter()
                counts = predictions_score(as_of=week)
                in_process_s = time.perf_counter() - started
            written = Prediction.objects.filter(week_start=week).count()
            assert written == args.students, f"{written} predictions for {args.students} students"
            alerts = Notification.objects.filter(week_start=week).count()
            _say(
                f"in process: {counts.predictions:,} predictions ({counts.explained:,} explained, "
                f"{alerts:,} alerts) for {counts.schools} schools in {in_process_s:.1f}s "
                f"({args.students / in_process_s:,.0f} students/s)"
            )
            _say("  " + ", ".join(f"{k} {v:.1f}s" for k, v in stages.items()))
            started = time.perf_counter()
            with override_settings(EDUPULSE_EXPLAIN_TIERS=[]):
                predictions_score(as_of=week)
            rerun_s = time.perf_counter() - started
            assert Prediction.objects.filter(week_start=week).count() == args.students, "added"
            _say(f"re-run without explanations (replacing every row): {rerun_s:.1f}s")

            per_student = _per_student(ids, week, args.per_student_sample, args.seed)
            scaled = per_student * args.students
            _say(
                f"per-student loop: {per_student * 1000:.1f} ms/student, {scaled:.0f}s scaled to N"
            )
            seconds = workflow_s if workflow_s is not None else in_process_s
            result = {
                "students": args.students,
                "seconds": round(seconds, 2),
                "mode": "workflow" if workflow_s is not None else "in_process",
                "workflow_s": None if workflow_s is None else round(workflow_s, 2),
                "workers": args.workers if workflow_s is not None else 0,
                "in_process_s": round(in_process_s, 2),
                "threads": args.threads,
                "stages_s": {k: round(v, 2) for k, v in stages.items()},
                "weeks": args.weeks,
                "schools": args.schools,
                "explained": counts.explained,
                "explained_share": round(counts.explained / args.students, 3),
                "alerts": alerts,
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
            shutil.rmtree(model_dir, ignore_errors=True)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
