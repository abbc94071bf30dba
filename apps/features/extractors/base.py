"""The extractor protocol and the student × week grid every extractor fills.

An extractor turns one source of raw records into named float arrays for
the N students of a build and the weeks it writes (the grid's window, from
first_week to last_week of one academic year: every week in a full build,
the imported ones in an update), NaN where nothing was observed. The grid
itself spans the whole year (W weeks), for the features that look back. An
extractor works on whole arrays: loops run over days of the week or
subjects, never over students or weeks.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from apps.features.calendar import YearCalendar, popcount7


def rows_of_students(frame: pd.DataFrame, student_ids: np.ndarray) -> pd.DataFrame:
    """The rows of `frame` (sorted by student_id) that belong to `student_ids` (sorted)."""
    if not len(student_ids):
        return frame.iloc[:0]
    ids = frame["student_id"].to_numpy()
    first = np.searchsorted(ids, student_ids[0], side="left")
    last = np.searchsorted(ids, student_ids[-1], side="right")
    part = frame.iloc[first:last]
    return part[np.isin(part["student_id"].to_numpy(), student_ids)]


@dataclass(frozen=True)
class Scope:
    """What a build reads: its students, year and weeks."""

    calendar: YearCalendar
    student_ids: np.ndarray | None  # sorted; None: every student (whole tables, no id list)
    first_week: int
    last_week: int
    # The students resume from their stored week before first_week (an
    # update) rather than start from the year's first week.
    resuming: bool

    def window_days(self) -> tuple[int, int]:
        """Days from the origin of the first and last day the build writes."""
        return 7 * self.first_week, 7 * self.last_week + 6


@dataclass
class Grid:
    calendar: YearCalendar
    student_ids: np.ndarray  # int64 [N], sorted
    first_week: int  # the first week this build writes (earlier weeks come from state)
    last_week: int  # the last week this build writes, inclusive
    enrolled: np.ndarray  # bool [N, W]: enrolled for at least part of the week
    school: np.ndarray  # int64 [N, W]: the school that week (0 = none)
    grade_level: np.ndarray  # float [N, W]
    school_bits: np.ndarray  # int64 [N, W]: the school's school days, 7-bit masks
    entry_weeks: pd.DataFrame  # one row per enrollment: row, week (of the entry date)
    # Student-weeks whose attendance records are held back as data errors.
    attendance_void: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=bool))
    # Raw records the build read once for all its chunks (source name → frame
    # sorted by student_id); an extractor reads its own only when absent.
    preloaded: dict[str, pd.DataFrame] = field(default_factory=dict)
    # In an incremental build, every student's stored values of the week
    # before first_week (column → [N]); None in a build from the first week.
    previous: dict[str, np.ndarray] | None = None
    # The first week whose extractor state is stored (the state is kept in
    # the last weeks a build writes only): states are returned from there on.
    state_from: int = 0

    @property
    def scope(self) -> Scope:
        return Scope(
            calendar=self.calendar,
            student_ids=self.student_ids,
            first_week=self.first_week,
            last_week=self.last_week,
            resuming=self.previous is not None,
        )

    def sources(self, extractor: Extractor) -> dict[str, pd.DataFrame]:
        """The extractor's raw records for these students: cut from what the
        build read for all its chunks, or read now."""
        names = extractor.sources
        if all(name in self.preloaded for name in names):
            return {
                name: rows_of_students(self.preloaded[name], self.student_ids) for name in names
            }
        return extractor.read(self.scope)

    @property
    def window(self) -> slice:
        """The weeks this build writes, as a slice of the year's week axis."""
        return slice(self.first_week, self.last_week + 1)

    @property
    def window_weeks(self) -> int:
        return self.last_week - self.first_week + 1

    def carried(self, column: str) -> np.ndarray:
        """[N, window]: the previous week's value of `column` repeated over the window."""
        assert self.previous is not None
        return np.repeat(self.previous[column][:, None], self.window_weeks, axis=1)

    def subset(self, rows: np.ndarray) -> Grid:
        """The grid of some of its students (rows ascending), for a full-year recomputation."""
        entries = self.entry_weeks
        keep = np.isin(entries["row"].to_numpy(), rows)
        return replace(
            self,
            student_ids=self.student_ids[rows],
            enrolled=self.enrolled[rows],
            school=self.school[rows],
            grade_level=self.grade_level[rows],
            school_bits=self.school_bits[rows],
            entry_weeks=pd.DataFrame(
                {
                    "row": np.searchsorted(rows, entries["row"].to_numpy()[keep]),
                    "week": entries["week"].to_numpy()[keep],
                }
            ),
            attendance_void=self.attendance_void[rows],
            preloaded={},
            previous=None,
        )

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.student_ids), self.calendar.weeks

    @cached_property
    def school_days(self) -> np.ndarray:
        return popcount7(self.school_bits)

    @cached_property
    def in_session(self) -> np.ndarray:
        """Enrolled, and the week had school days: the contract's `in_session`."""
        return self.enrolled & (self.school_days > 0)

    def rows_of(self, student_ids: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.student_ids, np.asarray(student_ids, dtype=np.int64))

    def empty(self) -> np.ndarray:
        return np.full(self.shape, np.nan, dtype=np.float64)

    def scatter_sum(self, rows: np.ndarray, weeks: np.ndarray, weights: Any = None) -> np.ndarray:
        """Sum `weights` (or count) into an [N, W] array at (rows, weeks)."""
        n, w = self.shape
        flat = np.asarray(rows, dtype=np.int64) * w + np.asarray(weeks, dtype=np.int64)
        return np.bincount(flat, weights=weights, minlength=n * w).reshape(n, w).astype(np.float64)


@dataclass
class Extracted:
    # column → [N, window] float64, NaN = not observed (views of wider arrays are fine)
    values: dict[str, np.ndarray]
    # [N, state_from..last_week, S] int16: the state after each of those weeks
    state: np.ndarray | None = None


class Extractor(ABC):
    name: ClassVar[str]
    code_version: ClassVar[int]
    state_size: ClassVar[int] = 0
    # The names of the frames `read` returns.
    sources: ClassVar[tuple[str, ...]] = ()

    def read(self, scope: Scope) -> dict[str, pd.DataFrame]:
        """The raw records `extract` needs for the scope, each frame sorted by
        student_id. A build reads them once for all its students and cuts
        them per chunk of students (`Grid.sources`)."""
        return {}

    @property
    @abstractmethod
    def columns(self) -> tuple[str, ...]: ...

    @abstractmethod
    def params(self) -> dict[str, Any]: ...

    @abstractmethod
    def ranges(self) -> dict[str, tuple[float, float]]:
        """The possible range of each column; values outside are data errors."""

    @abstractmethod
    def extract(self, grid: Grid, state: np.ndarray | None) -> Extracted:
        """The window's values; `state` ([N, state_size], the state after week
        first_week - 1) or None for zeros."""


def in_window(grid: Grid, extracted: Extracted) -> Extracted:
    """Year-long [N, W] values cut to the grid's window."""
    return Extracted(
        values={column: v[:, grid.window] for column, v in extracted.values.items()},
        state=extracted.state,
    )


def with_rows_recomputed(
    grid: Grid,
    carried: dict[str, np.ndarray],
    student_ids: np.ndarray,
    year: Callable[[Grid], Extracted],
) -> Extracted:
    """An update's values: `carried` ([N, window], from the week before) for
    most students, `year(subgrid)` (year-long) for `student_ids`, whose
    records in the window call for recomputing them from the year's start."""
    if len(student_ids):
        rows = grid.rows_of(student_ids)
        recomputed = year(grid.subset(rows))
        for column, values in carried.items():
            values[rows] = recomputed.values[column][:, grid.window]
    return Extracted(values=carried)


def forward_fill(values: np.ndarray) -> np.ndarray:
    """Carry the last non-NaN value along the week axis; NaN before the first."""
    n, w = values.shape
    index = np.where(~np.isnan(values), np.arange(w)[None, :], 0)
    np.maximum.accumulate(index, axis=1, out=index)
    filled = values[np.arange(n)[:, None], index]
    return filled


def ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(
            denominator > 0, numerator / np.where(denominator > 0, denominator, 1), np.nan
        )
