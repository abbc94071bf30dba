"""The school calendar as the feature store sees it: weeks and school days.

An academic year's weeks are the calendar weeks (starting on
EDUPULSE_WEEK_START) that overlap the year; the first may begin before the
year does and the last may end after it, and only the year's own days count
in either. A day is a school day when its weekday is in EDUPULSE_SCHOOL_DAYS
and it is not a holiday, national or of a region above the school.
School days are kept as 7-bit masks per week (bit d = week_start + d days),
so attendance records aggregated the same way combine with plain bit logic.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
from django.conf import settings

from apps.students.models import Holiday, School
from apps.students.services import academic_year_bounds

WEEKDAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def week_start_of(day: dt.date) -> dt.date:
    first = WEEKDAYS.index(settings.EDUPULSE_WEEK_START)
    return day - dt.timedelta(days=(day.weekday() - first) % 7)


@dataclass(frozen=True)
class YearCalendar:
    academic_year: int
    start: dt.date
    end: dt.date
    week_starts: np.ndarray  # datetime64[D] [W]
    base_bits: np.ndarray  # int64 [W]: school days before regional holidays

    @property
    def weeks(self) -> int:
        return len(self.week_starts)

    def week_start(self, index: int) -> dt.date:
        return self.origin_date + dt.timedelta(days=7 * index)

    @property
    def origin_date(self) -> dt.date:
        value: dt.date = self.week_starts[0].astype(object)
        return value

    def week_index(self, day: dt.date) -> int:
        """The index of the week holding `day`, clipped to the year's weeks."""
        index = (day - self.origin_date).days // 7
        return min(max(index, 0), self.weeks - 1)

    def week_end(self, index: int) -> dt.date:
        return self.week_start(index) + dt.timedelta(days=6)

    def school_bits(self, school_ids: np.ndarray) -> np.ndarray:
        """int64 [len(school_ids), W]: each school's school-day masks."""
        school_ids = np.asarray(school_ids, dtype=np.int64)
        bits = np.broadcast_to(self.base_bits, (len(school_ids), self.weeks)).copy()
        regional = list(
            Holiday.objects.filter(
                region__isnull=False, date__gte=self.start, date__lte=self.end
            ).values_list("date", "region__path")
        )
        if not regional or not len(school_ids):
            return bits
        paths = dict(
            School.objects.filter(pk__in=np.unique(school_ids).tolist()).values_list(
                "pk", "region__path"
            )
        )
        school_paths = np.array([paths.get(int(s), "") for s in school_ids], dtype=object)
        # A loop over the (few) regional holidays, each vectorised over schools.
        for day, region_path in regional:
            offset = (day - self.origin_date).days
            hit = np.array([p.startswith(region_path) for p in school_paths], dtype=bool)
            bits[hit, offset // 7] &= ~np.int64(1 << (offset % 7))
        return bits


def year_calendar(academic_year: int) -> YearCalendar:
    start, end = academic_year_bounds(academic_year)
    first = week_start_of(start)
    n_weeks = (end - first).days // 7 + 1
    week_starts = np.datetime64(first, "D") + 7 * np.arange(n_weeks).astype("timedelta64[D]")
    days = np.datetime64(first, "D") + np.arange(n_weeks * 7).astype("timedelta64[D]")
    # numpy: 1970-01-01 was a Thursday (weekday 3 with Monday = 0).
    weekday = (days.astype(np.int64) + 3) % 7
    school_weekdays = [WEEKDAYS.index(d) for d in settings.EDUPULSE_SCHOOL_DAYS]
    national = np.array(
        list(
            Holiday.objects.filter(region__isnull=True, date__gte=start, date__lte=end).values_list(
                "date", flat=True
            )
        ),
        dtype="datetime64[D]",
    )
    is_school_day = (
        np.isin(weekday, school_weekdays)
        & (days >= np.datetime64(start, "D"))
        & (days <= np.datetime64(end, "D"))
        & ~np.isin(days, national)
    )
    base_bits = (is_school_day.reshape(n_weeks, 7) * (1 << np.arange(7))).sum(axis=1)
    return YearCalendar(
        academic_year=academic_year,
        start=start,
        end=end,
        week_starts=week_starts,
        base_bits=base_bits.astype(np.int64),
    )


_POPCOUNT7 = np.array([bin(mask).count("1") for mask in range(128)], dtype=np.int64)


def popcount7(bits: np.ndarray) -> np.ndarray:
    """Number of set bits in 7-bit week masks (one table lookup per mask)."""
    return _POPCOUNT7[np.asarray(bits, dtype=np.int64) & 127]
