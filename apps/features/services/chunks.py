"""The build's inner loop: a chunk of students at a time, computed and written.

A build reads every source once for all its students (`Extractor.read`);
each chunk cuts its students' rows out, computes its weeks with numpy and is
written (delete + binary COPY) by a second connection while the next chunk
is computed.
"""

from __future__ import annotations

import datetime as dt
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import pandas as pd
from django.db import connection, transaction

from apps.features import store, validation
from apps.features.calendar import YearCalendar
from apps.features.definition import Definition
from apps.features.extractors.base import rows_of_students
from apps.features.extractors.enrollment import build_grid
from apps.features.models import FeatureSet

T = TypeVar("T")

CHUNK_STUDENTS = 10_000
# An update writes a few weeks per student: its chunks can hold more students
# (the year-long grid of each still costs memory, hence the cap).
MAX_CHUNK_STUDENTS = 25_000
# The attendance state is kept in the rows of the last weeks a build writes
# only: an update resumes from there (a weekly import, a re-import of the
# last weeks); a correction further back recomputes the students' year.
STATE_WEEKS = 4
# Connections writing chunks at once (see Writer).
WRITERS = 2


def chunk_size(calendar: YearCalendar, first_week: int, last_week: int) -> int:
    """Students per chunk: about CHUNK_STUDENTS years' worth of weeks to write."""
    weeks = last_week - first_week + 1
    return min(MAX_CHUNK_STUDENTS, CHUNK_STUDENTS * max(1, calendar.weeks // weeks))


@dataclass
class Resume:
    """The students an update resumes from their stored week before its first one."""

    student_ids: np.ndarray  # int64 [n], sorted
    states: np.ndarray  # int16 [n, S]: the extractors' state after that week
    previous: np.ndarray  # float64 [n, F]: that week's values

    @classmethod
    def of(cls, stored: store.Stored, week_start: dt.date) -> Resume:
        at = (stored.week_start == np.datetime64(week_start, "D")) & stored.has_state
        return cls(
            student_ids=stored.student_id[at],
            states=stored.state[at],
            previous=stored.values[at].astype(np.float64),
        )


def compute(
    *,
    definition: Definition,
    calendar: YearCalendar,
    student_ids: np.ndarray,
    enrollments: pd.DataFrame,
    first_week: int,
    last_week: int,
    state: np.ndarray | None,
    previous: np.ndarray | None,
    void: set[tuple[int, int]],
    preloaded: dict[str, pd.DataFrame],
) -> tuple[store.Rows, list[validation.Flag]]:
    grid = build_grid(
        calendar, student_ids, first_week=first_week, last_week=last_week, enrollments=enrollments
    )
    grid.preloaded = preloaded
    grid.state_from = max(first_week, last_week - STATE_WEEKS + 1)
    if previous is not None:
        grid.previous = {c: previous[:, i] for i, c in enumerate(definition.columns)}
    if void:
        pairs = np.array(sorted(void), dtype=np.int64)
        keys = pairs[:, 0] * 1000 + pairs[:, 1]
        grid.attendance_void = np.isin(
            grid.school * 1000 + np.arange(calendar.weeks)[None, :], keys
        )
        grid.attendance_void &= grid.school > 0
    values: list[np.ndarray] = []
    states: list[np.ndarray] = []
    offset = 0
    for extractor in definition.extractors:
        size = extractor.state_size
        own_state = None if state is None else state[:, offset : offset + size]
        offset += size
        extracted = extractor.extract(grid, own_state)
        values.extend(extracted.values[column] for column in extractor.columns)
        if size:
            assert extracted.state is not None
            states.append(extracted.state)
    # One row per enrolled student-week of the window, written week by
    # week: the table then keeps a week's rows of a chunk on neighbouring
    # pages, as weekly imports append them, so an update reads, deletes and
    # rewrites a few hundred pages per chunk instead of one page per student
    # (and as many full-page images in the WAL). The columns are laid side
    # by side in (week, student) order, then one mask picks the rows.
    window = grid.window
    enrolled = grid.enrolled[:, window].T  # [window, N]
    weeks, rows = np.nonzero(enrolled)
    stacked = np.empty((*enrolled.shape, len(values)), dtype=np.float32)
    for i, column in enumerate(values):
        stacked[:, :, i] = column.T
    row_values = stacked[enrolled]
    weeks += first_week
    keep_state = weeks >= grid.state_from
    row_state = np.zeros((len(rows), definition.state_size), dtype=np.int16)
    if states:
        kept = enrolled[grid.state_from - first_week :]
        row_state[keep_state] = np.concatenate([s.transpose(1, 0, 2)[kept] for s in states], axis=1)
    schools = grid.school[:, window].T[enrolled]
    flags = validation.out_of_range(
        row_values, definition.columns, definition.ranges, schools=schools, weeks=weeks
    )
    batch = store.Rows(
        student_id=grid.student_ids[rows],
        school_id=schools,
        week_start=calendar.week_starts[weeks],
        in_session=grid.in_session[:, window].T[enrolled],
        values=row_values,
        state=row_state,
        keep_state=keep_state,
    )
    return batch, flags


def _write(
    *,
    feature_set_id: int,
    academic_year: int,
    student_ids: np.ndarray,
    week_from: dt.date,
    whole_year: bool,
    batch: store.Rows,
) -> int:
    """Replace the students' rows from `week_from` on with `batch`, atomically."""
    with transaction.atomic():
        store.rows_delete(
            feature_set_id=feature_set_id,
            academic_year=academic_year,
            student_ids=student_ids,
            week_from=week_from,
            whole_year=whole_year,
        )
        return store.rows_insert(
            feature_set_id=feature_set_id, academic_year=academic_year, rows=batch
        )


def _close_connection() -> None:
    connection.close()  # resolved in the calling thread: that thread's connection


class Writer:
    """Writes batches on other connections while the next chunk is computed.

    PostgreSQL ingesting the rows (heap, primary key, WAL) costs more than
    computing them, so WRITERS connections take turns: on two cores the
    database writes two chunks while numpy computes the next. Only outside
    a transaction (other connections could not see the caller's uncommitted
    rows) and on PostgreSQL; elsewhere batches are written inline.
    """

    def __init__(self) -> None:
        threaded = connection.vendor == "postgresql" and not connection.in_atomic_block
        # One thread per connection, so each closes its own at the end.
        self.pools = [ThreadPoolExecutor(max_workers=1) for _ in range(WRITERS)] if threaded else []
        self.pending: deque[Future[int]] = deque()
        self.submitted = 0
        self.written = 0

    def run(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        """`fn(*args)` on the first writer's connection (inline without one)."""
        if not self.pools:
            done: Future[T] = Future()
            done.set_result(fn(*args))
            return done
        return self.pools[0].submit(fn, *args)

    def submit(self, **kwargs: Any) -> None:
        if not self.pools:
            self.written += _write(**kwargs)
            return
        if len(self.pending) == len(self.pools):
            self.written += self.pending.popleft().result()
        pool = self.pools[self.submitted % len(self.pools)]
        self.submitted += 1
        self.pending.append(pool.submit(_write, **kwargs))

    def close(self) -> int:
        try:
            while self.pending:
                self.written += self.pending.popleft().result()
        finally:
            for future in self.pending:
                future.cancel()
            for pool in self.pools:
                # The thread's own connection, not the caller's.
                pool.submit(_close_connection).result()
                pool.shutdown()
        return self.written


def build_chunks(
    *,
    writer: Writer,
    feature_set: FeatureSet,
    definition: Definition,
    calendar: YearCalendar,
    ids: np.ndarray,
    enrollments: pd.DataFrame,
    first_week: int,
    last_week: int,
    chunk_students: int,
    void: set[tuple[int, int]],
    preloaded: dict[str, pd.DataFrame],
    resume: Resume | None,
    flags: list[validation.Flag],
) -> None:
    """Compute and write `ids` chunk by chunk; `resume` None: from the year's first week."""
    for first in range(0, len(ids), chunk_students):
        chunk = ids[first : first + chunk_students]
        groups: list[tuple[np.ndarray, int, np.ndarray | None, np.ndarray | None]] = []
        if resume is not None:
            have = chunk[np.isin(chunk, resume.student_ids)]
            at = np.searchsorted(resume.student_ids, have)
            if len(have):
                groups.append((have, first_week, resume.states[at], resume.previous[at]))
            rest = np.setdiff1d(chunk, have)
        else:
            rest = chunk
        if len(rest):
            groups.append((rest, 0, None, None))
        for group_ids, group_first, group_state, group_previous in groups:
            batch, chunk_flags = compute(
                definition=definition,
                calendar=calendar,
                student_ids=group_ids,
                enrollments=rows_of_students(enrollments, group_ids),
                first_week=group_first,
                last_week=last_week,
                state=group_state,
                previous=group_previous,
                void=void,
                # Students without stored state start from week 0: their own reads.
                preloaded=preloaded if group_first == first_week else {},
            )
            writer.submit(
                feature_set_id=feature_set.pk,
                academic_year=calendar.academic_year,
                student_ids=group_ids,
                week_from=calendar.week_start(group_first),
                whole_year=group_first == 0,
                batch=batch,
            )
            flags.extend(chunk_flags)
