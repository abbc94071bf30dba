"""Grades: marks as shares of the maximum, running averages, trajectory, failing subjects."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from apps.features import raw
from apps.features.extractors.base import (
    Extracted,
    Extractor,
    Grid,
    Scope,
    forward_fill,
    in_window,
    ratio,
    with_rows_recomputed,
)


class GradesExtractor(Extractor):
    name = "grades"
    code_version = 1
    sources = ("grades",)

    def __init__(
        self,
        *,
        core_subjects: tuple[str, ...] = ("BAN", "ENG", "MATH"),
        pass_share: float = 0.33,
        trend_assessments: int = 3,
    ) -> None:
        # 33% is the pass mark of Bangladesh's secondary examinations.
        self.core_subjects = core_subjects
        self.pass_share = pass_share
        if trend_assessments not in (2, 3):
            raise ValueError("trend_assessments must be 2 or 3")
        self.trend_assessments = trend_assessments

    @property
    def columns(self) -> tuple[str, ...]:
        return (
            "marks_share",
            "marks_average",
            *(f"marks_average_{code.lower()}" for code in self.core_subjects),
            "marks_trend",
            "failing_subjects",
            "missing_assessments",
        )

    def params(self) -> dict[str, Any]:
        return {
            "core_subjects": list(self.core_subjects),
            "pass_share": self.pass_share,
            "trend_assessments": self.trend_assessments,
        }

    def ranges(self) -> dict[str, tuple[float, float]]:
        shares = {c: (0.0, 1.0) for c in self.columns if c.startswith("marks_")}
        return {
            **shares,
            "marks_trend": (-1.0, 1.0),
            "failing_subjects": (0, 30),
            "missing_assessments": (0, 500),
        }

    def read(self, scope: Scope) -> dict[str, pd.DataFrame]:
        calendar = scope.calendar
        marks = raw.grades(
            origin=calendar.origin_date,
            academic_year=calendar.academic_year,
            student_ids=scope.student_ids,
            # An update needs the marks of the rebuilt weeks only (see extract).
            days=scope.window_days() if scope.resuming else None,
        )
        return {"grades": marks}

    def extract(self, grid: Grid, state: np.ndarray | None) -> Extracted:
        marks = grid.sources(self)["grades"]
        if grid.previous is None:
            return in_window(grid, self._from_marks(grid, marks))
        # Incremental: a student with no mark dated in the rebuilt weeks keeps
        # the running values of the week before (every column here only
        # changes on a new mark, and no mark that week is a NaN share); only
        # the others are recomputed from the year.
        changed = np.unique(marks["student_id"].to_numpy())
        carried = {
            column: np.full((len(grid.student_ids), grid.window_weeks), np.nan)
            if column == "marks_share"
            else grid.carried(column)
            for column in self.columns
        }

        def year(subgrid: Grid) -> Extracted:
            frame = raw.grades(
                origin=subgrid.calendar.origin_date,
                academic_year=subgrid.calendar.academic_year,
                student_ids=subgrid.student_ids,
            )
            return self._from_marks(subgrid, frame)

        return with_rows_recomputed(grid, carried, changed, year)

    def _from_marks(self, grid: Grid, frame: pd.DataFrame) -> Extracted:
        n, w = grid.shape
        rows = grid.rows_of(frame["student_id"].to_numpy())
        weeks = np.clip(frame["day"].to_numpy() // 7, 0, w - 1)
        share = frame["share"].to_numpy()
        missing = share < 0
        marked = ~missing

        week_sum = grid.scatter_sum(rows[marked], weeks[marked], share[marked])
        week_count = grid.scatter_sum(rows[marked], weeks[marked])
        values: dict[str, np.ndarray] = {
            "marks_share": ratio(week_sum, week_count),
            "marks_average": ratio(np.cumsum(week_sum, axis=1), np.cumsum(week_count, axis=1)),
        }
        codes = raw.subject_codes()
        subject_ids = frame["subject_id"].to_numpy()
        for code in self.core_subjects:
            sel = marked & np.isin(subject_ids, [pk for pk, c in codes.items() if c == code])
            total = np.cumsum(grid.scatter_sum(rows[sel], weeks[sel], share[sel]), axis=1)
            count = np.cumsum(grid.scatter_sum(rows[sel], weeks[sel]), axis=1)
            values[f"marks_average_{code.lower()}"] = ratio(total, count)

        failing = self._failing(
            grid, rows[marked], subject_ids[marked], weeks[marked], share[marked]
        )
        any_marks = np.cumsum(week_count, axis=1) > 0
        values["failing_subjects"] = np.where(any_marks, failing, np.nan)
        values["marks_trend"] = self._trend(grid, frame[marked], rows[marked])
        values["missing_assessments"] = np.cumsum(
            grid.scatter_sum(rows[missing], weeks[missing]), axis=1
        )
        return Extracted(values=values)

    def _failing(
        self,
        grid: Grid,
        rows: np.ndarray,
        subject_ids: np.ndarray,
        weeks: np.ndarray,
        share: np.ndarray,
    ) -> np.ndarray:
        """[N, W]: subjects whose latest week's mean mark is below the pass share.

        Each (student, subject, week) with marks sets the subject failing or
        not from then on: the count changes by +1 / -1 only where that flips,
        so one cumulative sum over the changes gives every week's count.
        """
        _, subject = np.unique(subject_ids, return_inverse=True)
        subjects = int(subject.max()) + 1 if len(subject) else 1
        w = grid.shape[1]
        key = (rows * subjects + subject) * w + weeks
        keys, group = np.unique(key, return_inverse=True)  # by student, subject, week
        # The week's mean, summed in the marks' order as a per-subject sum would.
        mean = np.bincount(group, weights=share) / np.bincount(group)
        fails = (mean < self.pass_share).astype(np.int64)
        same_subject = np.r_[False, keys[1:] // w == keys[:-1] // w]
        before = np.where(same_subject, np.r_[0, fails[:-1]], 0)
        change = grid.scatter_sum(keys // w // subjects, keys % w, fails - before)
        return np.cumsum(change, axis=1)

    def _trend(self, grid: Grid, marks: pd.DataFrame, rows: np.ndarray) -> np.ndarray:
        """Slope of the mean mark per assessment date over the last 2-3 dates.

        For dates numbered 0, 1, 2 the least-squares slope is (y2 - y0) / 2;
        with two dates it is y1 - y0 (share of the maximum per assessment).
        """
        n, w = grid.shape
        if marks.empty:
            return grid.empty()
        by_date = (
            pd.DataFrame({"row": rows, "day": marks["day"].to_numpy(), "share": marks["share"]})
            .groupby(["row", "day"], sort=True)["share"]
            .mean()
            .reset_index()
        )
        group = by_date.groupby("row")["share"]
        previous = group.shift(1).to_numpy()
        before = group.shift(2).to_numpy()
        current = by_date["share"].to_numpy()
        slope = current - previous
        if self.trend_assessments == 3:
            slope = np.where(np.isnan(before), slope, (current - before) / 2)
        by_date["slope"] = slope
        by_date["week"] = np.clip(by_date["day"].to_numpy() // 7, 0, w - 1)
        last = by_date.drop_duplicates(["row", "week"], keep="last")
        dense = grid.empty()
        dense[last["row"].to_numpy(), last["week"].to_numpy()] = last["slope"].to_numpy()
        # Weeks before the second dated mark stay NaN even after filling forward.
        filled = forward_fill(dense)
        has_slope = np.cumsum(~np.isnan(dense), axis=1) > 0
        return np.where(has_slope, filled, np.nan)
