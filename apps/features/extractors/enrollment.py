"""Enrollment context: which school and grade each week, and the grid itself."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from apps.features import raw
from apps.features.calendar import YearCalendar
from apps.features.extractors.base import Extracted, Extractor, Grid, Scope


def build_grid(
    calendar: YearCalendar,
    student_ids: np.ndarray,
    *,
    first_week: int,
    last_week: int,
    enrollments: pd.DataFrame | None = None,
) -> Grid:
    """The students' grid; `enrollments`: their rows of `raw.enrollments`, when already read."""
    student_ids = np.asarray(student_ids, dtype=np.int64)
    n, w = len(student_ids), calendar.weeks
    origin = calendar.origin_date
    if enrollments is None:
        enrollments = raw.enrollments(
            origin=origin, academic_year=calendar.academic_year, student_ids=student_ids
        )
    frame = enrollments
    weeks = np.arange(w)[None, :]
    # Which of the frame's enrollments covers each student-week (-1: none).
    # Enrollments are ordered by entry date within each student, so a
    # transfer's new school wins the week in which both are open.
    covering = np.full((n, w), -1, dtype=np.int64)
    student = frame["student_id"].to_numpy(dtype=np.int64)
    rows = np.searchsorted(student_ids, student)
    first = np.clip(frame["entry_day"].to_numpy() // 7, 0, w - 1)
    last = np.clip(frame["exit_day"].to_numpy() // 7, 0, w - 1)
    starts = np.r_[True, student[1:] != student[:-1]] if len(student) else np.zeros(0, bool)
    index = np.arange(len(student))
    rank = index - np.maximum.accumulate(np.where(starts, index, 0)) if len(student) else index
    for k in range(int(rank.max()) + 1 if len(rank) else 0):
        sel = np.flatnonzero(rank == k)
        span = (weeks >= first[sel, None]) & (weeks <= last[sel, None])
        r = rows[sel]
        covering[r] = np.where(span, sel[:, None], covering[r])
    enrolled = covering >= 0
    school = np.zeros((n, w), dtype=np.int64)
    grade = np.full((n, w), np.nan)
    school_bits = np.zeros((n, w), dtype=np.int64)
    if len(frame):
        enrollment_school = frame["school_id"].to_numpy(dtype=np.int64)
        school_ids, school_index = np.unique(enrollment_school, return_inverse=True)
        school = np.where(enrolled, enrollment_school[covering], 0)
        grade = np.where(enrolled, frame["grade_level"].to_numpy(dtype=np.float64)[covering], grade)
        table = calendar.school_bits(school_ids)
        school_bits = np.where(enrolled, table[school_index[covering], weeks], 0)
    entry_weeks = pd.DataFrame({"row": rows, "week": first})
    return Grid(
        calendar=calendar,
        student_ids=student_ids,
        first_week=first_week,
        last_week=last_week,
        enrolled=enrolled,
        school=school,
        grade_level=grade,
        school_bits=school_bits,
        entry_weeks=entry_weeks,
        attendance_void=np.zeros((n, w), dtype=bool),
    )


class EnrollmentExtractor(Extractor):
    name = "enrollment"
    code_version = 1
    sources = ("births",)

    def __init__(self, *, entry_age: int = 6) -> None:
        # Grade 1 starts at six in Bangladesh, so grade g is expected at g + 5.
        self.entry_age = entry_age

    @property
    def columns(self) -> tuple[str, ...]:
        return ("grade_level", "over_age", "weeks_enrolled", "school_changes")

    def params(self) -> dict[str, Any]:
        return {"entry_age": self.entry_age}

    def ranges(self) -> dict[str, tuple[float, float]]:
        return {
            "grade_level": (1, 12),
            "over_age": (0, 10),
            "weeks_enrolled": (0, 54),
            "school_changes": (0, 12),
        }

    def read(self, scope: Scope) -> dict[str, pd.DataFrame]:
        return {
            "births": raw.birth_dates(
                origin=scope.calendar.origin_date, student_ids=scope.student_ids
            )
        }

    def extract(self, grid: Grid, state: np.ndarray | None) -> Extracted:
        n = len(grid.student_ids)
        start = grid.calendar.start
        origin = np.datetime64(grid.calendar.origin_date, "D")
        births = grid.sources(self)["births"]
        age = np.full(n, np.nan)
        if len(births):
            dob = pd.DatetimeIndex(origin + births["birth_day"].to_numpy().astype("timedelta64[D]"))
            before_birthday = (dob.month > start.month) | (
                (dob.month == start.month) & (dob.day > start.day)
            )
            years = start.year - dob.year - before_birthday.astype(int)
            age[grid.rows_of(births["student_id"].to_numpy())] = np.asarray(years, dtype=np.float64)
        window = grid.window
        grade_level = grid.grade_level[:, window]
        over_age = np.maximum(age[:, None] - (grade_level + (self.entry_age - 1)), 0.0)
        # Counted from the year's first week, whatever the window.
        weeks_enrolled = np.cumsum(grid.in_session, axis=1)[:, window].astype(np.float64)
        entries = grid.entry_weeks
        started = np.cumsum(
            grid.scatter_sum(entries["row"].to_numpy(), entries["week"].to_numpy()), axis=1
        )
        school_changes = np.maximum(started[:, window] - 1, 0)
        return Extracted(
            values={
                "grade_level": grade_level,
                "over_age": over_age,
                "weeks_enrolled": weeks_enrolled,
                "school_changes": school_changes,
            }
        )
