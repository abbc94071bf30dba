"""Reads and writes of the weekly store table, COPY on PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.db import connection

from apps.features import pgcopy
from apps.features.models import WeeklyFeature

TABLE = WeeklyFeature._meta.db_table


def _postgres() -> bool:
    return connection.vendor == "postgresql"


Ids = Sequence[int] | np.ndarray


def _ids_clause(ids: Ids | None) -> tuple[str, list[Any]]:
    if ids is None:
        return "", []
    values = np.asarray(ids, dtype=np.int64)
    if _postgres():
        return " AND student_id = ANY(%s::bigint[])", [pgcopy.bigint_array(values)]
    return " AND student_id IN (SELECT value FROM json_each(%s))", [json.dumps(values.tolist())]


@dataclass
class Rows:
    student_id: np.ndarray  # int64 [M]
    school_id: np.ndarray  # int64 [M]
    week_start: np.ndarray  # datetime64[D] [M]
    in_session: np.ndarray  # bool [M]
    values: np.ndarray  # float32 [M, F]
    state: np.ndarray  # int16 [M, S]: the extractor state holds counts only
    # Rows whose state is stored; the others get an empty one (see STATE_WEEKS).
    keep_state: np.ndarray | None = None

    @property
    def observed(self) -> np.ndarray:
        bits = (np.int64(1) << np.arange(self.values.shape[1], dtype=np.int64))[None, :]
        return (~np.isnan(self.values) * bits).sum(axis=1).astype(np.int64)


def rows_delete(
    *,
    feature_set_id: int,
    academic_year: int,
    student_ids: Ids,
    week_from: Any,
    whole_year: bool = False,
) -> int:
    """Delete the students' rows from `week_from` on (`whole_year`: from the year's first week)."""
    clause, params = _ids_clause(student_ids)
    with connection.cursor() as cursor:
        if _postgres() and connection.in_atomic_block:
            # During a build the table's statistics are those of before it
            # (an empty table after the first migration): the planner would
            # scan the whole table once per chunk. The students' rows are
            # found through the primary key, or the BRIN on week_start when
            # only the last weeks go (every range would match the whole year).
            cursor.execute("SET LOCAL enable_seqscan = off")
            if whole_year:
                cursor.execute("SET LOCAL enable_bitmapscan = off")
        cursor.execute(
            f"DELETE FROM {TABLE} WHERE feature_set_id = %s AND academic_year = %s "  # noqa: S608
            f"AND week_start >= %s{clause}",
            [feature_set_id, academic_year, week_from, *params],
        )
        return cursor.rowcount


def rows_insert(*, feature_set_id: int, academic_year: int, rows: Rows) -> int:
    keep = rows.keep_state
    if keep is not None and not keep.all() and _postgres():
        # Two COPYs: one width of state per call.
        return sum(
            rows_insert(
                feature_set_id=feature_set_id,
                academic_year=academic_year,
                rows=Rows(
                    student_id=rows.student_id[part],
                    school_id=rows.school_id[part],
                    week_start=rows.week_start[part],
                    in_session=rows.in_session[part],
                    values=rows.values[part],
                    state=rows.state[part] if with_state else rows.state[part][:, :0],
                ),
            )
            for part, with_state in ((keep, True), (~keep, False))
            if part.any()
        )
    m, f = rows.values.shape
    s = rows.state.shape[1]
    values = np.ascontiguousarray(rows.values, dtype="<f4")
    state = np.ascontiguousarray(rows.state, dtype="<i2")
    if _postgres():
        return pgcopy.copy_in(
            TABLE,
            [
                ("feature_set_id", "int8", 0),
                ("student_id", "int8", 0),
                ("school_id", "int8", 0),
                ("academic_year", "int2", 0),
                ("week_start", "date", 0),
                ("in_session", "bool", 0),
                ("observed", "int8", 0),
                ("values", "bytea", 4 * f),
                ("state", "bytea", 2 * s),
            ],
            {
                "feature_set_id": np.full(m, feature_set_id, dtype=np.int64),
                "student_id": rows.student_id,
                "school_id": rows.school_id,
                "academic_year": np.full(m, academic_year, dtype=np.int16),
                "week_start": rows.week_start,
                "in_session": rows.in_session.astype(np.uint8),
                "observed": rows.observed,
                "values": values,
                "state": state,
            },
        )
    observed = rows.observed.tolist()
    kept = keep.tolist() if keep is not None else [True] * m
    state_bytes = [bytes(v) if k else b"" for v, k in zip(state, kept, strict=True)]
    tuples = zip(
        [feature_set_id] * m,
        rows.student_id.tolist(),
        rows.school_id.tolist(),
        [academic_year] * m,
        np.datetime_as_string(rows.week_start, unit="D").tolist(),
        rows.in_session.tolist(),
        observed,
        [bytes(v) for v in values],
        state_bytes,
        strict=True,
    )
    with connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {TABLE} (feature_set_id, student_id, school_id, academic_year, "  # noqa: S608
            'week_start, in_session, observed, "values", state) '
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            list(tuples),
        )
    return m


def maintain(*, analyze: bool) -> None:
    """After a build's bulk writes (PostgreSQL): summarize the new pages for
    the BRIN on week_start (COPY leaves them unsummarized, and an
    unsummarized range matches every query, so reading one week would read
    the whole table) and, after a full build, refresh the planner's
    statistics (else they stay those of the table before the build)."""
    if not _postgres():
        return
    brin = f"{TABLE}_week_start_brin"
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [brin])
        row = cursor.fetchone()
        if row and row[0]:
            cursor.execute("SELECT brin_summarize_new_values(%s::regclass)", [brin])
        if analyze:
            cursor.execute(f"ANALYZE {TABLE}")


def last_week(*, feature_set_id: int, academic_year: int, student_ids: Ids, after: Any) -> Any:
    clause, params = _ids_clause(student_ids)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT MAX(week_start) FROM {TABLE} WHERE feature_set_id = %s "  # noqa: S608
            f"AND academic_year = %s AND week_start > %s{clause}",
            [feature_set_id, academic_year, after, *params],
        )
        row = cursor.fetchone()
    value = row[0] if row else None
    if isinstance(value, str):  # SQLite
        return dt.date.fromisoformat(value)
    return value


@dataclass
class Stored:
    """Stored rows from a week on, ordered by student and week (see `stored_from`)."""

    student_id: np.ndarray  # int64 [M]
    week_start: np.ndarray  # datetime64[D] [M]
    has_state: np.ndarray  # bool [M]: the row kept its extractor state
    state: np.ndarray  # int16 [M, S], zeros where has_state is False
    values: np.ndarray  # float32 [M, F]

    def of(self, student_ids: np.ndarray) -> Stored:
        """The rows of some students only."""
        keep = np.isin(self.student_id, student_ids)
        return Stored(
            student_id=self.student_id[keep],
            week_start=self.week_start[keep],
            has_state=self.has_state[keep],
            state=self.state[keep],
            values=self.values[keep],
        )


def stored_from(
    *,
    feature_set_id: int,
    academic_year: int,
    week_from: Any,
    student_ids: Ids | None,
    state_size: int,
    n_columns: int,
) -> Stored:
    """The students' (all if None) rows from `week_from` on, with their state.

    An update reads the week before its first one (whom to resume, from what
    state and values) and learns in the same query whether later weeks are
    stored (a correction must carry into them).
    """
    clause, params = _ids_clause(student_ids)
    width = 2 * state_size
    where = f"WHERE feature_set_id = %s AND academic_year = %s AND week_start >= %s{clause}"  # noqa: S608
    if _postgres():
        # Rows without a state get zeros: every packed row has the same width.
        sql = (
            f"SELECT student_id, week_start, length(state) > 0 AS has_state, "  # noqa: S608
            f'substring(state || %s from 1 for {width}) AS state, "values" FROM {TABLE} {where}'
        )
        out = pgcopy.fetch_packed(
            sql,
            [bytes(width), feature_set_id, academic_year, week_from, *params],
            [
                ("student_id", "int8", 0),
                ("week_start", "date", 0),
                ("has_state", "bool", 0),
                ("state", "bytea", width),
                ("values", "bytea", 4 * n_columns),
            ],
        )
        student_id = out["student_id"].astype(np.int64)
        week_start = out["week_start"]
        has_state = out["has_state"].astype(bool)
        state_bytes = out["state"].tobytes()
        value_bytes = out["values"].tobytes()
    else:
        sql = f'SELECT student_id, week_start, state, "values" FROM {TABLE} {where}'  # noqa: S608
        with connection.cursor() as cursor:
            cursor.execute(sql, [feature_set_id, academic_year, week_from, *params])
            fetched = cursor.fetchall()
        student_id = np.array([r[0] for r in fetched], dtype=np.int64)
        week_start = np.array([str(r[1]) for r in fetched], dtype="datetime64[D]")
        has_state = np.array([len(bytes(r[2])) > 0 for r in fetched], dtype=bool)
        state_bytes = b"".join(bytes(r[2]).ljust(width, b"\0") for r in fetched)
        value_bytes = b"".join(bytes(r[3]) for r in fetched)
    m = len(student_id)
    order = np.lexsort((week_start, student_id))
    return Stored(
        student_id=student_id[order],
        week_start=week_start[order],
        has_state=has_state[order],
        state=np.frombuffer(state_bytes, dtype="<i2").reshape(m, state_size)[order],
        values=np.frombuffer(value_bytes, dtype="<f4").reshape(m, n_columns)[order],
    )


@dataclass
class ReadRows:
    student_id: np.ndarray
    week_start: np.ndarray
    in_session: np.ndarray
    values: np.ndarray  # float32 [M, F]
    school_id: np.ndarray | None = None


READ_STUDENTS = 20_000  # per packed query: keeps one bytea far below PostgreSQL's 1 GB


def rows_read(
    *,
    feature_set_id: int,
    academic_year: int,
    n_columns: int,
    student_ids: Sequence[int] | None = None,
    week_from: Any = None,
    week_to: Any = None,
    with_school: bool = False,
) -> ReadRows:
    """The stored rows of the students (all if None) between the weeks, unordered."""
    if student_ids is None or len(student_ids) <= READ_STUDENTS:
        return _rows_read(
            feature_set_id=feature_set_id,
            academic_year=academic_year,
            n_columns=n_columns,
            student_ids=student_ids,
            week_from=week_from,
            week_to=week_to,
            with_school=with_school,
        )
    ids = list(student_ids)
    parts = [
        _rows_read(
            feature_set_id=feature_set_id,
            academic_year=academic_year,
            n_columns=n_columns,
            student_ids=ids[first : first + READ_STUDENTS],
            week_from=week_from,
            week_to=week_to,
            with_school=with_school,
        )
        for first in range(0, len(ids), READ_STUDENTS)
    ]
    return ReadRows(
        student_id=np.concatenate([p.student_id for p in parts]),
        week_start=np.concatenate([p.week_start for p in parts]),
        in_session=np.concatenate([p.in_session for p in parts]),
        values=np.concatenate([p.values for p in parts]),
        school_id=np.concatenate([p.school_id for p in parts if p.school_id is not None])
        if with_school
        else None,
    )


def _rows_read(
    *,
    feature_set_id: int,
    academic_year: int,
    n_columns: int,
    student_ids: Sequence[int] | None = None,
    week_from: Any = None,
    week_to: Any = None,
    with_school: bool = False,
) -> ReadRows:
    clause, params = _ids_clause(student_ids)
    conditions = ""
    extra: list[Any] = []
    if week_from is not None:
        conditions += " AND week_start >= %s"
        extra.append(week_from)
    if week_to is not None:
        conditions += " AND week_start <= %s"
        extra.append(week_to)
    sql = (
        f'SELECT student_id, week_start, in_session, "values", school_id FROM {TABLE} '  # noqa: S608
        f"WHERE feature_set_id = %s AND academic_year = %s{conditions}{clause}"
    )
    all_params = [feature_set_id, academic_year, *extra, *params]
    if _postgres():
        columns = [
            ("student_id", "int8", 0),
            ("week_start", "date", 0),
            ("in_session", "bool", 0),
            ("values", "bytea", 4 * n_columns),
        ]
        if with_school:
            columns.append(("school_id", "int8", 0))
        out = pgcopy.fetch_packed(sql, all_params, columns)
        values = np.frombuffer(out["values"].tobytes(), dtype="<f4").reshape(len(out), n_columns)
        return ReadRows(
            student_id=out["student_id"].astype(np.int64),
            week_start=out["week_start"],
            in_session=out["in_session"].astype(bool),
            values=values,
            school_id=out["school_id"].astype(np.int64) if with_school else None,
        )
    with connection.cursor() as cursor:
        cursor.execute(sql, all_params)
        fetched = cursor.fetchall()
    values = np.frombuffer(b"".join(bytes(r[3]) for r in fetched), dtype="<f4")
    return ReadRows(
        student_id=np.array([r[0] for r in fetched], dtype=np.int64),
        week_start=np.array([str(r[1]) for r in fetched], dtype="datetime64[D]"),
        in_session=np.array([bool(r[2]) for r in fetched], dtype=bool),
        values=values.reshape(len(fetched), n_columns),
        school_id=np.array([r[4] for r in fetched], dtype=np.int64),
    )
