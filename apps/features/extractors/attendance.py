"""Attendance: weekly rates and counts, streaks, rolling and year-to-date rates.

The only extractor with state: its running sums after each week are stored
with the week's row, so an incremental update after a one-week import reads
that week's records and the previous week's state, not the whole year.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from apps.features import raw
from apps.features.calendar import popcount7
from apps.features.extractors.base import Extracted, Extractor, Grid, ratio

CUM_ATTENDED, CUM_RECORDED, SCHOOL_WEEKS, BASE_ATTENDED, BASE_RECORDED, RUN = range(6)


class AttendanceExtractor(Extractor):
    name = "attendance"
    code_version = 1

    def __init__(
        self,
        *,
        rolling_weeks: tuple[int, ...] = (2, 4, 8),
        baseline_weeks: int = 4,
        chronic_below: float = 0.9,
    ) -> None:
        self.rolling_weeks = rolling_weeks
        self.baseline_weeks = baseline_weeks
        self.chronic_below = chronic_below
        self.ring = max(*rolling_weeks, baseline_weeks)

    @property
    def state_size(self) -> int:  # type: ignore[override]
        return RUN + 1 + 2 * self.ring

    @property
    def columns(self) -> tuple[str, ...]:
        return (
            "school_days",
            "no_school_week",
            "days_recorded",
            "attendance_rate",
            "absences",
            "unexcused_absences",
            "late_arrivals",
            "absence_streak",
            *(f"attendance_rate_{k}w" for k in self.rolling_weeks),
            "attendance_rate_ytd",
            "attendance_change",
            "chronic_absence",
        )

    def params(self) -> dict[str, Any]:
        return {
            "rolling_weeks": list(self.rolling_weeks),
            "baseline_weeks": self.baseline_weeks,
            "chronic_below": self.chronic_below,
        }

    def ranges(self) -> dict[str, tuple[float, float]]:
        rates = {c: (0.0, 1.0) for c in self.columns if c.startswith("attendance_rate")}
        return {
            "school_days": (0, 7),
            "no_school_week": (0, 1),
            "days_recorded": (0, 7),
            "absences": (0, 7),
            "unexcused_absences": (0, 7),
            "late_arrivals": (0, 7),
            "absence_streak": (0, 366),
            "attendance_change": (-1, 1),
            "chronic_absence": (0, 1),
            **rates,
        }

    def _bits(self, grid: Grid) -> tuple[np.ndarray, ...]:
        calendar = grid.calendar
        n, w = grid.shape
        first = max(calendar.start, calendar.week_start(grid.first_week))
        last = min(calendar.end, calendar.week_end(grid.last_week))
        frame = grid.preloaded_rows("attendance")
        if frame is None:
            frame = raw.attendance_week_bits(
                origin=calendar.origin_date, first=first, last=last, student_ids=grid.student_ids
            )
        frame = frame[frame["week"].between(grid.first_week, grid.last_week)]
        rows = grid.rows_of(frame["student_id"].to_numpy())
        weeks = frame["week"].to_numpy()
        out = []
        for column in ("rec", "absent", "excused", "late"):
            dense = np.zeros((n, w), dtype=np.int64)
            dense[rows, weeks] = frame[column].to_numpy()
            # Records a data check held back count as not recorded at all.
            dense[grid.attendance_void] = 0
            out.append(dense)
        return tuple(out)

    def extract(self, grid: Grid, state: np.ndarray | None) -> Extracted:
        n, w = grid.shape
        recorded_bits, absent_bits, excused_bits, late_bits = self._bits(grid)
        st = np.zeros((n, self.state_size)) if state is None else state.astype(np.float64)
        ring = self.ring
        ring_att = st[:, RUN + 1 : RUN + 1 + ring].copy()
        ring_rec = st[:, RUN + 1 + ring :].copy()
        # Every state value is a count of days or weeks: int16 is exact and small.
        states = np.zeros((n, w, self.state_size), dtype=np.int16)
        values = {column: grid.empty() for column in self.columns}
        school_days = grid.school_days
        in_session = grid.in_session
        for week in range(grid.first_week, grid.last_week + 1):
            rec_b = recorded_bits[:, week]
            away_b = absent_bits[:, week] | excused_bits[:, week]
            recorded = popcount7(rec_b)
            absent = popcount7(absent_bits[:, week])
            excused = popcount7(excused_bits[:, week])
            late = popcount7(late_bits[:, week])
            attended = recorded - absent - excused
            has = recorded > 0

            # Consecutive absences over recorded days in date order; a day
            # without a record (weekend, holiday, gap) neither breaks nor extends.
            run = st[:, RUN]
            longest = np.zeros(n)
            for day in range(7):
                on = ((rec_b >> day) & 1) == 1
                away = ((away_b >> day) & 1) == 1
                run = np.where(on, np.where(away, run + 1, 0), run)
                longest = np.where(on & away, np.maximum(longest, run), longest)
            st[:, RUN] = run

            st[:, CUM_ATTENDED] += attended
            st[:, CUM_RECORDED] += recorded
            # A school week for the student: in session, or records anyway (a make-up day).
            counts = in_session[:, week] | has
            ring_att = np.where(
                counts[:, None], np.column_stack([ring_att[:, 1:], attended]), ring_att
            )
            ring_rec = np.where(
                counts[:, None], np.column_stack([ring_rec[:, 1:], recorded]), ring_rec
            )
            st[:, SCHOOL_WEEKS] += counts
            in_baseline = counts & (st[:, SCHOOL_WEEKS] <= self.baseline_weeks)
            st[:, BASE_ATTENDED] += np.where(in_baseline, attended, 0)
            st[:, BASE_RECORDED] += np.where(in_baseline, recorded, 0)
            st[:, RUN + 1 : RUN + 1 + ring] = ring_att
            st[:, RUN + 1 + ring :] = ring_rec
            states[:, week] = st

            values["school_days"][:, week] = school_days[:, week]
            values["no_school_week"][:, week] = school_days[:, week] == 0
            values["days_recorded"][:, week] = recorded
            values["attendance_rate"][:, week] = ratio(attended, recorded)
            values["absences"][:, week] = np.where(has, absent + excused, np.nan)
            values["unexcused_absences"][:, week] = np.where(has, absent, np.nan)
            values["late_arrivals"][:, week] = np.where(has, late, np.nan)
            values["absence_streak"][:, week] = np.where(has, longest, np.nan)
            for k in self.rolling_weeks:
                values[f"attendance_rate_{k}w"][:, week] = ratio(
                    ring_att[:, -k:].sum(axis=1), ring_rec[:, -k:].sum(axis=1)
                )
            ytd = ratio(st[:, CUM_ATTENDED], st[:, CUM_RECORDED])
            values["attendance_rate_ytd"][:, week] = ytd
            recent = ratio(
                ring_att[:, -self.baseline_weeks :].sum(axis=1),
                ring_rec[:, -self.baseline_weeks :].sum(axis=1),
            )
            baseline = ratio(st[:, BASE_ATTENDED], st[:, BASE_RECORDED])
            # Only once the first weeks are over, so no week sees its future.
            ready = st[:, SCHOOL_WEEKS] >= self.baseline_weeks
            values["attendance_change"][:, week] = np.where(ready, recent - baseline, np.nan)
            values["chronic_absence"][:, week] = np.where(
                np.isnan(ytd), np.nan, ytd < self.chronic_below
            )
        return Extracted(values=values, state=states)
