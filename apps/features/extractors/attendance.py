"""Attendance: weekly rates and counts, streaks, rolling and year-to-date rates.

The only extractor with state: its running sums after each week are stored
with the week's row, so an incremental update after a one-week import reads
that week's records and the previous week's state, not the whole year.
Every week of a build is computed at once from cumulative sums; the
definitions read week by week (see `extract`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from apps.features import raw
from apps.features.calendar import popcount7
from apps.features.extractors.base import Extracted, Extractor, Grid, Scope, ratio

CUM_ATTENDED, CUM_RECORDED, SCHOOL_WEEKS, BASE_ATTENDED, BASE_RECORDED, RUN = range(6)


class AttendanceExtractor(Extractor):
    name = "attendance"
    code_version = 1
    sources = ("attendance",)

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

    def read(self, scope: Scope) -> dict[str, pd.DataFrame]:
        calendar = scope.calendar
        assert scope.student_ids is not None  # a build reads everyone's records itself
        bits = raw.attendance_week_bits(
            origin=calendar.origin_date,
            first=max(calendar.start, calendar.week_start(scope.first_week)),
            last=min(calendar.end, calendar.week_end(scope.last_week)),
            students=scope.student_ids,
        )
        return {"attendance": bits.students}

    def _bits(self, grid: Grid) -> tuple[np.ndarray, ...]:
        """The window's day masks, [N, window] each: recorded, absent, excused, late."""
        n = len(grid.student_ids)
        frame = grid.sources(self)["attendance"]
        frame = frame[frame["week"].between(grid.first_week, grid.last_week)]
        rows = grid.rows_of(frame["student_id"].to_numpy())
        weeks = frame["week"].to_numpy() - grid.first_week
        # Records a data check held back count as not recorded at all.
        void = grid.attendance_void[:, grid.window]
        out = []
        for column in ("rec", "absent", "excused", "late"):
            dense = np.zeros((n, grid.window_weeks), dtype=np.int64)
            dense[rows, weeks] = frame[column].to_numpy()
            dense[void] = 0
            out.append(dense)
        return tuple(out)

    def extract(self, grid: Grid, state: np.ndarray | None) -> Extracted:
        """Every week of the window at once; the state carries the weeks before it.

        The state after a week is what the week-by-week definition keeps:
        running sums, the absence run, and a ring of the student's last
        `ring` school weeks (attended and recorded days, oldest first).
        """
        n, w = len(grid.student_ids), grid.window_weeks
        recorded_bits, absent_bits, excused_bits, late_bits = self._bits(grid)
        st = np.zeros((n, self.state_size), np.int64) if state is None else state.astype(np.int64)
        recorded = popcount7(recorded_bits)
        absent = popcount7(absent_bits)
        excused = popcount7(excused_bits)
        late = popcount7(late_bits)
        attended = recorded - absent - excused
        has = recorded > 0
        # A school week for the student: in session, or records anyway (a make-up day).
        counts = grid.in_session[:, grid.window] | has

        run, longest = self._absence_runs(recorded_bits, absent_bits | excused_bits, st[:, RUN])
        cum_attended = st[:, [CUM_ATTENDED]] + np.cumsum(attended, axis=1)
        cum_recorded = st[:, [CUM_RECORDED]] + np.cumsum(recorded, axis=1)
        school_weeks = st[:, [SCHOOL_WEEKS]] + np.cumsum(counts, axis=1)
        in_baseline = counts & (school_weeks <= self.baseline_weeks)
        base_attended = st[:, [BASE_ATTENDED]] + np.cumsum(attended * in_baseline, axis=1)
        base_recorded = st[:, [BASE_RECORDED]] + np.cumsum(recorded * in_baseline, axis=1)

        # The ring as one sequence per student: the stored ring, then the
        # school weeks of the window in order. After week t (the window's
        # k-th school week so far, k = seen[:, t]) the ring is the sequence's
        # entries k .. k + ring - 1, and the last-j-weeks sums are differences
        # of its prefix sums. Indices are flat: row * width + column.
        ring = self.ring
        width = ring + w + 1
        seen = np.cumsum(counts, axis=1)
        school_week = np.flatnonzero(counts)
        position = school_week // w * width + ring + seen.ravel()[school_week] - 1
        end = (np.arange(n) * width)[:, None] + seen + ring
        keep = slice(grid.state_from - grid.first_week, None)
        ring_index = (end[:, keep] - ring)[:, :, None] + np.arange(ring)
        prefix = {}
        ring_after = {}
        for name, weekly, offset in (
            ("att", attended, RUN + 1),
            ("rec", recorded, RUN + 1 + ring),
        ):
            sequence = np.zeros((n, width), dtype=np.int64)
            sequence[:, :ring] = st[:, offset : offset + ring]
            sequence.ravel()[position] = weekly.ravel()[school_week]
            ring_after[name] = sequence.ravel()[ring_index]
            total = np.zeros((n, width), dtype=np.int64)
            np.cumsum(sequence[:, :-1], axis=1, out=total[:, 1:])
            prefix[name] = total.ravel()

        def last_weeks(name: str, k: int) -> np.ndarray:
            return prefix[name][end] - prefix[name][end - k]

        values = {
            "school_days": grid.school_days[:, grid.window].astype(np.float64),
            "no_school_week": (grid.school_days[:, grid.window] == 0).astype(np.float64),
            "days_recorded": recorded.astype(np.float64),
            "attendance_rate": ratio(attended, recorded),
            "absences": np.where(has, absent + excused, np.nan),
            "unexcused_absences": np.where(has, absent, np.nan),
            "late_arrivals": np.where(has, late, np.nan),
            "absence_streak": np.where(has, longest, np.nan),
        }
        for k in self.rolling_weeks:
            values[f"attendance_rate_{k}w"] = ratio(last_weeks("att", k), last_weeks("rec", k))
        ytd = ratio(cum_attended, cum_recorded)
        values["attendance_rate_ytd"] = ytd
        recent = ratio(
            last_weeks("att", self.baseline_weeks), last_weeks("rec", self.baseline_weeks)
        )
        baseline = ratio(base_attended, base_recorded)
        # Only once the first weeks are over, so no week sees its future.
        ready = school_weeks >= self.baseline_weeks
        values["attendance_change"] = np.where(ready, recent - baseline, np.nan)
        with np.errstate(invalid="ignore"):
            values["chronic_absence"] = np.where(np.isnan(ytd), np.nan, ytd < self.chronic_below)

        # Every state value is a count of days or weeks: int16 is exact and small.
        states = np.empty((n, ring_index.shape[1], self.state_size), dtype=np.int16)
        states[:, :, CUM_ATTENDED] = cum_attended[:, keep]
        states[:, :, CUM_RECORDED] = cum_recorded[:, keep]
        states[:, :, SCHOOL_WEEKS] = school_weeks[:, keep]
        states[:, :, BASE_ATTENDED] = base_attended[:, keep]
        states[:, :, BASE_RECORDED] = base_recorded[:, keep]
        states[:, :, RUN] = run[:, keep]
        states[:, :, RUN + 1 : RUN + 1 + ring] = ring_after["att"]
        states[:, :, RUN + 1 + ring :] = ring_after["rec"]
        return Extracted(values=values, state=states)

    @staticmethod
    def _absence_runs(
        recorded_bits: np.ndarray, away_bits: np.ndarray, run_before: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Consecutive absences over recorded days in date order, [N, window] each:
        the run after each week and the longest it reached during the week.

        A day without a record (weekend, holiday, gap) neither breaks nor
        extends a run. Over the window's days: a run is the absences since
        the last recorded day present (the run before the window while there
        is none yet).
        """
        n, w = recorded_bits.shape

        def days(bits: np.ndarray) -> np.ndarray:
            # Eight bits a week, the eighth never set: a day without a record.
            as_bytes = bits.astype(np.uint8)[:, :, None]
            return np.unpackbits(as_bytes, axis=2, bitorder="little").reshape(n, 8 * w)

        on, away = days(recorded_bits), days(away_bits)
        absent_days = on & away
        absences = np.cumsum(absent_days, axis=1, dtype=np.int32)
        # Absences counted up to the last day present; absences are
        # nondecreasing, so a running maximum finds it.
        at_reset = np.where(on > away, absences, -1)
        np.maximum.accumulate(at_reset, axis=1, out=at_reset)
        before = run_before.astype(np.int32)[:, None]
        runs = np.where(at_reset < 0, before + absences, absences - at_reset)
        longest = (runs * absent_days).reshape(n, w, 8).max(axis=2)
        return runs.reshape(n, w, 8)[:, :, -1], longest
