"""The extractor protocol and the student × week grid every extractor fills.

An extractor turns one source of raw records into named [N, W] float arrays
for the N students of a build and the W weeks of one academic year, NaN
where nothing was observed. It works on whole arrays: loops run over weeks,
days of the week or subjects, never over students.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from apps.features.calendar import YearCalendar, popcount7


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
    # Raw aggregates the build read once for many chunks (source name → frame
    # sorted by student_id); an extractor reads its own only when absent.
    preloaded: dict[str, pd.DataFrame] = field(default_factory=dict)
    # In an incremental build, every student's stored values of the week
    # before first_week (column → [N]); None in a build from the first week.
    previous: dict[str, np.ndarray] | None = None

    def window_days(self) -> tuple[int, int]:
        """Days from the origin of the first and last day this build writes."""
        return 7 * self.first_week, 7 * self.last_week + 6

    def carried(self, column: str) -> np.ndarray:
        """[N, W]: the previous week's value of `column` repeated over every week."""
        assert self.previous is not None
        return np.repeat(self.previous[column][:, None], self.shape[1], axis=1)

    def preloaded_rows(self, name: str) -> pd.DataFrame | None:
        frame = self.preloaded.get(name)
        if frame is None:
            return None
        ids = frame["student_id"].to_numpy()
        first = np.searchsorted(ids, self.student_ids[0], side="left")
        last = np.searchsorted(ids, self.student_ids[-1], side="right")
        part = frame.iloc[first:last]
        return part[np.isin(part["student_id"].to_numpy(), self.student_ids)]

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.student_ids), self.calendar.weeks

    @property
    def school_days(self) -> np.ndarray:
        return popcount7(self.school_bits)

    @property
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
    values: dict[str, np.ndarray]  # column → [N, W] float64, NaN = not observed
    state: np.ndarray | None = None  # [N, W, S] int16: the state after each week


class Extractor(ABC):
    name: ClassVar[str]
    code_version: ClassVar[int]
    state_size: ClassVar[int] = 0

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
        """`state` ([N, state_size], the state after week first_week - 1) or None for zeros."""


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
