"""Reads of the weekly feature store, as arrays for the model.

The contract with training and scoring (docs/features.md): every
WeeklyHistory holds one academic year; `values` is float32 [N, W, F] with NaN
where nothing was observed, `in_session` says which weeks the student was
enrolled in a week that had school days.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from django.db.models import Q

from apps.features import cache as feature_cache
from apps.features import store
from apps.features.calendar import week_start_of, year_calendar
from apps.features.exceptions import FeatureVersionMismatch
from apps.features.models import FeatureSet, WeeklyFeature
from apps.students.models import Enrollment, Region, School
from apps.students.services import academic_year_of

__all__ = [
    "FeatureVersionMismatch",
    "WeeklyHistory",
    "feature_set_current",
    "feature_set_check",
    "history_chunks",
    "student_window",
    "students_as_of",
]


@dataclass(frozen=True)
class WeeklyHistory:
    feature_version: str
    columns: list[str]
    academic_year: int
    week_starts: np.ndarray  # datetime64[D] [W]
    student_ids: np.ndarray  # int64 [N]
    values: np.ndarray  # float32 [N, W, F], NaN where not observed
    in_session: np.ndarray  # bool [N, W]

    @property
    def observed(self) -> np.ndarray:
        return ~np.isnan(self.values)


def feature_set_current() -> FeatureSet:
    """The FeatureSet of the running code, created on first use."""
    from apps.features.services import feature_set_ensure

    return feature_set_ensure()


def feature_set_check(version: str) -> FeatureSet:
    """The current feature set, or FeatureVersionMismatch when `version` is another."""
    current = feature_set_current()
    if version != current.version:
        raise FeatureVersionMismatch(expected=version, current=current.version)
    return current


def _dense(
    feature_set: FeatureSet,
    rows: store.ReadRows,
    student_ids: np.ndarray,
    week_starts: np.ndarray,
    academic_year: int,
) -> WeeklyHistory:
    n, w, f = len(student_ids), len(week_starts), len(feature_set.columns)
    values = np.full((n, w, f), np.nan, dtype=np.float32)
    in_session = np.zeros((n, w), dtype=bool)
    if len(rows.student_id):
        r = np.searchsorted(student_ids, rows.student_id)
        k = ((rows.week_start - week_starts[0]).astype(np.int64)) // 7
        keep = (k >= 0) & (k < w) & (r < n)
        keep[keep] &= student_ids[r[keep]] == rows.student_id[keep]
        values[r[keep], k[keep]] = rows.values[keep]
        in_session[r[keep], k[keep]] = rows.in_session[keep]
    return WeeklyHistory(
        feature_version=feature_set.version,
        columns=list(feature_set.columns),
        academic_year=academic_year,
        week_starts=week_starts,
        student_ids=student_ids,
        values=values,
        in_session=in_session,
    )


def _students(
    feature_set: FeatureSet,
    academic_year: int,
    *,
    school_ids: Sequence[int] | None,
    student_ids: Sequence[int] | None,
) -> np.ndarray:
    """Students with rows that year; with `school_ids`, those enrolled there that year."""
    if school_ids is not None:
        enrollments = Enrollment.objects.filter(
            academic_year=academic_year, school_id__in=list(school_ids)
        )
        if student_ids is not None:
            enrollments = enrollments.filter(student_id__in=list(student_ids))
        ids = enrollments.order_by().values_list("student_id", flat=True).distinct()
        return np.unique(np.fromiter(ids, dtype=np.int64))
    if student_ids is not None:
        return np.unique(np.asarray(list(student_ids), dtype=np.int64))
    rows = WeeklyFeature.objects.filter(feature_set=feature_set, academic_year=academic_year)
    stored = rows.order_by().values_list("student_id", flat=True).distinct()
    return np.unique(np.fromiter(stored, dtype=np.int64))


def history_chunks(
    feature_set: FeatureSet,
    *,
    academic_year: int,
    school_ids: Sequence[int] | None = None,
    student_ids: Sequence[int] | None = None,
    until: dt.date | None = None,
    chunk_students: int = 5000,
) -> Iterator[WeeklyHistory]:
    """A year's history in chunks of students, for training.

    Every chunk has all the year's calendar weeks; weeks after `until` are
    NaN and not in session. `school_ids` picks students with any week at
    those schools (their weeks elsewhere come with them).
    """
    calendar = year_calendar(academic_year)
    ids = _students(feature_set, academic_year, school_ids=school_ids, student_ids=student_ids)
    week_to = week_start_of(until) if until is not None else None
    for first in range(0, len(ids), chunk_students):
        chunk = ids[first : first + chunk_students]
        rows = store.rows_read(
            feature_set_id=feature_set.pk,
            academic_year=academic_year,
            n_columns=len(feature_set.columns),
            student_ids=chunk.tolist(),
            week_to=week_to,
        )
        yield _dense(feature_set, rows, chunk, calendar.week_starts, academic_year)


def student_window(
    feature_set: FeatureSet, *, student_id: int, as_of: dt.date, weeks: int
) -> WeeklyHistory:
    """One student's last `weeks` weeks up to the week holding `as_of` (cached).

    The window stays inside as_of's academic year: weeks before the year's
    first week are padding (NaN, not in session), as in training.
    """
    key = feature_cache.window_key(
        version=feature_set.version, student_id=student_id, as_of=as_of, weeks=weeks
    )
    cached = feature_cache.window_get(key)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    academic_year = academic_year_of(as_of)
    last = np.datetime64(week_start_of(as_of), "D")
    week_starts = last - 7 * np.arange(weeks - 1, -1, -1).astype("timedelta64[D]")
    rows = store.rows_read(
        feature_set_id=feature_set.pk,
        academic_year=academic_year,
        n_columns=len(feature_set.columns),
        student_ids=[student_id],
        week_from=week_starts[0].astype(object),
        week_to=last.astype(object),
    )
    history = _dense(
        feature_set, rows, np.array([student_id], dtype=np.int64), week_starts, academic_year
    )
    feature_cache.window_set(key, history)
    return history


def students_as_of(
    feature_set: FeatureSet,
    *,
    week_start: dt.date,
    school_ids: Sequence[int] | None = None,
    region_id: int | None = None,
) -> WeeklyHistory:
    """Every student with a row that week (at the schools or under the region),
    with their history from the academic year's first week up to that week."""
    week_start = week_start_of(week_start)
    academic_year = academic_year_of(week_start + dt.timedelta(days=6))
    calendar = year_calendar(academic_year)
    if region_id is not None:
        path = Region.objects.values_list("path", flat=True).get(pk=region_id)
        under = School.objects.filter(Q(region__path__startswith=path)).values_list("pk", flat=True)
        school_ids = list(under) if school_ids is None else sorted(set(school_ids) & set(under))
    candidates = _students(feature_set, academic_year, school_ids=school_ids, student_ids=None)
    index = calendar.week_index(week_start)
    week_starts = calendar.week_starts[: index + 1]
    rows = store.rows_read(
        feature_set_id=feature_set.pk,
        academic_year=academic_year,
        n_columns=len(feature_set.columns),
        student_ids=candidates.tolist(),
        week_to=week_start,
        with_school=True,
    )
    assert rows.school_id is not None
    # Those whose row for that very week is at one of the schools.
    this_week = rows.week_start == np.datetime64(week_start, "D")
    if school_ids is not None:
        this_week &= np.isin(rows.school_id, np.asarray(list(school_ids), dtype=np.int64))
    ids = np.unique(rows.student_id[this_week])
    keep = np.isin(rows.student_id, ids)
    kept = store.ReadRows(
        student_id=rows.student_id[keep],
        week_start=rows.week_start[keep],
        in_session=rows.in_session[keep],
        values=rows.values[keep],
        school_id=rows.school_id[keep],
    )
    return _dense(feature_set, kept, ids, week_starts, academic_year)
