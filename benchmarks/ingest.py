"""Attendance import throughput: the real pipeline against row-by-row ORM and django-import-export.

    DATABASE_URL=postgres://... .venv/bin/python benchmarks/ingest.py [--rows 1000000]

Generates an attendance CSV of N rows for synthetic students (their own
schools, students and enrollments, removed afterwards), imports it through
the ingestion pipeline (validation beside loading, docs/data-formats.md),
imports it again (must write nothing), and measures on a sample in the same
run: (a) row-by-row ORM `save()` and (b) django-import-export. The last line
printed is one JSON object with the figures.

The import announces its changed students (student_data_changed) only after
the timed part: with no Celery broker (this script's settings) the weekly
features refresh would otherwise run inline inside the import, where a
deployment runs it on a worker. Its time is printed on its own
(`features_refresh_seconds`; benchmarks/features.py measures that work).
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "edupulse.settings.local")

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from django.db import connection, transaction  # noqa: E402

from apps.common.signals import student_data_changes_batched  # noqa: E402
from apps.ingestion.models import ImportJob, ImportKind, ImportStatus  # noqa: E402
from apps.ingestion.services import import_job_create, import_job_run  # noqa: E402
from apps.students.models import (  # noqa: E402
    AttendanceRecord,
    Enrollment,
    Region,
    RegionLevel,
    School,
    SchoolType,
    Student,
)

PREFIX = "BENCH"
YEAR = 2025
SCHOOL_DAYS = 200


def school_days() -> list[dt.date]:
    days = []
    day = dt.date(YEAR, 1, 1)
    while len(days) < SCHOOL_DAYS:
        if day.weekday() not in (4, 5):  # Friday, Saturday
            days.append(day)
        day += dt.timedelta(days=1)
    return days


def cleanup() -> None:
    with transaction.atomic():
        students = Student.objects.filter(student_id__startswith=f"{PREFIX}-")
        AttendanceRecord.objects.filter(student__in=students).delete()
        Enrollment.objects.filter(student__in=students).delete()
        students.delete()
        ImportJob.objects.filter(file_name__startswith="bench-").delete()
        School.objects.filter(eiin__startswith=PREFIX).delete()


def setup(n_students: int, n_schools: int) -> tuple[list[str], list[str]]:
    region = Region.objects.filter(level=RegionLevel.UPAZILA).first()
    if region is None:
        division = Region.objects.create(
            level=RegionLevel.DIVISION, code="BENCH-D", name="Bench", path="/BENCH-D/"
        )
        district = Region.objects.create(
            level=RegionLevel.DISTRICT,
            code="BENCH-Z",
            name="Bench",
            parent=division,
            path="/BENCH-D/BENCH-Z/",
        )
        region = Region.objects.create(
            level=RegionLevel.UPAZILA,
            code="BENCH-U",
            name="Bench",
            parent=district,
            path="/BENCH-D/BENCH-Z/BENCH-U/",
        )
    eiins = [f"{PREFIX}{i:04d}" for i in range(n_schools)]
    School.objects.bulk_create(
        School(eiin=e, name=f"Bench school {e}", school_type=SchoolType.GOVERNMENT, region=region)
        for e in eiins
    )
    ids = [f"{PREFIX}-{i:07d}" for i in range(n_students)]
    Student.objects.bulk_create(
        (Student(student_id=s, name=s, gender="female") for s in ids), batch_size=5000
    )
    school_pk = dict(School.objects.filter(eiin__in=eiins).values_list("eiin", "pk"))
    student_pk = dict(Student.objects.filter(student_id__in=ids).values_list("student_id", "pk"))
    Enrollment.objects.bulk_create(
        (
            Enrollment(
                student_id=student_pk[s],
                school_id=school_pk[eiins[i % n_schools]],
                academic_year=YEAR,
                grade_level=6 + i % 5,
                entry_date=dt.date(YEAR, 1, 1),
            )
            for i, s in enumerate(ids)
        ),
        batch_size=5000,
    )
    return ids, eiins


def write_file(path: Path, ids: list[str], eiins: list[str], rows: int) -> None:
    days = np.array(school_days(), dtype="M8[D]")
    n_students = len(ids)
    rng = np.random.default_rng(7)
    student_index = np.repeat(np.arange(n_students), len(days))[:rows]
    day_index = np.tile(np.arange(len(days)), n_students)[:rows]
    statuses = np.array(["present", "absent", "late", "excused"])[
        rng.choice(4, size=rows, p=[0.86, 0.09, 0.03, 0.02])
    ]
    frame = pd.DataFrame(
        {
            "student_id": np.array(ids, dtype=object)[student_index],
            "eiin": np.array(eiins, dtype=object)[student_index % len(eiins)],
            "date": np.datetime_as_string(days[day_index], unit="D"),
            "status": statuses,
        }
    )
    frame.to_csv(path, index=False)


def orm_sample(ids: list[str], eiins: list[str], sample: int) -> float:
    student_pk = dict(Student.objects.filter(student_id__in=ids).values_list("student_id", "pk"))
    school_pk = dict(School.objects.filter(eiin__in=eiins).values_list("eiin", "pk"))
    days = school_days()
    started = time.perf_counter()
    with transaction.atomic():
        for i in range(sample):
            record = AttendanceRecord(
                student_id=student_pk[ids[i // len(days)]],
                school_id=school_pk[eiins[(i // len(days)) % len(eiins)]],
                date=days[i % len(days)],
                status="present",
            )
            record.save()
    elapsed = time.perf_counter() - started
    AttendanceRecord.objects.filter(student__student_id__in=ids).delete()
    return sample / elapsed


def import_export_sample(path: Path, sample: int) -> float:
    import tablib
    from import_export import fields, resources, widgets

    class AttendanceResource(resources.ModelResource):
        student = fields.Field(
            attribute="student",
            column_name="student_id",
            widget=widgets.ForeignKeyWidget(Student, field="student_id"),
        )
        school = fields.Field(
            attribute="school",
            column_name="eiin",
            widget=widgets.ForeignKeyWidget(School, field="eiin"),
        )

        class Meta:
            model = AttendanceRecord
            fields = ("student", "school", "date", "status")
            import_id_fields = ("student", "date")
            use_bulk = True
            skip_unchanged = True

    frame = pd.read_csv(path, nrows=sample, dtype=str)
    dataset = tablib.Dataset(headers=list(frame.columns))
    for row in frame.itertuples(index=False):
        dataset.append(list(row))
    started = time.perf_counter()
    result = AttendanceResource().import_data(dataset, dry_run=False, raise_errors=True)
    elapsed = time.perf_counter() - started
    assert not result.has_errors()
    AttendanceRecord.objects.filter(student__student_id__startswith=f"{PREFIX}-").delete()
    return sample / elapsed


def backend_cpu_seconds() -> float | None:
    """CPU time of this connection's PostgreSQL backend, when the server runs on this machine.

    On a shared machine wall time mostly measures the other tenants; the CPU
    seconds of this process plus its backend say what the import costs.
    """
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


CPU: dict[str, float | None] = {}
REFRESH: dict[str, float] = {}


def run_import(path: Path, name: str) -> tuple[ImportJob, float]:
    with student_data_changes_batched(source=f"bench:{name}"):
        started = time.perf_counter()
        cpu_started, backend_started = time.process_time(), backend_cpu_seconds()
        job = import_job_create(kind=ImportKind.ATTENDANCE, source=path, file_name=name)
        job = import_job_run(job_id=job.pk)
        elapsed = time.perf_counter() - started
        backend = backend_cpu_seconds()
        refresh_started = time.perf_counter()
    REFRESH[name] = time.perf_counter() - refresh_started
    CPU[f"{name}:python"] = round(time.process_time() - cpu_started, 2)
    CPU[f"{name}:postgres"] = (
        round(backend - backend_started, 2)
        if backend is not None and backend_started is not None
        else None
    )
    if job.status != ImportStatus.DONE:
        raise SystemExit(f"import {name} ended {job.status}: {job.failure or job.error_count}")
    return job, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--orm-sample", type=int, default=2_000)
    parser.add_argument("--import-export-sample", type=int, default=1_000)
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        print(f"warning: {connection.vendor}, not PostgreSQL; the target is for PostgreSQL")
    n_students = -(-args.rows // SCHOOL_DAYS)
    cleanup()
    ids, eiins = setup(n_students, max(1, n_students // 500))
    try:
        with tempfile.TemporaryDirectory() as directory:
            path = Path(directory) / "attendance.csv"
            write_file(path, ids, eiins, args.rows)
            print(
                f"{args.rows:,} rows, {path.stat().st_size / 1e6:.0f} MB, {n_students:,} students"
            )
            orm_rate = orm_sample(ids, eiins, min(args.orm_sample, args.rows))
            print(f"ORM save(): {orm_rate:,.0f} rows/s on {args.orm_sample:,} rows")
            ie_rate = import_export_sample(path, min(args.import_export_sample, args.rows))
            print(f"django-import-export: {ie_rate:,.0f} rows/s on {args.import_export_sample:,}")

            job, elapsed = run_import(path, "bench-1.csv")
            rate = job.rows_read / elapsed
            validate_rate = job.rows_read / (job.validate_seconds or 1e-9)
            load_rate = job.rows_read / (job.load_seconds or 1e-9)
            print(
                f"pipeline: {rate:,.0f} rows/s end to end ({elapsed:.1f}s; validate "
                f"{job.validate_seconds:.1f}s and load {job.load_seconds:.1f}s, overlapping), "
                f"{job.rows_inserted:,} inserted; then the features refresh "
                f"{REFRESH['bench-1.csv']:.1f}s"
            )
            again, again_elapsed = run_import(path, "bench-2.csv")
            written = again.rows_inserted + again.rows_updated
            print(
                f"re-import: {again.rows_read / again_elapsed:,.0f} rows/s, {written} rows written"
            )
    finally:
        cleanup()
    print(
        json.dumps(
            {
                "rows": job.rows_read,
                "rows_per_s": round(rate),
                "validate_rows_per_s": round(validate_rate),
                "load_rows_per_s": round(load_rate),
                "ratio_vs_orm": round(rate / orm_rate, 1),
                "ratio_vs_import_export": round(rate / ie_rate, 1),
                "reimport_rows_per_s": round(again.rows_read / again_elapsed),
                "reimport_rows_written": written,
                "orm_rows_per_s": round(orm_rate),
                "import_export_rows_per_s": round(ie_rate),
                "seconds": round(elapsed, 2),
                "validate_seconds": round(job.validate_seconds, 2),
                "load_seconds": round(job.load_seconds, 2),
                "cpu_seconds_python": CPU.get("bench-1.csv:python"),
                "cpu_seconds_postgres": CPU.get("bench-1.csv:postgres"),
                "reimport_cpu_seconds_python": CPU.get("bench-2.csv:python"),
                "reimport_cpu_seconds_postgres": CPU.get("bench-2.csv:postgres"),
                "features_refresh_seconds": round(REFRESH["bench-1.csv"], 2),
                "database": connection.vendor,
            }
        )
    )


if __name__ == "__main__":
    main()
