"""Full and incremental builds of the weekly store."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from django.db import transaction
from django.utils import timezone

from apps.features import cache as feature_cache
from apps.features import raw, store, validation
from apps.features.calendar import YearCalendar, year_calendar
from apps.features.definition import Definition, current_definition
from apps.features.extractors.base import Scope, rows_of_students
from apps.features.models import FeatureSet
from apps.features.services.chunks import Resume, Writer, build_chunks, chunk_size
from apps.features.services.feature_sets import feature_set_ensure
from apps.students.models import Enrollment
from apps.students.services import academic_year_of

logger = logging.getLogger(__name__)


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


# A build for at least this share of the year's enrollments reads whole
# tables and keeps its students' rows, rather than send its list of ids
# with every query: the server parses, plans with and hashes a list of
# 100,000 ids in about 0.3 s a query.
LIST_IDS_BELOW = 0.5


def _students(
    calendar: YearCalendar,
    student_ids: Sequence[int] | None,
    school_ids: Sequence[int] | None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """The build's students (sorted), and the ids its reads name (None: every student)."""
    year = calendar.academic_year
    if student_ids is None and school_ids is None:
        return np.zeros(0, dtype=np.int64), None  # everyone: found in the enrollments
    if student_ids is None:
        at_schools = Enrollment.objects.filter(
            academic_year=year, school_id__in=list(school_ids or [])
        )
        ids = np.unique(np.fromiter(at_schools.values_list("student_id", flat=True), np.int64))
    else:
        ids = np.unique(np.asarray(list(student_ids), dtype=np.int64))
    enrolled = Enrollment.objects.filter(academic_year=year).count()
    return ids, (ids if len(ids) < LIST_IDS_BELOW * enrolled else None)


def _horizon(*, until: dt.date | None, later: dt.date | None, today: dt.date) -> dt.date:
    """The last day an update builds: `until`, or the latest stored week it
    must carry a change into; never past today."""
    ends = [d for d in (until, later + dt.timedelta(days=6) if later else None) if d]
    return min(today, max(ends)) if ends else today


def _stored_after(
    feature_set: FeatureSet,
    calendar: YearCalendar,
    ids: np.ndarray,
    stored: store.Stored | None,
    after: dt.date,
) -> dt.date | None:
    """The students' latest stored week after `after` (rows a change must carry into)."""
    if stored is not None:
        later = stored.week_start[stored.week_start > np.datetime64(after, "D")]
        return later.max().astype(object) if len(later) else None
    latest: dt.date | None = store.last_week(
        feature_set_id=feature_set.pk,
        academic_year=calendar.academic_year,
        student_ids=ids,
        after=after,
    )
    return latest


def _stored(
    feature_set: FeatureSet,
    definition: Definition,
    calendar: YearCalendar,
    first_week: int,
    student_ids: np.ndarray | None,
) -> store.Stored:
    return store.stored_from(
        feature_set_id=feature_set.pk,
        academic_year=calendar.academic_year,
        week_from=calendar.week_start(first_week - 1),
        student_ids=student_ids,
        state_size=definition.state_size,
        n_columns=len(definition.columns),
    )


def _read_sources(definition: Definition, scope: Scope, skip: set[str]) -> dict[str, pd.DataFrame]:
    """Every extractor's raw records for the scope, but the sources in `skip`."""
    read: dict[str, pd.DataFrame] = {}
    for extractor in definition.extractors:
        if not set(extractor.sources) <= skip:
            read.update(extractor.read(scope))
    return read


def features_build(
    *,
    academic_year: int,
    student_ids: Sequence[int] | None = None,
    school_ids: Sequence[int] | None = None,
    since: dt.date | None = None,
    until: dt.date | None = None,
    feature_set: FeatureSet | None = None,
    chunk_students: int | None = None,
    carry_forward: bool = False,
) -> BuildSummary:
    """(Re)compute one academic year's weeks from `since` (default: the whole year).

    Students default to everyone enrolled that year (at `school_ids` if
    given). Weeks before `since` are kept; a student whose row for the week
    before `since` holds a state resumes from it, any other student is
    recomputed from the first week. Idempotent: a week's rows are replaced,
    never added to. `carry_forward` (an update): the weeks already stored
    after `until` are recomputed too, since running features carry a change.
    """
    definition = current_definition()
    feature_set = feature_set or feature_set_ensure(definition=definition)
    calendar = year_calendar(academic_year)
    today = timezone.localdate()
    summary = BuildSummary(years=[academic_year])
    first_week = 0 if since is None or since <= calendar.start else calendar.week_index(since)
    if not carry_forward and min(calendar.end, until or today) < calendar.start:
        return summary
    full_scope = student_ids is None and school_ids is None
    writer = Writer()
    try:
        ids, listed = _students(calendar, student_ids, school_ids)
        # An update reads the stored week before its first one once: whom to
        # resume from what, and which later weeks are stored. It is read on
        # a writer's connection (idle until the first chunk is computed)
        # while this one reads the enrollments.
        stored = None
        if first_week > 0:
            stored = writer.run(_stored, feature_set, definition, calendar, first_week, listed)
        enrollments = raw.enrollments(
            origin=calendar.origin_date, academic_year=academic_year, student_ids=listed
        )
        if full_scope:
            ids = np.unique(enrollments["student_id"].to_numpy())
        elif listed is None:
            enrollments = rows_of_students(enrollments, ids)
        stored_rows = stored.result() if stored is not None else None
        if stored_rows is not None and listed is None and not full_scope:
            stored_rows = stored_rows.of(ids)
        if not len(ids):
            return summary
        if carry_forward:
            later = _stored_after(feature_set, calendar, ids, stored_rows, until or since or today)
            until = _horizon(until=until, later=later, today=today)
        end = min(calendar.end, until or today)
        if end < calendar.start:
            return summary
        last_week = calendar.week_index(end)
        if first_week > last_week:
            return summary
        summary.student_ids = set(ids.tolist())

        # Every source in one read for all the students, cut per chunk later:
        # attendance in particular is laid out by date (imports arrive week by
        # week), so reading it per chunk of students would read every page
        # once per chunk. The attendance read also covers every record at the
        # students' schools from the week before the first (the data checks'
        # school-week totals), saving the checks a pass over the table. The
        # other sources are read meanwhile on a writer's connection.
        scope = Scope(
            calendar=calendar,
            student_ids=listed,
            first_week=first_week,
            last_week=last_week,
            resuming=first_week > 0,
        )
        check_schools = None if full_scope else np.unique(enrollments["school_id"].to_numpy())
        first_day, last_day = validation.checked_weeks(calendar, first_week, last_week)
        others = writer.run(_read_sources, definition, scope, {"attendance"})
        bits = raw.attendance_week_bits(
            origin=calendar.origin_date,
            first=first_day,
            last=last_day,
            students=ids,
            name_students=listed is not None,
            school_ids=check_schools,
            students_from=calendar.week_start(first_week),
        )
        flags, void = validation.school_week_checks(
            calendar, first_week=first_week, last_week=last_week, totals=bits.school_weeks
        )
        build_chunks(
            writer=writer,
            feature_set=feature_set,
            definition=definition,
            calendar=calendar,
            ids=ids,
            enrollments=enrollments,
            first_week=first_week,
            last_week=last_week,
            chunk_students=chunk_students or chunk_size(calendar, first_week, last_week),
            void=void,
            preloaded={"attendance": bits.students, **others.result()},
            resume=(
                Resume.of(stored_rows, calendar.week_start(first_week - 1))
                if stored_rows is not None
                else None
            ),
            flags=flags,
        )
    finally:
        summary.rows = writer.close()
    store.maintain(analyze=full_scope)
    summary.flags = validation.flags_write(
        source=f"features:{feature_set.version}",
        calendar=calendar,
        flags=flags,
        first_week=first_week,
        last_week=last_week,
        school_ids=None if check_schools is None else check_schools.tolist(),
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
        # A `since` before the year's start rebuilds the whole year.
        summary.add(
            features_build(
                academic_year=year,
                student_ids=ids,
                since=since,
                until=until,
                feature_set=feature_set,
                carry_forward=True,
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
