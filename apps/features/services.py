"""Writes of the feature store: the feature set, full and incremental builds."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from django.db import connection, transaction
from django.utils import timezone

from apps.features import cache as feature_cache
from apps.features import raw, store, validation
from apps.features.calendar import YearCalendar, year_calendar
from apps.features.definition import Definition, current_definition
from apps.features.exceptions import FeatureSetConflict
from apps.features.extractors.enrollment import build_grid
from apps.features.models import FeatureSet
from apps.students.models import Enrollment
from apps.students.services import academic_year_of

logger = logging.getLogger(__name__)

CHUNK_STUDENTS = 10_000
# The attendance state is kept in the rows of the last weeks a build writes
# only: an update resumes from there (a weekly import, a re-import of the
# last weeks); a correction further back recomputes the students' year.
STATE_WEEKS = 4


def feature_set_ensure(*, definition: Definition | None = None) -> FeatureSet:
    """The FeatureSet row of a definition (the running code's by default), created once."""
    definition = definition or current_definition()
    feature_set, _created = FeatureSet.objects.get_or_create(
        version=definition.version,
        defaults={
            "code_version": definition.code_version,
            "params": definition.params,
            "columns": definition.columns,
            "fingerprint": definition.fingerprint,
        },
    )
    if feature_set.fingerprint != definition.fingerprint:
        raise FeatureSetConflict(
            f"Feature set {definition.version!r} is stored with another definition "
            f"(columns, parameters or extractor code changed); bump FEATURE_VERSION."
        )
    return feature_set


@dataclass
class BuildSummary:
    rows: int = 0
    flags: int = 0
    years: list[int] = field(default_factory=list)
    student_ids: set[int] = field(default_factory=set)

    @property
    def students(self) -> int:
        return len(self.student_ids)

    def add(self, other: BuildSummary) -> None:
        self.student_ids |= other.student_ids
        self.rows += other.rows
        self.flags += other.flags
        self.years += other.years


def _students_of_year(academic_year: int, school_ids: Sequence[int] | None) -> np.ndarray:
    enrollments = Enrollment.objects.filter(academic_year=academic_year)
    if school_ids is not None:
        enrollments = enrollments.filter(school_id__in=list(school_ids))
    ids = enrollments.values_list("student_id", flat=True).distinct()
    return np.unique(np.fromiter(ids, dtype=np.int64))


def _compute(
    *,
    feature_set: FeatureSet,
    definition: Definition,
    calendar: YearCalendar,
    student_ids: np.ndarray,
    first_week: int,
    last_week: int,
    state: np.ndarray | None,
    previous: np.ndarray | None,
    void: set[tuple[int, int]],
    preloaded: dict[str, pd.DataFrame],
) -> tuple[store.Rows, list[validation.Flag]]:
    grid = build_grid(calendar, student_ids, first_week=first_week, last_week=last_week)
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
    # One row per enrolled student-week of the window, in (student, week)
    # order; a boolean mask gathers each [N, window] column in one pass.
    window = grid.window
    enrolled = grid.enrolled[:, window]
    rows, weeks = np.nonzero(enrolled)
    row_values = np.empty((len(rows), len(values)), dtype=np.float32)
    for i, column in enumerate(values):
        row_values[:, i] = column[enrolled]
    weeks += first_week
    keep_state = weeks >= grid.state_from
    row_state = np.zeros((len(rows), definition.state_size), dtype=np.int16)
    if states:
        kept = enrolled[:, grid.state_from - first_week :]
        row_state[keep_state] = np.concatenate([s[kept] for s in states], axis=1)
    schools = grid.school[:, window][enrolled]
    flags = validation.out_of_range(
        row_values, definition.columns, definition.ranges, schools=schools, weeks=weeks
    )
    batch = store.Rows(
        student_id=grid.student_ids[rows],
        school_id=schools,
        week_start=calendar.week_starts[weeks],
        in_session=grid.in_session[:, window][enrolled],
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
    batch: store.Rows,
) -> int:
    """Replace the students' rows from `week_from` on with `batch`, atomically."""
    with transaction.atomic():
        store.rows_delete(
            feature_set_id=feature_set_id,
            academic_year=academic_year,
            student_ids=student_ids.tolist(),
            week_from=week_from,
        )
        return store.rows_insert(
            feature_set_id=feature_set_id, academic_year=academic_year, rows=batch
        )


def _close_connection() -> None:
    connection.close()  # resolved in the calling thread: that thread's connection


class _Writer:
    """Writes batches on a second connection while the next chunk is computed.

    The database ingests one chunk while numpy works on the next: on two
    cores that overlap is most of the gain. Only outside a transaction (the
    second connection could not see the caller's uncommitted rows) and on
    PostgreSQL; elsewhere batches are written inline.
    """

    def __init__(self) -> None:
        threaded = connection.vendor == "postgresql" and not connection.in_atomic_block
        self.pool = ThreadPoolExecutor(max_workers=1) if threaded else None
        self.pending: Future[int] | None = None
        self.written = 0

    def submit(self, **kwargs: Any) -> None:
        if self.pool is None:
            self.written += _write(**kwargs)
            return
        self.wait()
        self.pending = self.pool.submit(_write, **kwargs)

    def wait(self) -> None:
        if self.pending is not None:
            self.written += self.pending.result()
            self.pending = None

    def close(self) -> int:
        try:
            self.wait()
        finally:
            if self.pool is not None:
                # The thread's own connection, not the caller's.
                self.pool.submit(_close_connection).result()
                self.pool.shutdown()
        return self.written


def _build_chunks(
    *,
    writer: _Writer,
    feature_set: FeatureSet,
    definition: Definition,
    calendar: YearCalendar,
    ids: np.ndarray,
    first_week: int,
    last_week: int,
    chunk_students: int,
    void: set[tuple[int, int]],
    preloaded: dict[str, pd.DataFrame],
    flags: list[validation.Flag],
) -> None:
    state_size = definition.state_size
    for first in range(0, len(ids), chunk_students):
        chunk = ids[first : first + chunk_students]
        groups: list[tuple[np.ndarray, int, np.ndarray | None, np.ndarray | None]] = []
        if first_week > 0:
            have, states, previous = store.states_read(
                feature_set_id=feature_set.pk,
                academic_year=calendar.academic_year,
                week_start=calendar.week_start(first_week - 1),
                student_ids=chunk.tolist(),
                state_size=state_size,
                n_columns=len(definition.columns),
            )
            if len(have):
                groups.append((have, first_week, states, previous))
            rest = np.setdiff1d(chunk, have)
        else:
            rest = chunk
        if len(rest):
            groups.append((rest, 0, None, None))
        for group_ids, group_first, group_state, group_previous in groups:
            batch, chunk_flags = _compute(
                feature_set=feature_set,
                definition=definition,
                calendar=calendar,
                student_ids=group_ids,
                first_week=group_first,
                last_week=last_week,
                state=group_state,
                previous=group_previous,
                void=void,
                # Students without stored state start from week 0: their own read.
                preloaded=preloaded if group_first == first_week else {},
            )
            writer.submit(
                feature_set_id=feature_set.pk,
                academic_year=calendar.academic_year,
                student_ids=group_ids,
                week_from=calendar.week_start(group_first),
                batch=batch,
            )
            flags.extend(chunk_flags)


def features_build(
    *,
    academic_year: int,
    student_ids: Sequence[int] | None = None,
    school_ids: Sequence[int] | None = None,
    since: dt.date | None = None,
    until: dt.date | None = None,
    feature_set: FeatureSet | None = None,
    chunk_students: int = CHUNK_STUDENTS,
) -> BuildSummary:
    """(Re)compute one academic year's weeks from `since` (default: the whole year).

    Students default to everyone enrolled that year (at `school_ids` if
    given). Weeks before `since` are kept; a student whose row for the week
    before `since` exists resumes from its stored state, any other student
    is recomputed from the first week. Idempotent: a week's rows are
    replaced, never added to.
    """
    definition = current_definition()
    feature_set = feature_set or feature_set_ensure(definition=definition)
    calendar = year_calendar(academic_year)
    today = timezone.localdate()
    end = min(calendar.end, until or today)
    summary = BuildSummary(years=[academic_year])
    if end < calendar.start:
        return summary
    last_week = calendar.week_index(end)
    first_week = 0 if since is None or since <= calendar.start else calendar.week_index(since)
    if first_week > last_week:
        return summary
    if student_ids is None:
        ids = _students_of_year(academic_year, school_ids)
    else:
        ids = np.unique(np.asarray(list(student_ids), dtype=np.int64))
    summary.student_ids = set(ids.tolist())
    if not len(ids):
        return summary
    full_scope = student_ids is None and school_ids is None
    check_schools = (
        None if full_scope else raw.schools_of(academic_year=academic_year, student_ids=ids)
    )
    # The attendance of every student in scope in one pass: the table is laid
    # out by date (imports arrive week by week), so reading it per chunk of
    # students would read every page once per chunk. Reading every record
    # (full scope) from the week the checks look back to gives the checks'
    # school-week totals too, saving them a second pass.
    first_day, last_day = validation.checked_weeks(calendar, first_week, last_week)
    if not full_scope:
        first_day = max(calendar.start, calendar.week_start(first_week))
    bits = raw.attendance_week_bits(
        origin=calendar.origin_date,
        first=first_day,
        last=last_day,
        student_ids=None if full_scope else ids,
    )
    flags, void = validation.school_week_checks(
        calendar,
        school_ids=check_schools,
        first_week=first_week,
        last_week=last_week,
        totals=bits.school_weeks if full_scope else None,
    )
    preloaded = {"attendance": bits.students}
    writer = _Writer()
    try:
        _build_chunks(
            writer=writer,
            feature_set=feature_set,
            definition=definition,
            calendar=calendar,
            ids=ids,
            first_week=first_week,
            last_week=last_week,
            chunk_students=chunk_students,
            void=void,
            preloaded=preloaded,
            flags=flags,
        )
    finally:
        summary.rows = writer.close()
    summary.flags = validation.flags_write(
        source=f"features:{feature_set.version}",
        calendar=calendar,
        flags=flags,
        first_week=first_week,
        last_week=last_week,
        school_ids=check_schools,
        replace_out_of_range=full_scope,
    )
    if full_scope:
        transaction.on_commit(lambda: feature_cache.feature_set_invalidate(feature_set.version))
    else:
        changed = ids.tolist()
        transaction.on_commit(lambda: feature_cache.students_invalidate(changed))
    logger.info(
        "features built: year=%s students=%s rows=%s flags=%s",
        academic_year,
        summary.students,
        summary.rows,
        summary.flags,
    )
    return summary


def _years_between(first: dt.date, last: dt.date) -> range:
    return range(academic_year_of(first), academic_year_of(last) + 1)


def _last_stored_week(
    feature_set: FeatureSet, academic_year: int, student_ids: Sequence[int], after: dt.date
) -> dt.date | None:
    """The students' latest stored week after `after`, if any (rows to carry a change into)."""
    return store.last_week(
        feature_set_id=feature_set.pk,
        academic_year=academic_year,
        student_ids=student_ids,
        after=after,
    )


def features_refresh(
    *, student_ids: Sequence[int], since: dt.date | None = None, until: dt.date | None = None
) -> BuildSummary:
    """Recompute the students' weeks from `since` on, in every academic year touched.

    Later weeks already in the store are recomputed too (running and rolling
    features carry the change forward); the store grows up to `until` (the
    import's last day), never past today. `since` None (unknown) rebuilds
    the students' years.
    """
    summary = BuildSummary()
    ids = sorted({int(i) for i in student_ids})
    if not ids:
        return summary
    feature_set = feature_set_ensure()
    today = timezone.localdate()
    if since is None:
        years = sorted(
            set(
                Enrollment.objects.filter(student_id__in=ids)
                .values_list("academic_year", flat=True)
                .distinct()
            )
        )
    else:
        years = list(_years_between(since, min(today, max(since, until or since))))
    for year in years:
        year_since = since if since is not None and academic_year_of(since) == year else None
        stored = _last_stored_week(feature_set, year, ids, until or since or today)
        horizon = [d for d in (until, stored + dt.timedelta(days=6) if stored else None) if d]
        year_until = min(today, max(horizon)) if horizon else today
        summary.add(
            features_build(
                academic_year=year,
                student_ids=ids,
                since=year_since,
                until=year_until,
                feature_set=feature_set,
            )
        )
    return summary


def features_build_all(
    *, since: dt.date | None = None, school_ids: Sequence[int] | None = None
) -> BuildSummary:
    """Backfill: every academic year with enrollments (from `since`'s year on)."""
    years = sorted(set(Enrollment.objects.values_list("academic_year", flat=True).distinct()))
    if since is not None:
        years = [y for y in years if y >= academic_year_of(since)]
    summary = BuildSummary()
    for year in years:
        year_since = since if since is not None and academic_year_of(since) == year else None
        summary.add(features_build(academic_year=year, school_ids=school_ids, since=year_since))
    return summary
