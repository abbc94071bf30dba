"""Weekly feature store benchmark on synthetic raw data in PostgreSQL.

    DATABASE_URL=postgres://... .venv/bin/python benchmarks/features.py
    DATABASE_URL=postgres://... .venv/bin/python benchmarks/features.py --students 5000 --weeks 10

Creates a throwaway database next to DATABASE_URL's (<name>_featbench),
loads N students x W school weeks of attendance (a row per student per
school day), marks and incidents with COPY, then times:

* full_build_s: `features_build` of the whole year (all extractors, checks, store);
* incremental_s: after a one-week re-import of the last week's attendance for
  every student, the `student_data_changed` refresh of that week (every
  receiver: features, and the predictions' and dashboards' caches);
  incremental_refresh_s: the part spent in features_refresh;
* ratio_vs_naive: a straightforward per-student implementation (ORM queries per
  student, Python loops over days and weeks, one bulk insert per student), run
  on a sample in the same process and scaled to N, divided by full_build_s.

The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "edupulse.settings.local")

import django  # noqa: E402

django.setup()

from django.db import connection, transaction  # noqa: E402

YEAR = 2025  # a year wholly in the past, so "today" does not move the horizon
STATUSES = ["present", "absent", "excused", "late"]


def _parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--students", type=int, default=100_000)
    p.add_argument("--weeks", type=int, default=40, help="School weeks with data.")
    p.add_argument("--schools", type=int, default=100)
    p.add_argument("--naive-sample", type=int, default=300)
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--keep", action="store_true", help="Keep the benchmark database.")
    return p.parse_args()


def _say(message: str) -> None:
    print(message, flush=True)


def _school_days(weeks: int) -> tuple[list[np.ndarray], dt.date]:
    """The first `weeks` calendar weeks of YEAR that have school days, as day arrays."""
    from apps.features.calendar import year_calendar

    calendar = year_calendar(YEAR)
    out: list[np.ndarray] = []
    for index in range(calendar.weeks):
        bits = int(calendar.base_bits[index])
        days = [calendar.week_starts[index] + d for d in range(7) if bits >> d & 1]
        if days:
            out.append(np.array(days, dtype="datetime64[D]"))
        if len(out) == weeks:
            break
    last: dt.date = out[-1][-1].astype(object)
    return out, last


def _without_indexes(table: str) -> list[str]:
    """Drop the table's indexes and constraints; return the DDL that restores them."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid), contype FROM pg_constraint "
            "WHERE conrelid = %s::regclass AND contype IN ('u', 'f')",
            [table],
        )
        constraints = cursor.fetchall()
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s "
            "AND indexname NOT LIKE %s",
            [table, "%pkey"],
        )
        names = {name for name, _d, _t in constraints}
        indexes = [(n, d) for n, d in cursor.fetchall() if n not in names]
        restore = [definition for _name, definition in indexes]
        for name, definition, kind in constraints:
            cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
            # Foreign keys come back NOT VALID: reads do not care, and
            # checking 20M rows would only slow the setup.
            suffix = " NOT VALID" if kind == "f" else ""
            restore.append(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}{suffix}')
        for name, _definition in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
    return restore


def _load(args: argparse.Namespace) -> dict[str, object]:
    from apps.common.bulk import bulk_insert_rows
    from apps.features import pgcopy
    from apps.students.models import (
        AttendanceRecord,
        DisciplineIncident,
        Enrollment,
        GradeRecord,
        Region,
        RegionLevel,
        School,
        Student,
        Subject,
    )
    from apps.students.services import subjects_load

    rng = np.random.default_rng(args.seed)
    n, n_schools = args.students, args.schools
    weeks, last_day = _school_days(args.weeks)
    division = Region.objects.create(level=RegionLevel.DIVISION, code="B", name="Bench", path="/B/")
    School.objects.bulk_create(
        School(eiin=f"9{i:05d}", name=f"School {i}", school_type="government", region=division)
        for i in range(n_schools)
    )
    school_pks = np.array(sorted(School.objects.values_list("pk", flat=True)), dtype=np.int64)
    subjects_load()
    subject_pks = np.array(sorted(Subject.objects.values_list("pk", flat=True)), dtype=np.int64)
    now = dt.datetime.now(tz=dt.UTC)

    ids = np.arange(1, n + 1, dtype=np.int64)
    births = np.datetime64("2012-01-01") + rng.integers(-900, 700, n).astype("timedelta64[D]")
    bulk_insert_rows(
        Student._meta.db_table,
        [
            "id",
            "student_id",
            "name",
            "name_bn",
            "gender",
            "date_of_birth",
            "guardian_name",
            "guardian_phone",
            "stipend_recipient",
            "has_disability",
            "created_at",
            "updated_at",
        ],
        (
            (
                int(i),
                f"B-{i:07d}",
                f"Student {i}",
                "",
                "female" if i % 2 else "male",
                str(b),
                "",
                "",
                False,
                False,
                now,
                now,
            )
            for i, b in zip(ids, births, strict=True)
        ),
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT setval(pg_get_serial_sequence(%s, 'id'), %s)", [Student._meta.db_table, n]
        )
    school_index = rng.integers(0, n_schools, n)
    school_of = school_pks[school_index]
    # 2% move school mid-year (week W/2); their first enrollment closes the day before.
    movers = rng.random(n) < 0.02
    move_day = weeks[len(weeks) // 2][0]
    new_school = school_pks[(school_index + rng.integers(1, max(n_schools, 2), n)) % n_schools]
    start = dt.date(YEAR, 1, 1)
    enrollment_rows = []
    for i, school, moves, other in zip(ids, school_of, movers, new_school, strict=True):
        if moves:
            enrollment_rows.append(
                (
                    int(i),
                    int(school),
                    YEAR,
                    7,
                    "A",
                    start,
                    (move_day - 1).astype(object),
                    "transferred",
                    now,
                    now,
                )
            )
            enrollment_rows.append(
                (int(i), int(other), YEAR, 7, "A", move_day.astype(object), None, "", now, now)
            )
        else:
            enrollment_rows.append((int(i), int(school), YEAR, 7, "A", start, None, "", now, now))
    bulk_insert_rows(
        Enrollment._meta.db_table,
        [
            "student_id",
            "school_id",
            "academic_year",
            "grade_level",
            "section",
            "entry_date",
            "exit_date",
            "exit_reason",
            "created_at",
            "updated_at",
        ],
        enrollment_rows,
    )

    # Attendance: a student-level propensity, COPY'd week by week (in date order, as imports come).
    table = AttendanceRecord._meta.db_table
    restore = _without_indexes(table)
    propensity = np.clip(rng.beta(12, 1.2, n), 0.3, 0.995)
    attendance_rows = 0
    started = time.perf_counter()
    for days in weeks:
        school_now = np.where(
            movers[:, None] & (days[None, :] >= move_day), new_school[:, None], school_of[:, None]
        )
        u = rng.random((n, len(days)))
        status = np.where(
            u < propensity[:, None] * 0.95,
            0,
            np.where(
                u < propensity[:, None], 3, np.where(u < 0.97 + 0.03 * propensity[:, None], 1, 2)
            ),
        )
        for code, name in enumerate(STATUSES):
            rows, cols = np.nonzero(status == code)
            attendance_rows += pgcopy.copy_in(
                table,
                [
                    ("student_id", "int8", 0),
                    ("school_id", "int8", 0),
                    ("date", "date", 0),
                    ("status", "text", len(name)),
                ],
                {
                    "student_id": ids[rows],
                    "school_id": school_now[rows, cols],
                    "date": days[cols],
                    "status": name,
                },
            )
    copy_s = time.perf_counter() - started
    with connection.cursor() as cursor:
        for statement in restore:
            cursor.execute(statement)
        cursor.execute(f"ANALYZE {table}")
    index_s = time.perf_counter() - started - copy_s

    # Marks: every subject twice (weeks W/3 and 2W/3), 3% missing; incidents for 5% of students.
    grade_rows = []
    for term, week in (("T1", len(weeks) // 3), ("T2", 2 * len(weeks) // 3)):
        day = weeks[week][1].astype(object)
        for subject in subject_pks:
            missing = rng.random(n) < 0.03
            scores = np.round(np.clip(rng.normal(30 + 50 * propensity, 12), 0, 100), 1)
            grade_rows.extend(
                (
                    int(i),
                    int(subject),
                    YEAR,
                    term,
                    "exam",
                    day,
                    None if m else float(s),
                    100.0,
                    bool(m),
                    now,
                    now,
                )
                for i, m, s in zip(ids, missing, scores, strict=True)
            )
    bulk_insert_rows(
        GradeRecord._meta.db_table,
        [
            "student_id",
            "subject_id",
            "academic_year",
            "term",
            "assessment",
            "assessment_date",
            "score",
            "max_score",
            "is_missing",
            "created_at",
            "updated_at",
        ],
        grade_rows,
    )
    with_incident = np.nonzero(rng.random(n) < 0.05)[0]
    all_days = np.concatenate(weeks)
    bulk_insert_rows(
        DisciplineIncident._meta.db_table,
        [
            "student_id",
            "school_id",
            "date",
            "category",
            "severity",
            "action_taken",
            "days_suspended",
            "created_at",
            "updated_at",
        ],
        (
            (
                int(ids[i]),
                int(school_of[i]),
                all_days[rng.integers(0, len(all_days) // 2)].astype(object),
                "disruption",
                int(rng.integers(1, 4)),
                "",
                int(rng.integers(0, 3)),
                now,
                now,
            )
            for i in with_incident
        ),
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return {
        "attendance_rows": attendance_rows,
        "grade_rows": len(grade_rows),
        "copy_rows_per_s": round(attendance_rows / copy_s),
        "index_s": round(index_s, 1),
        "last_day": last_day,
        "last_week_days": weeks[-1],
        "ids": ids,
        "propensity": propensity,
    }


def _reimport_last_week(ids: np.ndarray, days: np.ndarray, seed: int) -> None:
    """A corrected upload of the last week: every student's records replaced."""
    from apps.students.models import AttendanceRecord

    rng = np.random.default_rng(seed + 1)
    first, last = days[0].astype(object), days[-1].astype(object)
    with transaction.atomic():
        records = AttendanceRecord.objects.filter(date__gte=first, date__lte=last)
        kept = list(records.values_list("student_id", "school_id", "date"))
        records.delete()
        statuses = rng.choice(STATUSES, size=len(kept), p=[0.85, 0.08, 0.04, 0.03])
        AttendanceRecord.objects.bulk_create(
            AttendanceRecord(student_id=s, school_id=sc, date=d, status=str(st))
            for (s, sc, d), st in zip(kept, statuses, strict=True)
        )


def _naive(student_ids: list[int], last_day: dt.date) -> float:
    """Per student: ORM reads, Python loops over days and weeks, one insert per student."""
    from apps.features.calendar import year_calendar
    from apps.features.models import FeatureSet, WeeklyFeature
    from apps.students.models import AttendanceRecord, DisciplineIncident, Enrollment, GradeRecord

    calendar = year_calendar(YEAR)
    naive_set, _ = FeatureSet.objects.get_or_create(
        version="naive-bench", defaults={"fingerprint": "-"}
    )
    week_starts = [calendar.week_start(i) for i in range(calendar.week_index(last_day) + 1)]
    started = time.perf_counter()
    for student_id in student_ids:
        enrollments = list(Enrollment.objects.filter(student_id=student_id, academic_year=YEAR))
        records = list(
            AttendanceRecord.objects.filter(
                student_id=student_id, date__gte=calendar.start, date__lte=last_day
            ).order_by("date")
        )
        marks = list(
            GradeRecord.objects.filter(student_id=student_id, academic_year=YEAR).order_by(
                "assessment_date"
            )
        )
        incidents = list(
            DisciplineIncident.objects.filter(student_id=student_id, date__gte=calendar.start)
        )
        history: list[tuple[int, int]] = []
        total_att = total_rec = run = 0
        rows = []
        for week_start in week_starts:
            week_end = week_start + dt.timedelta(days=6)
            enrollment = next(
                (
                    e
                    for e in enrollments
                    if e.entry_date <= week_end
                    and (e.exit_date is None or e.exit_date >= week_start)
                ),
                None,
            )
            if enrollment is None:
                continue
            week_records = [r for r in records if week_start <= r.date <= week_end]
            attended = sum(r.status in ("present", "late") for r in week_records)
            longest = 0
            for r in week_records:
                run = run + 1 if r.status in ("absent", "excused") else 0
                longest = max(longest, run)
            history.append((attended, len(week_records)))
            total_att += attended
            total_rec += len(week_records)
            rolling = []
            for k in (2, 4, 8):
                window = history[-k:]
                rec = sum(h[1] for h in window)
                rolling.append(sum(h[0] for h in window) / rec if rec else float("nan"))
            done = [m for m in marks if m.assessment_date <= week_end and not m.is_missing]
            average = (
                sum(float(m.score) / float(m.max_score) for m in done) / len(done)
                if done
                else float("nan")
            )
            count = sum(1 for i in incidents if week_start <= i.date <= week_end)
            values = [
                attended / len(week_records) if week_records else float("nan"),
                total_att / total_rec if total_rec else float("nan"),
                float(longest),
                *rolling,
                average,
                float(count),
            ]
            rows.append(
                WeeklyFeature(
                    feature_set=naive_set,
                    student_id=student_id,
                    school_id=enrollment.school_id,
                    academic_year=YEAR,
                    week_start=week_start,
                    in_session=bool(week_records),
                    observed=0,
                    values=np.asarray(values, dtype="<f4").tobytes(),
                    state=b"",
                )
            )
        WeeklyFeature.objects.bulk_create(rows)
    return (time.perf_counter() - started) / len(student_ids)


def main() -> None:
    args = _parse()
    if connection.vendor != "postgresql":
        sys.exit("benchmarks/features.py needs PostgreSQL: set DATABASE_URL=postgres://...")
    from apps.common.signals import student_data_changed
    from apps.features.services import features_build

    original = connection.settings_dict["NAME"]
    connection.settings_dict["TEST"]["NAME"] = f"{original}_featbench"
    bench_name = connection.creation.create_test_db(
        verbosity=0, autoclobber=True, serialize=False, keepdb=False
    )
    _say(f"benchmark database {bench_name}: {args.students:,} students x {args.weeks} weeks")
    try:
        started = time.perf_counter()
        loaded = _load(args)
        _say(
            f"loaded {loaded['attendance_rows']:,} attendance rows "
            f"({loaded['copy_rows_per_s']:,} rows/s by COPY, indexes {loaded['index_s']}s) "
            f"and {loaded['grade_rows']:,} marks in {time.perf_counter() - started:.1f}s"
        )
        last_day = loaded["last_day"]
        assert isinstance(last_day, dt.date)

        started = time.perf_counter()
        summary = features_build(academic_year=YEAR, until=last_day)
        full_build_s = time.perf_counter() - started
        _say(
            f"full build: {summary.rows:,} rows for {summary.students:,} students in {full_build_s:.1f}s"
        )

        days = loaded["last_week_days"]
        ids = loaded["ids"]
        assert isinstance(days, np.ndarray) and isinstance(ids, np.ndarray)
        started = time.perf_counter()
        _reimport_last_week(ids, days, args.seed)
        _say(f"re-imported the last week in {time.perf_counter() - started:.1f}s (not timed)")
        # The refresh itself, apart from the other receivers of the signals
        # (dashboards, predictions' caches).
        from apps.features import tasks as feature_tasks

        refresh = feature_tasks.features_refresh
        refresh_s: list[float] = []

        def timed_refresh(**kwargs: Any) -> Any:
            began = time.perf_counter()
            try:
                return refresh(**kwargs)
            finally:
                refresh_s.append(time.perf_counter() - began)

        feature_tasks.features_refresh = timed_refresh  # type: ignore[assignment]
        started = time.perf_counter()
        student_data_changed.send(
            sender=None,
            student_ids=ids.tolist(),
            since=days[0].astype(object),
            until=days[-1].astype(object),
            kinds=["attendance"],
            source="benchmark",
        )
        incremental_s = time.perf_counter() - started
        feature_tasks.features_refresh = refresh  # type: ignore[assignment]
        from apps.features.models import WeeklyFeature

        refreshed = WeeklyFeature.objects.filter(
            week_start__gte=days[0].astype(object) - dt.timedelta(days=6)
        ).count()
        assert refreshed >= len(ids), f"the refresh wrote {refreshed} rows for the last week"
        _say(
            f"incremental one-week refresh of {len(ids):,} students: {incremental_s:.1f}s "
            f"({len(refresh_s)} task(s), {sum(refresh_s):.1f}s in features_refresh)"
        )

        sample = np.random.default_rng(args.seed).choice(
            ids, size=min(args.naive_sample, len(ids)), replace=False
        )
        per_student = _naive(sorted(int(i) for i in sample), last_day)
        naive_s = per_student * args.students
        _say(f"naive per-student: {per_student * 1000:.1f} ms/student, {naive_s:.0f}s scaled to N")
        result = {
            "students": args.students,
            "weeks": args.weeks,
            "attendance_rows": loaded["attendance_rows"],
            "rows_written": summary.rows,
            "full_build_s": round(full_build_s, 2),
            "incremental_s": round(incremental_s, 2),
            "incremental_refresh_s": round(sum(refresh_s), 2),
            "incremental_tasks": len(refresh_s),
            "naive_s_scaled": round(naive_s, 1),
            "ratio_vs_naive": round(naive_s / full_build_s, 1),
            "cpu_count": os.cpu_count(),
        }
    finally:
        if not args.keep:
            connection.creation.destroy_test_db(original, verbosity=0)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
