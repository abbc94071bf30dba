"""Set-based reads of the raw records, aggregated in the database.

Attendance is the big table (a row per student per school day), so it never
crosses into Python row by row: the database folds each student's week into
four 7-bit masks (recorded, absent, excused, late days) and only those
cross, through binary COPY on PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from django.db import connection, transaction

from apps.features import pgcopy
from apps.features.calendar import popcount7
from apps.students.models import (
    AttendanceRecord,
    DisciplineIncident,
    Enrollment,
    GradeRecord,
    Student,
    Subject,
)

Ids = Sequence[int] | np.ndarray


def _postgres() -> bool:
    return connection.vendor == "postgresql"


def _day_offset(column: str) -> str:
    """SQL for the whole days from the origin (the first %s parameter) to `column`."""
    if _postgres():
        return f"({column} - %s::date)"
    return f"CAST(julianday({column}) - julianday(%s) AS INTEGER)"


def _in_ids(column: str, ids: Ids | None) -> tuple[str, list[Any]]:
    if ids is None:
        return "", []
    values = np.asarray(ids, dtype=np.int64)
    if not len(values):
        return " AND 1 = 0", []
    if _postgres():
        # The range lets the planner walk an index on the column; ANY keeps it exact.
        clause = f" AND {column} BETWEEN %s AND %s AND {column} = ANY(%s::bigint[])"
        return clause, [int(values.min()), int(values.max()), pgcopy.bigint_array(values)]
    # One JSON parameter instead of thousands of placeholders (SQLite's limit).
    clause = f" AND {column} IN (SELECT value FROM json_each(%s))"  # noqa: S608
    return clause, [json.dumps(values.tolist())]  # noqa: S608


@contextmanager
def _roomy(work_mem: str) -> Iterator[None]:
    """On PostgreSQL, a transaction whose aggregates may use `work_mem` each."""
    if not _postgres():
        yield
        return
    with transaction.atomic(), connection.cursor() as cursor:
        # Big aggregates hash in memory instead of spilling to disk.
        cursor.execute(f"SET LOCAL work_mem = '{work_mem}'")
        yield


def _frame(sql: str, params: list[Any], columns: list[tuple[str, str, int]]) -> pd.DataFrame:
    if _postgres():
        with _roomy("256MB"):
            return pd.DataFrame(pgcopy.fetch_packed(sql, params, columns))
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    names = [name for name, _kind, _width in columns]
    frame = pd.DataFrame.from_records(rows, columns=names)
    return frame.astype(
        {name: ("int64" if kind == "int8" else "float64") for name, kind, _w in columns}
    )


STATUS_SHIFT = {"present": 0, "absent": 7, "excused": 14, "late": 21}
# The year's attendance aggregate holds a group per student-week (about 150
# bytes each, 4M groups for 100,000 students x 40 weeks): below this it
# spills to disk and takes about twice as long.
ATTENDANCE_WORK_MEM = "512MB"


@dataclass
class WeekBits:
    """Attendance records folded per student-week, and per school-week.

    `students`: one row per student and week (index from the origin), sorted
    by both: student_id, week, rec, absent, excused, late (7-bit day masks,
    bit d = origin day 7 * week + d). `school_weeks`: records and attended
    days per school (the record's) and week, the data checks' input; None
    when only some students' records were read.
    """

    students: pd.DataFrame
    school_weeks: pd.DataFrame | None


def _either(student_ids: Ids | None, school_ids: Ids | None) -> tuple[str, list[Any]]:
    """The records of the students or at the schools (everyone's if both None)."""
    if student_ids is None and school_ids is None:
        return "", []
    if school_ids is None:
        return _in_ids("a.student_id", student_ids)
    if student_ids is None:
        return _in_ids("a.school_id", school_ids)
    students = np.asarray(student_ids, dtype=np.int64)
    schools = np.asarray(school_ids, dtype=np.int64)
    if _postgres():
        clause = " AND (a.student_id = ANY(%s::bigint[]) OR a.school_id = ANY(%s::bigint[]))"
        return clause, [pgcopy.bigint_array(students), pgcopy.bigint_array(schools)]
    clause = (
        " AND (a.student_id IN (SELECT value FROM json_each(%s))"
        " OR a.school_id IN (SELECT value FROM json_each(%s)))"
    )
    return clause, [json.dumps(students.tolist()), json.dumps(schools.tolist())]


def attendance_week_bits(
    *,
    origin: dt.date,
    first: dt.date,
    last: dt.date,
    student_ids: Ids | None,
    school_ids: Ids | None = None,
    students_from: dt.date | None = None,
) -> WeekBits:
    """The records in [first, last] of the students and at the schools, in one aggregate.

    `students` holds the student-weeks of `student_ids` (everyone's if None)
    from `students_from` (default `first`) on, `school_weeks` the totals of
    `school_ids` (every school's if both are None) over the whole range:
    before `students_from` the records are only counted per school (an
    update's checks look back one week the students need not). The database
    folds a student's week at a school into one 28-bit
    integer, four 7-bit masks side by side (present, absent, excused, late).
    Each (student, date) is unique, so summing distinct powers of two is a
    bitwise OR, and an int4 sum stays in fast integer arithmetic. Grouping
    by the record's school too gives the data checks their school-week
    totals from the same pass over the table.
    """
    table = AttendanceRecord._meta.db_table
    offset = _day_offset("a.date")
    shift = " ".join(f"WHEN '{status}' THEN {bit}" for status, bit in STATUS_SHIFT.items())
    where, id_params = _either(student_ids, school_ids)
    inner = (
        f"SELECT a.student_id AS student_id, a.school_id AS school_id, "  # noqa: S608
        f"{offset} / 7 AS week, "
        f"SUM(1 << ({offset} %% 7 + CASE a.status {shift} ELSE 0 END)) AS masks "
        f"FROM {table} a WHERE a.date >= %s AND a.date <= %s{where} "
        f"GROUP BY a.student_id, a.school_id, week"
    )
    students_from = max(first, students_from or first)
    params = [origin, origin, students_from, last, *id_params]
    if _postgres():
        # One bigint per student-school-week (student << 34 | week << 28 |
        # masks) and the school; Student pks stay far below 2**29.
        with _roomy(ATTENDANCE_WORK_MEM):
            out = pgcopy.fetch_packed(
                f"SELECT (q.student_id::bigint << 34) | (q.week::bigint << 28) "  # noqa: S608
                f"| q.masks AS packed, q.school_id::bigint AS school_id FROM ({inner}) AS q",
                params,
                [("packed", "int8", 0), ("school_id", "int8", 0)],
            )
        packed = out["packed"].astype(np.int64)
        school = out["school_id"].astype(np.int64)
    else:
        with connection.cursor() as cursor:
            cursor.execute(inner, params)
            rows = np.array(cursor.fetchall(), dtype=np.int64).reshape(-1, 4)
        packed = (rows[:, 0] << 34) | (rows[:, 2] << 28) | rows[:, 3]
        school = rows[:, 1]
    totals = None
    if school_ids is not None:
        at = np.isin(school, np.asarray(school_ids, dtype=np.int64))
        totals = _school_weeks(packed[at], school[at])
    elif student_ids is None:
        totals = _school_weeks(packed, school)
    if totals is not None and first < students_from:
        before = _school_week_counts(
            origin=origin,
            first=first,
            last=students_from - dt.timedelta(days=1),
            school_ids=school_ids,
        )
        totals = pd.concat([before, totals], ignore_index=True)
    if student_ids is not None and school_ids is not None:
        packed = packed[np.isin(packed >> 34, np.asarray(student_ids, dtype=np.int64))]
    return WeekBits(students=_student_weeks(packed), school_weeks=totals)


SCHOOL_WEEK_COLUMNS = [
    ("school_id", "int8", 0),
    ("week", "int8", 0),
    ("rec", "int8", 0),
    ("attended", "int8", 0),
]


def _school_week_counts(
    *, origin: dt.date, first: dt.date, last: dt.date, school_ids: Ids | None
) -> pd.DataFrame:
    """Records and attended days per school and week, counted in the database."""
    table = AttendanceRecord._meta.db_table
    offset = _day_offset("a.date")
    cast = "::bigint" if _postgres() else ""
    where, id_params = _in_ids("a.school_id", school_ids)
    sql = (
        f"SELECT a.school_id{cast} AS school_id, ({offset} / 7){cast} AS week, "  # noqa: S608
        f"COUNT(*){cast} AS rec, "
        f"SUM(CASE WHEN a.status IN ('present', 'late') THEN 1 ELSE 0 END){cast} AS attended "
        f"FROM {table} a WHERE a.date >= %s AND a.date <= %s{where} "
        f"GROUP BY a.school_id, week"
    )
    return _frame(sql, [origin, first, last, *id_params], SCHOOL_WEEK_COLUMNS)


def _student_weeks(packed: np.ndarray) -> pd.DataFrame:
    packed = np.sort(packed)  # by student, then week
    key = packed >> 28
    masks = packed & ((1 << 28) - 1)
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]]) if len(key) else key
    if len(starts) < len(key):
        # Records at two schools in one week (a transfer mid-week): one row.
        masks = np.bitwise_or.reduceat(masks, starts)
        key = key[starts]
    return pd.DataFrame(
        {
            "student_id": key >> 6,
            "week": key & 63,
            "rec": (masks | masks >> 7 | masks >> 14 | masks >> 21) & 127,
            "absent": (masks >> 7) & 127,
            "excused": (masks >> 14) & 127,
            "late": (masks >> 21) & 127,
        }
    )


def _school_weeks(packed: np.ndarray, school: np.ndarray) -> pd.DataFrame:
    masks = packed & ((1 << 28) - 1)
    frame = pd.DataFrame(
        {
            "school_id": school,
            "week": (packed >> 28) & 63,
            "rec": popcount7(masks | masks >> 7 | masks >> 14 | masks >> 21),
            "attended": popcount7(masks | masks >> 21),  # present or late
        }
    )
    return frame.groupby(["school_id", "week"], as_index=False, sort=False).sum()


def _ordered(frame: pd.DataFrame) -> pd.DataFrame:
    """Sorted by every column, student_id first: a build cuts frames per
    student, and float sums must not depend on the query plan's row order."""
    if len(frame) < 2:
        return frame
    order = np.lexsort([frame[column].to_numpy() for column in reversed(frame.columns)])
    return frame.iloc[order].reset_index(drop=True)


ENROLLMENT_COLUMNS = [
    ("student_id", "int8", 0),
    ("school_id", "int8", 0),
    ("grade_level", "int8", 0),
    ("entry_day", "int8", 0),
    ("exit_day", "int8", 0),
]
NO_EXIT = 1_000_000  # days after the origin: an enrollment still open


def enrollments(*, origin: dt.date, academic_year: int, student_ids: Ids | None) -> pd.DataFrame:
    """The year's enrollments, entry and exit as days from `origin`, by student and entry."""
    table = Enrollment._meta.db_table
    cast = "::bigint" if _postgres() else ""
    where, id_params = _in_ids("e.student_id", student_ids)
    sql = (
        f"SELECT e.student_id{cast} AS student_id, e.school_id{cast} AS school_id, "  # noqa: S608
        f"e.grade_level{cast} AS grade_level, {_day_offset('e.entry_date')}{cast} AS entry_day, "
        f"COALESCE({_day_offset('e.exit_date')}, {NO_EXIT}){cast} AS exit_day "
        f"FROM {table} e WHERE e.academic_year = %s{where}"
    )
    frame = _frame(sql, [origin, origin, academic_year, *id_params], ENROLLMENT_COLUMNS)
    return frame.sort_values(["student_id", "entry_day"], kind="stable").reset_index(drop=True)


BIRTH_COLUMNS = [("student_id", "int8", 0), ("birth_day", "int8", 0)]


def birth_dates(*, origin: dt.date, student_ids: Ids | None) -> pd.DataFrame:
    """Known birth dates as days from `origin` (negative: before it), by student."""
    table = Student._meta.db_table
    cast = "::bigint" if _postgres() else ""
    where, id_params = _in_ids("s.id", student_ids)
    sql = (
        f"SELECT s.id{cast} AS student_id, {_day_offset('s.date_of_birth')}{cast} AS birth_day "  # noqa: S608
        f"FROM {table} s WHERE s.date_of_birth IS NOT NULL{where}"
    )
    return _ordered(_frame(sql, [origin, *id_params], BIRTH_COLUMNS))


GRADE_COLUMNS = [
    ("student_id", "int8", 0),
    ("subject_id", "int8", 0),
    ("day", "int8", 0),
    ("share", "float8", 0),
]


def grades(
    *,
    origin: dt.date,
    academic_year: int,
    student_ids: Ids | None,
    days: tuple[int, int] | None = None,
) -> pd.DataFrame:
    """The year's marks as shares of the maximum; -1 marks a missing assessment.

    `days` (first, last; days from `origin`) keeps only marks dated in between.
    Ordered by every column: averages sum in that order, so a student's
    values never depend on how the database found the rows.
    """
    table = GradeRecord._meta.db_table
    offset = _day_offset("g.assessment_date")
    cast = "::bigint" if _postgres() else ""
    where, id_params = _in_ids("g.student_id", student_ids)
    params: list[Any] = [origin, academic_year]
    if days is not None:
        first = origin + dt.timedelta(days=days[0])
        where = f" AND g.assessment_date BETWEEN %s AND %s{where}"
        params += [first, origin + dt.timedelta(days=days[1])]
    sql = (
        f"SELECT g.student_id{cast} AS student_id, g.subject_id{cast} AS subject_id, "  # noqa: S608
        f"{offset}{cast} AS day, "
        "CASE WHEN g.is_missing THEN -1.0 ELSE CAST(g.score AS DOUBLE PRECISION) "
        "/ CAST(g.max_score AS DOUBLE PRECISION) END AS share "
        f"FROM {table} g WHERE g.academic_year = %s{where}"
    )
    return _ordered(_frame(sql, [*params, *id_params], GRADE_COLUMNS))


def subject_codes() -> dict[int, str]:
    return dict(Subject.objects.values_list("pk", "code"))


INCIDENT_COLUMNS = [
    ("student_id", "int8", 0),
    ("day", "int8", 0),
    ("severity", "int8", 0),
    ("days_suspended", "int8", 0),
]


def incidents(
    *, origin: dt.date, first: dt.date, last: dt.date, student_ids: Ids | None
) -> pd.DataFrame:
    """Incidents dated in [first, last], ordered by every column."""
    table = DisciplineIncident._meta.db_table
    offset = _day_offset("d.date")
    cast = "::bigint" if _postgres() else ""
    where, id_params = _in_ids("d.student_id", student_ids)
    sql = (
        f"SELECT d.student_id{cast} AS student_id, {offset}{cast} AS day, "  # noqa: S608
        f"d.severity{cast} AS severity, d.days_suspended{cast} AS days_suspended "
        f"FROM {table} d WHERE d.date >= %s AND d.date <= %s{where}"
    )
    return _ordered(_frame(sql, [origin, first, last, *id_params], INCIDENT_COLUMNS))
