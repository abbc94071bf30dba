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


# A record's status as the index of its 7-bit day mask (present, absent, excused, late).
STATUS_CODE = {"present": 0, "absent": 1, "excused": 2, "late": 3}
# One packed read stays well below PostgreSQL's 1 GB limit on a value: longer
# date ranges are read in several pieces.
PACKED_BYTES = 768 * 2**20


@dataclass
class WeekBits:
    """Attendance records folded per student-week, and per school-week.

    `students`: one row per student and week (index from the origin), sorted
    by both: student_id, week, rec, absent, excused, late (7-bit day masks,
    bit d = origin day 7 * week + d). `school_weeks`: records and attended
    days per school (the record's) and week, the data checks' input.
    """

    students: pd.DataFrame
    school_weeks: pd.DataFrame


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


def _attendance_records(
    *, origin: dt.date, first: dt.date, last: dt.date, where: str, params: list[Any]
) -> np.ndarray:
    """The records in [first, last], one int64 each: student << 34 | school << 12
    | day from `origin` << 2 | status code (Student pks stay below 2**29,
    School pks below 2**22, days below 2**10)."""
    table = AttendanceRecord._meta.db_table
    offset = _day_offset("a.date")
    code = " ".join(f"WHEN '{status}' THEN {c}" for status, c in STATUS_CODE.items())
    sql = (
        f"SELECT (a.student_id << 34) | (a.school_id << 12) | ({offset} << 2) "  # noqa: S608
        f"| (CASE a.status {code} ELSE 0 END) AS packed "
        f"FROM {table} a WHERE a.date >= %s AND a.date <= %s{where}"
    )
    if not _postgres():
        with connection.cursor() as cursor:
            cursor.execute(sql, [origin, first, last, *params])
            return np.fromiter((row[0] for row in cursor.fetchall()), dtype=np.int64)
    return pgcopy.fetch_packed(sql, [origin, first, last, *params], [("packed", "int8", 0)])[
        "packed"
    ].astype(np.int64)


def attendance_week_bits(
    *,
    origin: dt.date,
    first: dt.date,
    last: dt.date,
    students: np.ndarray,
    name_students: bool = True,
    school_ids: Ids | None = None,
    students_from: dt.date | None = None,
) -> WeekBits:
    """The attendance records in [first, last], folded in numpy.

    `students` (sorted): whose weeks to fold, from `students_from` (default
    `first`) on. `school_weeks` counts the records read at `school_ids`
    (every school's when None) over the whole range: an update's data checks
    look back one week its students need not. `name_students`: the query names
    the students (and the schools); else it reads every record of the range,
    cheaper for most of a year's students than a list of their ids.

    The database only packs each record into a bigint, which one packed read
    carries (a hash aggregate of a year's 20 million records into 4 million
    student-weeks cost PostgreSQL three times what numpy needs). Each
    (student, date) is unique, so summing a student-week's distinct day bits
    is a bitwise OR.
    """
    students = np.asarray(students, dtype=np.int64)
    where, params = _either(students, school_ids) if name_students else ("", [])
    days = max((last - first).days + 1, 1)
    # A bigint per student and calendar day, more than the school days hold;
    # twice the students when reading everyone's (they are at least half).
    estimate = 8 * max(len(students), 1) * days * (1 if name_students else 2)
    step = int(np.ceil(days / max(1, int(np.ceil(estimate / PACKED_BYTES)))))
    packed = np.concatenate(
        [np.zeros(0, dtype=np.int64)]
        + [
            _attendance_records(
                origin=origin,
                first=first + dt.timedelta(days=start),
                last=min(last, first + dt.timedelta(days=start + step - 1)),
                where=where,
                params=params,
            )
            for start in range(0, days, step)
        ]
    )
    student = packed >> 34
    school = (packed >> 12) & ((1 << 22) - 1)
    day = (packed >> 2) & 1023
    week, weekday = np.divmod(day, 7)
    code = packed & 3
    weeks = 64  # a week index fits 6 bits

    # Per school-week: a dense index of the schools seen, then bincounts.
    seen = np.zeros(int(school.max()) + 1 if len(school) else 1, dtype=bool)
    seen[school] = True
    if school_ids is not None:
        wanted = np.zeros_like(seen)
        listed = np.asarray(school_ids, dtype=np.int64)
        wanted[listed[listed < len(seen)]] = True
        seen &= wanted
    school_list = np.flatnonzero(seen)
    school_row = np.full(len(seen), -1, dtype=np.int64)
    school_row[school_list] = np.arange(len(school_list))
    at = school_row[school]
    counted = at >= 0
    cell = at[counted] * weeks + week[counted]
    size = len(school_list) * weeks
    rec = np.bincount(cell, minlength=size)
    attended = np.bincount(cell, weights=((code == 0) | (code == 3))[counted], minlength=size)
    filled = np.flatnonzero(rec)
    school_weeks = pd.DataFrame(
        {
            "school_id": school_list[filled // weeks],
            "week": filled % weeks,
            "rec": rec[filled].astype(np.int64),
            "attended": attended[filled].astype(np.int64),
        }
    )

    # Per student-week: each record's row among `students` (-1: another student's).
    n = len(students)
    student_row = np.full(int(students.max()) + 1 if n else 1, -1, dtype=np.int64)
    student_row[students] = np.arange(n)
    if len(student) and student.max() >= len(student_row):
        student = np.where(student < len(student_row), student, 0)
    row = student_row[student]
    keep = row >= 0
    if students_from is not None:
        keep &= day >= (students_from - origin).days
    bit = np.int64(1) << (weekday[keep] + 7 * code[keep])
    # Week-major cells: records arrive week by week, so neighbouring records
    # add to neighbouring cells.
    folded = np.bincount(week[keep] * n + row[keep], weights=bit, minlength=weeks * n)
    by_student = np.ascontiguousarray(folded.astype(np.int64).reshape(weeks, n).T).ravel()
    cells = np.flatnonzero(by_student)  # every record sets a bit; by student, then week
    masks = by_student[cells]
    return WeekBits(
        students=pd.DataFrame(
            {
                "student_id": students[cells // weeks],
                "week": cells % weeks,
                "rec": (masks | masks >> 7 | masks >> 14 | masks >> 21) & 127,
                "absent": (masks >> 7) & 127,
                "excused": (masks >> 14) & 127,
                "late": (masks >> 21) & 127,
            }
        ),
        school_weeks=school_weeks,
    )


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
