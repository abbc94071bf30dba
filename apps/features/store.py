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


def _ids_clause(ids: Sequence[int] | None) -> tuple[str, list[Any]]:
    if ids is None:
        return "", []
    values = [int(i) for i in ids]
    if _postgres():
        return " AND student_id = ANY(%s::bigint[])", [values]
    return " AND student_id IN (SELECT value FROM json_each(%s))", [json.dumps(values)]


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
    *, feature_set_id: int, academic_year: int, student_ids: Sequence[int], week_from: Any
) -> int:
    clause, params = _ids_clause(student_ids)
    with connection.cursor() as cursor:
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


def last_week(
    *, feature_set_id: int, academic_year: int, student_ids: Sequence[int], after: Any
) -> Any:
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


def states_read(
    *,
    feature_set_id: int,
    academic_year: int,
    week_start: Any,
    student_ids: Sequence[int],
    state_size: int,
    n_columns: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The stored state and values of `week_start` for the students with a row there."""
    clause, params = _ids_clause(student_ids)
    sql = (
        f'SELECT student_id, state, "values" FROM {TABLE} WHERE feature_set_id = %s '  # noqa: S608
        f"AND academic_year = %s AND week_start = %s AND length(state) > 0{clause}"
    )
    all_params = [feature_set_id, academic_year, week_start, *params]
    if _postgres():
        out = pgcopy.fetch_packed(
            sql,
            all_params,
            [
                ("student_id", "int8", 0),
                ("state", "bytea", 2 * state_size),
                ("values", "bytea", 4 * n_columns),
            ],
        )
        ids = out["student_id"].astype(np.int64)
        states = np.frombuffer(out["state"].tobytes(), dtype="<i2").reshape(len(out), state_size)
        values = np.frombuffer(out["values"].tobytes(), dtype="<f4").reshape(len(out), n_columns)
    else:
        with connection.cursor() as cursor:
            cursor.execute(sql, all_params)
            fetched = cursor.fetchall()
        ids = np.array([r[0] for r in fetched], dtype=np.int64)
        states = np.frombuffer(b"".join(bytes(r[1]) for r in fetched), dtype="<i2").reshape(
            len(fetched), state_size
        )
        values = np.frombuffer(b"".join(bytes(r[2]) for r in fetched), dtype="<f4").reshape(
            len(fetched), n_columns
        )
    order = np.argsort(ids)
    return ids[order], states[order].astype(np.float64), values[order].astype(np.float64)


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
