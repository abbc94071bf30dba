"""PostgreSQL binary COPY for fixed-width rows, built and parsed with numpy.

A row of the weekly store (or of an aggregated attendance query) has the
same byte layout every time, so a whole batch is one numpy structured array:
no per-row Python work on the way in or out. Only fixed-width, non-NULL
columns are supported; callers cast in SQL to make sure of that.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import numpy as np
import psycopg
from django.db import connection

SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
HEADER = SIGNATURE + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
TRAILER = b"\xff\xff"
PG_EPOCH = np.datetime64("2000-01-01", "D")

# PostgreSQL type → (big-endian numpy type, byte width); bytea gets its width per call.
TYPES: dict[str, str] = {
    "int2": ">i2",
    "int4": ">i4",
    "int8": ">i8",
    "float4": ">f4",
    "float8": ">f8",
    "bool": "u1",
    "date": ">i4",
}


def _row_dtype(columns: Sequence[tuple[str, str, int]]) -> np.dtype:
    fields: list[tuple[str, Any]] = [("_n", ">i2")]
    for name, kind, width in columns:
        fields.append((f"_len_{name}", ">i4"))
        if kind in ("bytea", "text") and width == 0:
            continue  # an empty value is its length alone
        fields.append((name, f"V{width}" if kind in ("bytea", "text") else TYPES[kind]))
    return np.dtype(fields)


def _width(kind: str, width: int) -> int:
    return width if kind in ("bytea", "text") else np.dtype(TYPES[kind]).itemsize


def copy_in(table: str, columns: Sequence[tuple[str, str, int]], data: dict[str, Any]) -> int:
    """COPY `data` (column name → array of equal length) into `table`.

    `columns` gives (name, type, width) with type a key of TYPES, "bytea" or
    "text" (one string repeated in every row); width is only read for those. Dates are datetime64[D]; bytea are 2-D
    uint8 or float arrays whose rows are the values.
    """
    n = len(next(iter(data.values())))
    if n == 0:
        return 0
    dtype = _row_dtype(columns)
    buffer = np.zeros(n, dtype=dtype)
    buffer["_n"] = len(columns)
    for name, kind, width in columns:
        buffer[f"_len_{name}"] = _width(kind, width)
        if kind in ("bytea", "text") and width == 0:
            continue
        value = data[name]
        if kind == "date":
            buffer[name] = (np.asarray(value, dtype="datetime64[D]") - PG_EPOCH).astype(np.int64)
        elif kind == "text":
            # One fixed-width UTF-8 value for the whole batch (e.g. a status).
            buffer[name] = np.frombuffer(str(value).encode().ljust(width), dtype=f"V{width}")[0]
        elif kind == "bytea":
            raw = np.ascontiguousarray(value).view(np.uint8).reshape(n, -1)
            buffer[name] = raw.view(f"V{width}").reshape(n)
        else:
            buffer[name] = value
    quote = connection.ops.quote_name
    column_list = ", ".join(quote(name) for name, _kind, _width in columns)
    with connection.cursor() as cursor:
        raw_cursor = cursor.cursor
        statement = f"COPY {quote(table)} ({column_list}) FROM STDIN (FORMAT BINARY)"
        with raw_cursor.copy(statement) as copy:
            copy.write(HEADER)
            step = 200_000
            for first in range(0, n, step):
                copy.write(buffer[first : first + step].tobytes())
            copy.write(TRAILER)
    return n


SEND = {
    "int2": "int2send",
    "int4": "int4send",
    "int8": "int8send",
    "float4": "float4send",
    "float8": "float8send",
    "bool": "boolsend",
    "date": "date_send",
}


def fetch_packed(
    sql: str, params: Sequence[Any], columns: Sequence[tuple[str, str, int]]
) -> np.ndarray:
    """Run `sql` and return its rows as a structured array, packed server-side.

    COPY TO sends one protocol message per row, which costs more in Python
    than the query itself; instead the database concatenates every row's
    binary form into one bytea (string_agg), which arrives as a single value
    and is viewed in place with numpy. Columns must be fixed-width and never
    NULL (a NULL would silently drop its row from the aggregate).
    """
    parts = " || ".join(
        quote_column(name) if kind == "bytea" else f"{SEND[kind]}({quote_column(name)})"
        for name, kind, _width in columns
    )
    packed_sql = f"SELECT string_agg({parts}, ''::bytea) FROM ({sql}) AS q"  # noqa: S608
    with connection.cursor() as cursor:
        # A binary result: the bytea arrives as is, where Django's (client-
        # side binding) cursor receives hex text, twice the size, to decode.
        with psycopg.Cursor(cursor.cursor.connection) as binary:
            binary.execute(packed_sql, params, prepare=False, binary=True)
            row = binary.fetchone()
    payload = b"" if row is None or row[0] is None else bytes(row[0])
    wire = np.dtype(
        [(name, f"V{width}" if kind == "bytea" else TYPES[kind]) for name, kind, width in columns]
    )
    rows = np.frombuffer(payload, dtype=wire)
    out = np.empty(len(rows), dtype=[(name, _native(kind, width)) for name, kind, width in columns])
    for name, kind, _width in columns:
        if kind == "date":
            out[name] = PG_EPOCH + rows[name].astype(np.int64).astype("timedelta64[D]")
        else:
            out[name] = rows[name]
    return out


def bigint_array(values: Sequence[int] | np.ndarray) -> str:
    """A bigint[] literal to pass as one text parameter (`%s::bigint[]`).

    psycopg adapts a list element by element in Python; the server parses
    100,000 ids from one string in a few milliseconds.
    """
    return "{" + ",".join(map(str, np.asarray(values, dtype=np.int64).tolist())) + "}"


def quote_column(name: str) -> str:
    return f"q.{connection.ops.quote_name(name)}"


def _native(kind: str, width: int) -> str:
    if kind == "bytea":
        return f"V{width}"
    if kind == "date":
        return "datetime64[D]"
    if kind == "bool":
        return "?"
    return TYPES[kind].replace(">", "=")


def to_date(value: np.datetime64) -> dt.date:
    result: dt.date = value.astype("datetime64[D]").astype(object)
    return result
