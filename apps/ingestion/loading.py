"""Staging table and set-based upserts.

Validated rows go into a temporary staging table (COPY on PostgreSQL, in
binary blocks built with numpy where the rows allow it; executemany on
SQLite). Loading then runs, per target table, inside the job's transaction,
from the staging table itself where the kind has one target (else from a
copy shaped by the target's source query):

1. probe whether any stored row can share a staged natural key; if none
   can (a first load, a new month), go straight to step 4 with plain INSERTs;
2. delete from the staging rows every row identical to the stored one
   (``unchanged``: a re-import touches no page of the real table);
3. count the remaining rows whose natural key is stored (``updated``);
4. ``INSERT ... SELECT ... ON CONFLICT (natural key) DO UPDATE`` in batches
   of line ranges (the rest are ``inserted``).

Every function here takes the cursor it runs on: apps.ingestion.pipeline
runs them from a thread on the job's own psycopg connection (not Django's
per-thread one), so that they stay inside the job's transaction.

A temporary table lives in the database session, so a worker that dies takes
its staging rows with it, and the open transaction rolls back: nothing half
written survives (see services.import_jobs_fail_stale for the job row).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from django.db import connection, models

from apps.ingestion.models import ImportKind
from apps.students.models import (
    AttendanceRecord,
    DisciplineIncident,
    Enrollment,
    GradeRecord,
    Holiday,
    School,
    Student,
)

BATCH_ROWS = 250_000

STAGE_COLUMNS: dict[str, list[tuple[str, str]]] = {
    ImportKind.ATTENDANCE: [
        ("student_id", "bigint"),
        ("school_id", "bigint"),
        ("date", "date"),
        ("status", "text"),
    ],
    ImportKind.GRADES: [
        ("student_id", "bigint"),
        ("subject_id", "bigint"),
        ("academic_year", "integer"),
        ("term", "text"),
        ("assessment", "text"),
        ("assessment_date", "date"),
        ("score", "numeric(6,2)"),
        ("max_score", "numeric(6,2)"),
        ("is_missing", "boolean"),
    ],
    ImportKind.INCIDENTS: [
        ("student_id", "bigint"),
        ("school_id", "bigint"),
        ("date", "date"),
        ("category", "text"),
        ("severity", "integer"),
        ("action_taken", "text"),
        ("days_suspended", "integer"),
    ],
    ImportKind.SCHOOLS: [
        ("eiin", "text"),
        ("name", "text"),
        ("name_bn", "text"),
        ("school_type", "text"),
        ("region_id", "bigint"),
    ],
    ImportKind.HOLIDAYS: [("date", "date"), ("name", "text"), ("name_bn", "text")],
    ImportKind.EXITS: [
        ("student_id", "bigint"),
        ("school_id", "bigint"),
        ("academic_year", "integer"),
        ("exit_date", "date"),
        ("exit_reason", "text"),
    ],
    ImportKind.ROSTER: [
        ("sid", "text"),
        ("name", "text"),
        ("name_bn", "text"),
        ("gender", "text"),
        ("date_of_birth", "date"),
        ("guardian_name", "text"),
        ("guardian_phone", "text"),
        ("stipend_recipient", "boolean"),
        ("has_disability", "boolean"),
        ("school_id", "bigint"),
        ("academic_year", "integer"),
        ("grade_level", "integer"),
        ("section", "text"),
        ("entry_date", "date"),
        ("exit_date", "date"),
        ("exit_reason", "text"),
    ],
}


@dataclass(frozen=True)
class Target:
    """How staged rows become rows of one real table."""

    name: str
    table: str
    key: tuple[str, ...]
    columns: tuple[str, ...]  # compared and updated; inserted with the key
    # SELECT list producing key + columns from the staging table `s`
    source: str
    timestamps: bool = True
    keep_if_blank: frozenset[str] = frozenset()  # a blank cell keeps the stored value
    insert_only_defaults: tuple[tuple[str, str], ...] = ()  # column, SQL value on insert
    conflict_where: str = ""
    update_only: bool = False
    date_column: str = ""  # for the changed-dates range
    batched: bool = True
    # The source is the staging table's own columns and the kind has no other
    # target: compare and insert from the staging table itself, no copy.
    in_place: bool = False
    # Which file columns feed each target column: a column the file lacks is
    # neither compared nor overwritten.
    fed_by: tuple[tuple[str, str], ...] = ()

    @property
    def copies_directly(self) -> bool:
        """A staged row is exactly the stored row: new rows can be COPYed into the table."""
        return (
            self.in_place
            and not self.timestamps
            and not self.insert_only_defaults
            and not self.conflict_where
            and not self.update_only
            and not self.fed_by
            and self.date_column in self.key[1:]
        )


def _t(model: type[models.Model]) -> str:
    return str(model._meta.db_table)


TARGETS: dict[str, list[Target]] = {
    ImportKind.ATTENDANCE: [
        Target(
            "attendance",
            _t(AttendanceRecord),
            key=("student_id", "date"),
            columns=("school_id", "status"),
            source="SELECT line, student_id, date, school_id, status FROM {stage}",
            in_place=True,
            timestamps=False,
            date_column="date",
        )
    ],
    ImportKind.GRADES: [
        Target(
            "grades",
            _t(GradeRecord),
            key=("student_id", "academic_year", "term", "subject_id", "assessment"),
            columns=("assessment_date", "score", "max_score", "is_missing"),
            source=(
                "SELECT line, student_id, academic_year, term, subject_id, assessment, "
                "assessment_date, score, max_score, is_missing FROM {stage}"
            ),
            in_place=True,
            date_column="assessment_date",
        )
    ],
    ImportKind.INCIDENTS: [
        Target(
            "incidents",
            _t(DisciplineIncident),
            key=("student_id", "date", "category"),
            columns=("school_id", "severity", "action_taken", "days_suspended"),
            source=(
                "SELECT line, student_id, date, category, school_id, severity, action_taken, "
                "days_suspended FROM {stage}"
            ),
            in_place=True,
            date_column="date",
            fed_by=(("action_taken", "action_taken"), ("days_suspended", "days_suspended")),
        )
    ],
    ImportKind.SCHOOLS: [
        Target(
            "schools",
            _t(School),
            key=("eiin",),
            columns=("name", "name_bn", "school_type", "region_id"),
            source="SELECT line, eiin, name, name_bn, school_type, region_id FROM {stage}",
            in_place=True,
            insert_only_defaults=(("is_active", "TRUE"),),
            fed_by=(("name_bn", "name_bn"),),
        )
    ],
    ImportKind.HOLIDAYS: [
        Target(
            "holidays",
            _t(Holiday),
            key=("date",),
            columns=("name", "name_bn"),
            source="SELECT line, date, name, name_bn FROM {stage}",
            in_place=True,
            conflict_where="region_id IS NULL",
            date_column="date",
            fed_by=(("name_bn", "name_bn"),),
        )
    ],
    ImportKind.EXITS: [
        Target(
            "enrollments",
            _t(Enrollment),
            key=("student_id", "school_id", "academic_year"),
            columns=("exit_date", "exit_reason"),
            source=(
                "SELECT line, student_id, school_id, academic_year, exit_date, exit_reason "
                "FROM {stage}"
            ),
            in_place=True,
            update_only=True,
            date_column="exit_date",
        )
    ],
    ImportKind.ROSTER: [
        Target(
            "students",
            _t(Student),
            key=("student_id",),
            columns=(
                "name",
                "name_bn",
                "gender",
                "date_of_birth",
                "guardian_name",
                "guardian_phone",
                "stipend_recipient",
                "has_disability",
            ),
            # One row per student: the last line that mentions them wins.
            source=(
                "SELECT line, sid AS student_id, name, name_bn, gender, date_of_birth, "
                "guardian_name, guardian_phone, stipend_recipient, has_disability FROM {stage} "
                "WHERE line IN (SELECT max(line) FROM {stage} GROUP BY sid)"
            ),
            fed_by=tuple(
                (c, c)
                for c in (
                    "name_bn",
                    "date_of_birth",
                    "guardian_name",
                    "guardian_phone",
                    "stipend_recipient",
                    "has_disability",
                )
            ),
        ),
        Target(
            "enrollments",
            _t(Enrollment),
            key=("student_id", "school_id", "academic_year"),
            columns=("grade_level", "section", "entry_date", "exit_date", "exit_reason"),
            source=(
                "SELECT s.line, st.id AS student_id, s.school_id, s.academic_year, s.grade_level, "  # noqa: S608
                "s.section, s.entry_date, s.exit_date, s.exit_reason FROM {stage} s "
                f"JOIN {_t(Student)} st ON st.student_id = s.sid"
            ),
            # A roster never reopens an enrollment an exits file closed.
            keep_if_blank=frozenset({"exit_date", "exit_reason"}),
            date_column="entry_date",
            # Rows that close an enrollment go first, so that the next
            # enrollment of a transferred student can open.
            batched=False,
            fed_by=(("section", "section"),),
        ),
    ],
}

TEXT_DEFAULTS = {"exit_reason": "''"}


@dataclass
class TargetResult:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    student_ids: list[int] = field(default_factory=list)
    since: dt.date | None = None
    until: dt.date | None = None


def _q(name: str) -> str:
    return connection.ops.quote_name(name)


def _same(left: str, right: str) -> str:
    # NULL-safe equality on both backends.
    if connection.vendor == "postgresql":
        return f"{left} IS NOT DISTINCT FROM {right}"
    return f"{left} IS {right}"


class Stage:
    """The job's temporary staging table."""

    def __init__(self, kind: str, job_id: int, suffix: str = "") -> None:
        self.kind = kind
        self.job_id = job_id
        self.name = f"ingest_stage_{job_id}{suffix}"
        self.columns = STAGE_COLUMNS[kind]
        self.rows = 0

    def create(self, cursor: Any, on_commit_drop: bool = False) -> None:
        columns = ", ".join(f"{_q(name)} {sqltype}" for name, sqltype in self.columns)
        drop = " ON COMMIT DROP" if on_commit_drop else ""
        cursor.execute(f"DROP TABLE IF EXISTS {self.name}")
        cursor.execute(
            f"CREATE TEMPORARY TABLE {self.name} (line integer NOT NULL, {columns}){drop}"
        )

    def drop(self, cursor: Any) -> None:
        cursor.execute(f"DROP TABLE IF EXISTS {self.name}")

    def empty(self, cursor: Any) -> None:
        cursor.execute(f"TRUNCATE {self.name}")

    def encode(self, frame: pd.DataFrame) -> list[bytes] | None:
        """The frame as COPY BINARY blocks (PostgreSQL), or None for the row-by-row paths."""
        if connection.vendor != "postgresql" or frame.empty:
            return None
        return _binary_copy(frame, self.columns)

    def write(self, cursor: Any, frame: pd.DataFrame, blocks: list[bytes] | None = None) -> int:
        """Append the frame; `blocks` is what encode() gave for it, if anything.

        On PostgreSQL `cursor` is a psycopg cursor (its copy() is used).
        """
        if frame.empty:
            return 0
        names = ["line"] + [name for name, _type in self.columns]
        column_list = ", ".join(_q(n) for n in names)
        if connection.vendor == "postgresql":
            if blocks is not None:
                # A few large preformatted blocks: no Python work per row.
                sql = f"COPY {self.name} ({column_list}) FROM STDIN (FORMAT BINARY)"
                with cursor.copy(sql) as copy:
                    for block in blocks:
                        copy.write(block)
            else:
                with cursor.copy(f"COPY {self.name} ({column_list}) FROM STDIN") as copy:
                    for row in _rows(frame, self.columns):
                        copy.write_row(row)
        else:
            marks = ", ".join(["%s"] * len(names))
            cursor.executemany(
                f"INSERT INTO {self.name} ({column_list}) VALUES ({marks})",  # noqa: S608
                list(_rows(frame, self.columns, dates_as_text=True)),
            )
        self.rows += len(frame)
        return len(frame)

    def analyze(self, cursor: Any) -> None:
        if connection.vendor == "postgresql":
            cursor.execute(f"ANALYZE {self.name}")


@dataclass
class Chunk:
    """One validated chunk, with what loading needs to know of it.

    Built in the validating thread (Python work), loaded in the loading one.
    `blocks` are the staging table's COPY BINARY blocks; `direct` the same
    rows in the table's own columns, where the target allows COPY straight
    into it (copy_new); `spans` holds, per value of the key's first column,
    the first and last staged date (see _spans_stored).
    """

    frame: pd.DataFrame
    blocks: list[bytes] | None = None
    direct: list[bytes] | None = None
    spans: tuple[list[int], list[dt.date], list[dt.date]] | None = None
    student_ids: list[int] = field(default_factory=list)
    since: dt.date | None = None
    until: dt.date | None = None


def chunk_for(target: Target | None, stage: Stage, frame: pd.DataFrame) -> Chunk:
    """`target`: the kind's one table, when new rows may be COPYed into it chunk by chunk."""
    chunk = Chunk(frame)
    if target is None or connection.vendor != "postgresql" or not target.copies_directly:
        chunk.blocks = stage.encode(frame)
        return chunk
    first, day = target.key[0], target.date_column
    days = frame[day].to_numpy(dtype="M8[D]")
    spans = pd.DataFrame({"k": frame[first].to_numpy(dtype=np.int64), "d": days})
    spans = spans.groupby("k", sort=False)["d"].agg(["min", "max"])
    chunk.spans = (
        spans.index.tolist(),
        spans["min"].to_numpy(dtype="M8[D]").astype(object).tolist(),
        spans["max"].to_numpy(dtype="M8[D]").astype(object).tolist(),
    )
    if first == "student_id":
        chunk.student_ids = chunk.spans[0]
    chunk.since, chunk.until = _as_date(days.min()), _as_date(days.max())
    chunk.direct = _binary_copy(frame, stage.columns, line=False)
    return chunk


def copy_new(cursor: Any, stage: Stage, target: Target, chunk: Chunk) -> TargetResult | None:
    """COPY the chunk straight into its table if no stored row can share a key; else None.

    COPY inserts in bulk (multi-row heap inserts and WAL records): about a
    third cheaper than staging the rows and INSERT ... SELECT. A concurrent
    import of the same keys then fails this job on the unique index, leaving
    nothing written. A chunk that may hold stored keys goes to the staging
    table instead, for upsert() to compare once the file is done.
    """
    if chunk.direct is None or chunk.spans is None:
        return None
    if _spans_stored(cursor, target, chunk.spans):
        return None
    names = ", ".join(_q(name) for name, _type in stage.columns)
    with cursor.copy(f"COPY {_q(target.table)} ({names}) FROM STDIN (FORMAT BINARY)") as copy:
        for block in chunk.direct:
            copy.write(block)
    return TargetResult(
        inserted=len(chunk.frame),
        student_ids=chunk.student_ids,
        since=chunk.since,
        until=chunk.until,
    )


def _key_match(target: Target, src: str) -> str:
    match = " AND ".join(f"t.{_q(k)} = {src}.{_q(k)}" for k in target.key)
    if target.conflict_where:
        match += f" AND t.{target.conflict_where}"
    return match


def _unchanged(target: Target, columns: list[str], src: str) -> str:
    """SQL: the stored row `t` has the staged row's key and the same values in `columns`."""

    def same(column: str) -> str:
        equal = _same(f"t.{_q(column)}", f"{src}.{_q(column)}")
        if column in target.keep_if_blank:
            return f"({src}.{_q(column)} IS NULL OR {equal})"
        return equal

    return " AND ".join([_key_match(target, src), *(same(c) for c in columns)])


def stage_changed(cursor: Any, stage: Stage, scratch: Stage, target: Target, chunk: Chunk) -> int:
    """Stage those of the chunk's rows that differ from the stored ones; how many did not.

    For a chunk that may hold stored keys (a re-import, a corrected file).
    The comparison runs chunk by chunk, beside validation, and reads only
    the stored rows of the chunk's students within its dates (an index
    range of the key), so each costs what its chunk does. upsert() then
    writes the staged rows once the file is done.
    """
    assert chunk.spans is not None
    scratch.empty(cursor)
    scratch.write(cursor, chunk.frame, scratch.encode(chunk.frame))
    first, day = _q(target.key[0]), _q(target.date_column)
    src = scratch.name
    cursor.execute(
        f"DELETE FROM {src} WHERE EXISTS (SELECT 1 FROM {_q(target.table)} t "  # noqa: S608
        f"WHERE {_unchanged(target, list(target.columns), src)} "
        f"AND t.{first} = ANY(%s::bigint[]) AND t.{day} BETWEEN %s AND %s)",
        [chunk.spans[0], chunk.since, chunk.until],
    )
    unchanged = max(cursor.rowcount, 0)
    if unchanged < len(chunk.frame):
        cursor.execute(f"INSERT INTO {stage.name} SELECT * FROM {src}")  # noqa: S608
        stage.rows += max(cursor.rowcount, 0)
    return unchanged


def _spans_stored(
    cursor: Any, target: Target, spans: tuple[list[int], list[dt.date], list[dt.date]]
) -> bool:
    """Whether a stored row has a key's first value with a date inside that value's staged span.

    The staged side comes as arrays: no staging table, no aggregate over the
    chunk in the database. A student's earlier months, and the rows an
    earlier chunk of the same file holds (other dates of that student), fall
    outside the span.
    """
    first, day = _q(target.key[0]), _q(target.date_column)
    cursor.execute(
        "SELECT EXISTS (SELECT 1 FROM unnest(%s::bigint[], %s::date[], %s::date[]) "  # noqa: S608
        f"AS s(k, low, high) JOIN {_q(target.table)} t "
        f"ON t.{first} = s.k AND t.{day} BETWEEN s.low AND s.high)",
        list(spans),
    )
    return bool(cursor.fetchone()[0])


def upsert(
    cursor: Any,
    stage: Stage,
    target: Target,
    *,
    present: set[str],
    now: dt.datetime,
    progress: Callable[[int], None] | None = None,
    stored: bool | None = None,
    compared: bool = False,
) -> TargetResult:
    """Write the staged rows into one table; the caller holds the transaction.

    `stored`: whether a stored row may share a staged key, when the caller
    already probed (None: probe here). `compared`: unchanged rows were
    already left out (stage_changed), so only the stored keys are counted.
    """
    fed = dict(target.fed_by)
    columns = [c for c in target.columns if c not in fed or fed[c] in present]
    src = stage.name if target.in_place else f"{stage.name}_{target.name}"
    result = TargetResult()
    key_match = _key_match(target, src)

    def figures() -> tuple[int, int, int]:
        dates = ""
        if target.date_column:
            dates = f", min({_q(target.date_column)}), max({_q(target.date_column)})"
        cursor.execute(f"SELECT count(*), min(line), max(line){dates} FROM {src}")  # noqa: S608
        row = cursor.fetchone()
        if target.date_column:
            result.since, result.until = _as_date(row[3]), _as_date(row[4])
        return int(row[0]), int(row[1] or 0), int(row[2] or 0)

    if not target.in_place:
        cursor.execute(f"DROP TABLE IF EXISTS {src}")
        cursor.execute(f"CREATE TEMPORARY TABLE {src} AS {target.source.format(stage=stage.name)}")
        if connection.vendor == "postgresql":
            cursor.execute(f"ANALYZE {src}")
    remaining, low, high = figures()
    if stored is None:
        stored = bool(remaining) and _any_stored(cursor, src, target)
    if remaining and stored:
        if not compared:
            cursor.execute(
                f"DELETE FROM {src} WHERE EXISTS "  # noqa: S608
                f"(SELECT 1 FROM {_q(target.table)} t WHERE {_unchanged(target, columns, src)})"
            )
            result.unchanged = max(cursor.rowcount, 0)
        cursor.execute(
            f"SELECT count(*) FROM {src} WHERE EXISTS "  # noqa: S608
            f"(SELECT 1 FROM {_q(target.table)} t WHERE {key_match})"
        )
        result.updated = int(cursor.fetchone()[0])
        if result.unchanged:
            remaining, low, high = figures()
    # else: no staged key can be stored yet (a first load), so there is
    # nothing to compare; this skips two joins against the real table.
    result.inserted = remaining - result.updated
    if remaining:
        if "student_id" in target.key and target.table != _t(Student):
            cursor.execute(f"SELECT DISTINCT student_id FROM {src}")  # noqa: S608
            result.student_ids = [int(r[0]) for r in cursor.fetchall()]
        batches = (
            [(low, high)]
            if not target.batched
            else [
                (start, min(start + BATCH_ROWS - 1, high))
                for start in range(low, high + 1, BATCH_ROWS)
            ]
        )
        for first, last in batches:
            if target.update_only:
                _update_batch(cursor, src, target, columns, now, first, last)
            else:
                # No staged key is stored yet (a first load): a plain
                # INSERT skips ON CONFLICT's speculative insertion, which
                # costs about half again. A concurrent import of the same
                # keys then fails this job on the unique index, leaving
                # nothing written.
                _insert_batch(
                    cursor,
                    src,
                    target,
                    columns,
                    now,
                    first,
                    last,
                    on_conflict=result.updated > 0 or bool(target.conflict_where),
                )
            if progress is not None:
                progress(last)
    if target.table == _t(Student) and remaining:
        cursor.execute(
            f"SELECT st.id FROM {_q(target.table)} st JOIN {src} ON st.student_id = {src}.student_id"  # noqa: S608
        )
        result.student_ids = [int(r[0]) for r in cursor.fetchall()]
    if not target.in_place:
        cursor.execute(f"DROP TABLE IF EXISTS {src}")
    return result


def _any_stored(cursor: Any, src: str, target: Target) -> bool:
    """Whether any stored row may share a natural key with the staged rows.

    A probe per distinct value of the key's first column, stopping at the
    first hit. When the key holds the date, each value is probed only within
    its own staged dates (a student's earlier months do not count).
    """
    first = _q(target.key[0])
    table = _q(target.table)
    extra = f" AND t.{target.conflict_where}" if target.conflict_where else ""
    if target.date_column in target.key and target.key[0] != target.date_column:
        day = _q(target.date_column)
        sql = (
            f"SELECT EXISTS (SELECT 1 FROM (SELECT {first}, min({day}) AS low, "  # noqa: S608
            f"max({day}) AS high FROM {src} GROUP BY {first}) s JOIN {table} t "
            f"ON t.{first} = s.{first} AND t.{day} BETWEEN s.low AND s.high{extra})"
        )
    else:
        sql = (
            f"SELECT EXISTS (SELECT 1 FROM {table} t "  # noqa: S608
            f"WHERE t.{first} IN (SELECT DISTINCT {first} FROM {src}){extra})"
        )
    cursor.execute(sql)
    return bool(cursor.fetchone()[0])


def _as_date(value: Any) -> dt.date | None:
    if value is None:
        return None
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def _insert_batch(
    cursor: Any,
    src: str,
    target: Target,
    columns: list[str],
    now: dt.datetime,
    first: int,
    last: int,
    on_conflict: bool = True,
) -> None:
    all_columns = [*target.key, *target.columns]
    names = [_q(c) for c in all_columns]
    select = [
        f"COALESCE({_q(c)}, {TEXT_DEFAULTS[c]})"
        if c in target.keep_if_blank and c in TEXT_DEFAULTS
        else _q(c)
        for c in all_columns
    ]
    params: list[Any] = []
    for column, value in target.insert_only_defaults:
        names.append(_q(column))
        select.append(value)
    if target.timestamps:
        names += [_q("created_at"), _q("updated_at")]
        select += ["%s", "%s"]
        params += [now, now]
    updates = []
    for column in columns:
        new = f"EXCLUDED.{_q(column)}"
        if column in target.keep_if_blank:
            old = f"{_q(target.table)}.{_q(column)}"
            new = (
                f"COALESCE(NULLIF({new}, ''), {old})"
                if column in TEXT_DEFAULTS
                else f"COALESCE({new}, {old})"
            )
        updates.append(f"{_q(column)} = {new}")
    if target.timestamps:
        updates.append(f"{_q('updated_at')} = EXCLUDED.{_q('updated_at')}")
    conflict = ", ".join(_q(k) for k in target.key)
    if target.conflict_where:
        conflict += f") WHERE ({target.conflict_where}"
    # Row order only matters where an exit must land before the next opening
    # (rosters); elsewhere sorting a million staged rows is pure cost.
    order = ""
    if "exit_date" in all_columns:
        order = f" ORDER BY CASE WHEN {_q('exit_date')} IS NULL THEN 1 ELSE 0 END, line"
    action = f"DO UPDATE SET {', '.join(updates)}" if updates else "DO NOTHING"
    sql = (
        f"INSERT INTO {_q(target.table)} ({', '.join(names)}) "  # noqa: S608
        f"SELECT {', '.join(select)} FROM {src} WHERE line BETWEEN %s AND %s{order}"
    )
    if on_conflict:
        sql += f" ON CONFLICT ({conflict}) {action}"
    cursor.execute(sql, [*params, first, last])


def _update_batch(
    cursor: Any,
    src: str,
    target: Target,
    columns: list[str],
    now: dt.datetime,
    first: int,
    last: int,
) -> None:
    table = _q(target.table)
    sets = [f"{_q(c)} = {src}.{_q(c)}" for c in columns]
    params: list[Any] = []
    if target.timestamps:
        sets.append(f"{_q('updated_at')} = %s")
        params.append(now)
    match = " AND ".join(f"{table}.{_q(k)} = {src}.{_q(k)}" for k in target.key)
    cursor.execute(
        f"UPDATE {table} SET {', '.join(sets)} FROM {src} "  # noqa: S608
        f"WHERE {match} AND {src}.line BETWEEN %s AND %s",
        [*params, first, last],
    )


# --- staging rows -----------------------------------------------------------

PG_EPOCH = np.datetime64("2000-01-01", "D")
BINARY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, no extension
BINARY_TRAILER = b"\xff\xff"
# Binary COPY wants every row of a block to have one layout; rows are grouped
# by their text values and empty cells. More groups than this (free text such
# as names) and the row-by-row COPY is used instead.
MAX_BINARY_GROUPS = 64
BINARY_FIXED = {"bigint": ">i8", "integer": ">i4", "date": ">i4", "boolean": "?"}


def _rows(
    frame: pd.DataFrame, columns: list[tuple[str, str]], dates_as_text: bool = False
) -> Iterator[tuple[Any, ...]]:
    data: list[list[Any]] = [frame["_line"].to_numpy().tolist()]
    for name, sqltype in columns:
        column = frame[name]
        if sqltype in ("bigint", "integer"):
            data.append(column.to_numpy(dtype=np.int64).tolist())
        elif sqltype == "boolean":
            data.append(column.to_numpy(dtype=bool).tolist())
        elif sqltype.startswith("numeric"):
            values = column.to_numpy(dtype=float)
            data.append([None if np.isnan(x) else x for x in values.tolist()])
        elif sqltype == "date":
            days = column.to_numpy(dtype="M8[D]")
            if dates_as_text:
                text = np.datetime_as_string(days, unit="D").astype(object)
                text[np.isnat(days)] = None
                data.append(text.tolist())
            else:
                data.append(days.astype(object).tolist())  # NaT becomes None
        else:
            data.append([None if x is None or x is np.nan else x for x in column.tolist()])
    return zip(*data, strict=True)


def _regroup(keys: np.ndarray) -> tuple[np.ndarray, int]:
    """Renumber combined keys 0..k-1, so that k counts the combinations that occur."""
    codes, uniques = pd.factorize(keys)
    return codes.astype(np.int64), len(uniques)


def _binary_copy(
    frame: pd.DataFrame, columns: list[tuple[str, str]], line: bool = True
) -> list[bytes] | None:
    """The frame as COPY BINARY data in a few blocks, or None where that does not fit.

    Each group of rows that share their text values and empty cells becomes
    one numpy structured array whose memory is exactly the rows' wire format
    (big-endian field lengths and values), so a million rows are a handful of
    array assignments.
    """
    n = len(frame)
    parts: list[tuple[str, np.ndarray, Any]] = []
    if line:
        parts.append(("fixed", frame["_line"].to_numpy(), ">i4"))
    group = np.zeros(n, dtype=np.int64)
    groups = 1
    for name, sqltype in columns:
        column = frame[name]
        if sqltype in ("bigint", "integer", "boolean"):
            dtype = bool if sqltype == "boolean" else np.int64
            parts.append(("fixed", column.to_numpy(dtype=dtype), BINARY_FIXED[sqltype]))
        elif sqltype == "date":
            days = column.to_numpy(dtype="M8[D]")
            empty = np.isnat(days)
            offsets = np.where(empty, 0, (days - PG_EPOCH).astype(np.int64))
            parts.append(("date", offsets, empty))
            group, groups = _regroup(group * 2 + empty)
        elif sqltype == "text":
            codes, uniques = pd.factorize(column.to_numpy(dtype=object), use_na_sentinel=True)
            encoded = [str(u).encode() for u in uniques]
            parts.append(("text", codes, encoded))
            group, groups = _regroup(group * (len(uniques) + 1) + (codes + 1))
        else:
            return None  # numeric: the text COPY formats it
        if groups > MAX_BINARY_GROUPS:
            return None
    blocks = [BINARY_SIGNATURE]
    field_count = np.int16(len(parts)).astype(">i2")
    for key in np.unique(group):
        rows = np.flatnonzero(group == key)
        probe = rows[0]
        layout: list[tuple[str, str]] = [("n", ">i2")]
        values: dict[str, Any] = {"n": field_count}
        for i, (kind, data, extra) in enumerate(parts):
            if kind == "fixed":
                layout += [(f"l{i}", ">i4"), (f"v{i}", extra)]
                values[f"l{i}"] = np.dtype(extra).itemsize
                values[f"v{i}"] = data[rows]
            elif kind == "date":
                if extra[probe]:
                    layout.append((f"l{i}", ">i4"))
                    values[f"l{i}"] = -1  # NULL
                else:
                    layout += [(f"l{i}", ">i4"), (f"v{i}", ">i4")]
                    values[f"l{i}"] = 4
                    values[f"v{i}"] = data[rows]
            else:
                code = data[probe]
                layout.append((f"l{i}", ">i4"))
                if code < 0:
                    values[f"l{i}"] = -1
                else:
                    text = extra[code]
                    values[f"l{i}"] = len(text)
                    if text:
                        layout.append((f"v{i}", f"S{len(text)}"))
                        values[f"v{i}"] = text
        block = np.empty(len(rows), dtype=np.dtype(layout))
        for name, value in values.items():
            block[name] = value
        blocks.append(block.tobytes())
    blocks.append(BINARY_TRAILER)
    return blocks
