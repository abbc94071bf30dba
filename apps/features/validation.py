"""Data checks of the feature build, reported as DataQualityFlag rows.

* A whole school at 0% attendance for a week (with enough records to mean
  it) is almost always a mis-marked register: flagged as "drop to zero",
  and its records are held back, so the students' features read "not
  observed" that week instead of "absent all week".
* A school's attendance falling by half or more from one week to the next
  is flagged as a sudden change, but kept: floods and strikes happen.
* A feature value outside its possible range (a birth date decades off
  makes a 40-year "over-age") is flagged and stored as missing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from django.db import transaction

from apps.features.calendar import YearCalendar
from apps.students.models import DataQualityFlag, QualityCheck

MIN_RECORDS = 10  # records in a school-week before its rate means anything
SUDDEN_DROP = 0.5


@dataclass
class Flag:
    school_id: int
    check_code: str
    week: int
    value: float
    detail: dict[str, Any] = field(default_factory=dict)


def checked_weeks(
    calendar: YearCalendar, first_week: int, last_week: int
) -> tuple[dt.date, dt.date]:
    """The days whose records the checks of [first_week, last_week] read (one week before)."""
    first = max(calendar.start, calendar.week_start(max(first_week - 1, 0)))
    return first, min(calendar.end, calendar.week_end(last_week))


def school_week_checks(
    calendar: YearCalendar, *, first_week: int, last_week: int, totals: pd.DataFrame
) -> tuple[list[Flag], set[tuple[int, int]]]:
    """Flags for the school-weeks in [first_week, last_week] and the (school, week) pairs to void.

    `totals`: school_id, week, rec, attended of every record at the checked
    schools over `checked_weeks` (`raw.attendance_week_bits`).
    """
    frame = totals
    if frame.empty:
        return [], set()
    frame = frame.sort_values(["school_id", "week"]).reset_index(drop=True)
    frame["rate"] = frame["attended"] / frame["rec"]
    enough = frame["rec"] >= MIN_RECORDS
    frame["previous"] = frame["rate"].where(enough).groupby(frame["school_id"]).shift(1)
    current = frame["week"] >= first_week
    zero = current & enough & (frame["attended"] == 0)
    sudden = current & enough & ~zero & (frame["previous"] - frame["rate"] >= SUDDEN_DROP)
    flags = [
        Flag(int(r.school_id), QualityCheck.DROP_TO_ZERO, int(r.week), 0.0, {"records": int(r.rec)})
        for r in frame[zero].itertuples()
    ]
    flags += [
        Flag(
            int(r.school_id),
            QualityCheck.SUDDEN_CHANGE,
            int(r.week),
            round(float(r.rate), 4),
            {"previous_rate": round(float(r.previous), 4), "records": int(r.rec)},
        )
        for r in frame[sudden].itertuples()
    ]
    void = {
        (int(s), int(w))
        for s, w in zip(frame.loc[zero, "school_id"], frame.loc[zero, "week"], strict=True)
    }
    return flags, void


def out_of_range(
    values: np.ndarray,
    columns: Sequence[str],
    ranges: dict[str, tuple[float, float]],
    *,
    schools: np.ndarray,
    weeks: np.ndarray,
) -> list[Flag]:
    """Set values outside their range to NaN in place; one flag per school-week."""
    low = np.array([ranges.get(c, (-np.inf, np.inf))[0] for c in columns])
    high = np.array([ranges.get(c, (-np.inf, np.inf))[1] for c in columns])
    with np.errstate(invalid="ignore"):
        bad = (values < low[None, :]) | (values > high[None, :])
    if not bad.any():
        return []
    values[bad] = np.nan
    hit_rows, hit_cols = np.nonzero(bad)
    frame = pd.DataFrame(
        {
            "school": schools[hit_rows],
            "week": weeks[hit_rows],
            "column": np.asarray(columns)[hit_cols],
        }
    )
    flags = []
    for (school, week), group in frame.groupby(["school", "week"]):
        flags.append(
            Flag(
                int(school),
                QualityCheck.OUT_OF_RANGE,
                int(week),
                float(len(group)),
                {"columns": sorted(set(group["column"]))},
            )
        )
    return flags


def merge_flags(flags: Iterable[Flag]) -> list[Flag]:
    """Out-of-range flags of one school-week found in several chunks become one."""
    merged: dict[tuple[int, str, int], Flag] = {}
    for flag in flags:
        key = (flag.school_id, flag.check_code, flag.week)
        if key in merged and flag.check_code == QualityCheck.OUT_OF_RANGE:
            known = merged[key]
            known.value += flag.value
            known.detail["columns"] = sorted(
                set(known.detail["columns"]) | set(flag.detail["columns"])
            )
        else:
            merged[key] = flag
    return list(merged.values())


@transaction.atomic
def flags_write(
    *,
    source: str,
    calendar: YearCalendar,
    flags: Sequence[Flag],
    first_week: int,
    last_week: int,
    school_ids: Sequence[int] | None,
    replace_out_of_range: bool,
) -> int:
    """Replace this source's open flags for the rebuilt weeks; resolved ones stay resolved."""
    week_from = calendar.week_start(first_week)
    week_to = calendar.week_start(last_week)
    checks = [QualityCheck.DROP_TO_ZERO, QualityCheck.SUDDEN_CHANGE]
    if replace_out_of_range:
        checks.append(QualityCheck.OUT_OF_RANGE)
    stale = DataQualityFlag.objects.filter(
        source=source,
        check_code__in=checks,
        week_start__gte=week_from,
        week_start__lte=week_to,
        resolved=False,
    )
    if school_ids is not None:
        stale = stale.filter(school_id__in=list(school_ids))
    stale.delete()
    flags = merge_flags(flags)
    keys = {(f.school_id, f.check_code, calendar.week_start(f.week)) for f in flags}
    existing = {
        (s, c, w): pk
        for pk, s, c, w in DataQualityFlag.objects.filter(
            source=source, week_start__gte=week_from, week_start__lte=week_to
        ).values_list("pk", "school_id", "check_code", "week_start")
        if (s, c, w) in keys
    }
    new = []
    for flag in flags:
        key = (flag.school_id, flag.check_code, calendar.week_start(flag.week))
        if key in existing:
            # Resolved by a person, or an out-of-range flag of students not rebuilt now.
            DataQualityFlag.objects.filter(pk=existing[key], resolved=False).update(
                value=flag.value, detail=flag.detail
            )
            continue
        new.append(
            DataQualityFlag(
                school_id=flag.school_id,
                check_code=flag.check_code,
                week_start=key[2],
                source=source,
                value=flag.value,
                detail=flag.detail,
            )
        )
    DataQualityFlag.objects.bulk_create(new)
    return len(new)
