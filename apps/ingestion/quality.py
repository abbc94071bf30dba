"""Data-quality figures per job and per school, and the flags they raise.

Figures are gathered chunk by chunk while validating (small aggregates, not
rows) and summarised once at the end. Thresholds are deliberately simple and
documented in docs/data-formats.md.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd
from django.conf import settings
from django.db.models import Max

from apps.ingestion.models import ImportKind
from apps.students.models import (
    AttendanceRecord,
    DataQualityFlag,
    Enrollment,
    QualityCheck,
)

WEEKDAY_INDEX = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}
STALE_AFTER_DAYS = 14
PERFECT_MIN_DAYS = 5
DROP_FROM_SHARE = 0.5
MISSING_MARKS_SHARE = 0.10
MAX_WEEK_FLAGS_PER_SCHOOL = 20


def week_starts(days: np.ndarray) -> np.ndarray:
    start = WEEKDAY_INDEX[settings.EDUPULSE_WEEK_START]
    ordinals = days.astype("M8[D]").astype(np.int64)
    weekday = (ordinals + 3) % 7  # 1970-01-01 was a Thursday
    return (ordinals - (weekday - start) % 7).astype("M8[D]")


class QualityCollector:
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._daily: list[pd.DataFrame] = []
        self._seen: list[pd.DataFrame] = []
        self._marks: list[pd.DataFrame] = []

    def add(self, stage: pd.DataFrame) -> None:
        if stage.empty:
            return
        if self.kind == ImportKind.ATTENDANCE:
            days = stage["date"].to_numpy(dtype="M8[D]")
            present = stage["status"].isin(["present", "late"]).to_numpy()
            frame = pd.DataFrame({"school": stage["school_id"].to_numpy(), "date": days})
            frame["present"] = present.astype(np.int64)
            frame["total"] = 1
            self._daily.append(frame.groupby(["school", "date"], as_index=False).sum())
            seen = pd.DataFrame(
                {
                    "school": stage["school_id"].to_numpy(),
                    "week": week_starts(days),
                    "student": stage["student_id"].to_numpy(),
                }
            ).drop_duplicates()
            self._seen.append(seen)
        elif self.kind == ImportKind.GRADES:
            self._marks.append(
                stage[["student_id", "academic_year", "is_missing"]]
                .groupby(["student_id", "academic_year"], as_index=False)
                .agg(missing=("is_missing", "sum"), total=("is_missing", "size"))
            )

    def summarise(
        self, enrollments: list[tuple[int, int, int, dt.date, dt.date | None, str]]
    ) -> tuple[dict[int, dict[str, Any]], list[DataQualityFlag]]:
        if self.kind == ImportKind.ATTENDANCE and self._daily:
            return self._attendance()
        if self.kind == ImportKind.GRADES and self._marks:
            return self._grades(enrollments)
        return {}, []

    def _attendance(self) -> tuple[dict[int, dict[str, Any]], list[DataQualityFlag]]:
        daily = pd.concat(self._daily).groupby(["school", "date"], as_index=False).sum()
        daily = daily.sort_values(["school", "date"])
        daily["share"] = daily["present"] / daily["total"]
        seen = pd.concat(self._seen).drop_duplicates()
        schools = [int(s) for s in daily["school"].unique()]
        figures: dict[int, dict[str, Any]] = {}
        flags: list[DataQualityFlag] = []

        # Completeness: enrolled students with no record in a week the school reported.
        daily["week"] = week_starts(daily["date"].to_numpy(dtype="M8[D]"))
        weeks = daily.groupby(["school", "week"], as_index=False).agg(
            first=("date", "min"), last=("date", "max")
        )
        enrolled = pd.DataFrame(
            Enrollment.objects.filter(school_id__in=schools)
            .values_list("school_id", "student_id", "entry_date", "exit_date")
            .order_by(),
            columns=["school", "student", "entry", "exit"],
        )
        enrolled["entry"] = pd.to_datetime(enrolled["entry"]).to_numpy(dtype="M8[D]")
        enrolled["exit"] = pd.to_datetime(enrolled["exit"]).to_numpy(dtype="M8[D]")
        seen_counts = seen.groupby(["school", "week"]).size()
        # One max() per school: each is a backward step on the (school, date)
        # index, where GROUP BY would read every attendance row of the schools.
        latest = {
            school: AttendanceRecord.objects.filter(school_id=school).aggregate(latest=Max("date"))[
                "latest"
            ]
            for school in schools
        }
        newest = max((d for d in latest.values() if d is not None), default=None)
        for school in schools:
            rows = daily[daily["school"] == school]
            school_weeks = weeks[weeks["school"] == school]
            mine = enrolled[enrolled["school"] == school]
            entry = mine["entry"].to_numpy(dtype="M8[D]")
            exit_ = mine["exit"].to_numpy(dtype="M8[D]")
            gaps = 0
            week_flags = 0
            for week in school_weeks.itertuples():
                first = np.datetime64(week.first, "D")
                last = np.datetime64(week.last, "D")
                expected = int(((entry <= last) & (np.isnat(exit_) | (exit_ >= first))).sum())
                got = int(seen_counts.get((school, week.week), 0))
                missing = max(expected - got, 0)
                gaps += missing
                if missing and week_flags < MAX_WEEK_FLAGS_PER_SCHOOL:
                    week_flags += 1
                    flags.append(
                        DataQualityFlag(
                            school_id=school,
                            check_code=QualityCheck.NO_ATTENDANCE_WEEK,
                            week_start=pd.Timestamp(week.week).date(),
                            value=missing,
                            detail={"expected": expected, "recorded": got},
                        )
                    )
            shares = rows["share"].to_numpy()
            perfect_days = int((shares >= 1.0).sum())
            zero_days = []
            for i in range(1, len(shares)):
                if shares[i] == 0 and shares[i - 1] >= DROP_FROM_SHARE:
                    zero_days.append(pd.Timestamp(rows["date"].iloc[i]).date())
            school_latest = latest.get(school)
            figures[school] = {
                "days": len(rows),
                "attendance_rate": round(float(rows["present"].sum() / rows["total"].sum()), 4),
                "student_weeks_missing": gaps,
                "perfect_days": perfect_days,
                "zero_days": [d.isoformat() for d in zero_days],
                "latest_date": school_latest.isoformat() if school_latest else None,
            }
            if len(shares) >= PERFECT_MIN_DAYS and perfect_days == len(shares):
                flags.append(
                    DataQualityFlag(
                        school_id=school,
                        check_code=QualityCheck.PERFECT_ATTENDANCE,
                        value=perfect_days,
                        detail={"days": perfect_days},
                    )
                )
            for day in zero_days:
                flags.append(
                    DataQualityFlag(
                        school_id=school,
                        check_code=QualityCheck.DROP_TO_ZERO,
                        week_start=pd.Timestamp(week_starts(np.array([day], "M8[D]"))[0]).date(),
                        value=0.0,
                        detail={"date": day.isoformat()},
                    )
                )
            if newest and school_latest and (newest - school_latest).days > STALE_AFTER_DAYS:
                behind = (newest - school_latest).days
                figures[school]["days_behind"] = behind
                flags.append(
                    DataQualityFlag(
                        school_id=school,
                        check_code=QualityCheck.STALE_DATA,
                        value=behind,
                        detail={"latest": school_latest.isoformat(), "newest": newest.isoformat()},
                    )
                )
        return figures, flags

    def _grades(
        self, enrollments: list[tuple[int, int, int, dt.date, dt.date | None, str]]
    ) -> tuple[dict[int, dict[str, Any]], list[DataQualityFlag]]:
        marks = (
            pd.concat(self._marks).groupby(["student_id", "academic_year"], as_index=False).sum()
        )
        school_of = {(s, y): school for s, school, y, *_rest in enrollments}
        marks["school"] = [
            school_of.get((int(s), int(y)), -1)
            for s, y in zip(marks["student_id"], marks["academic_year"], strict=True)
        ]
        per_school = marks[marks["school"] >= 0].groupby("school")[["missing", "total"]].sum()
        figures: dict[int, dict[str, Any]] = {}
        flags: list[DataQualityFlag] = []
        for school, row in per_school.iterrows():
            share = float(row["missing"] / row["total"]) if row["total"] else 0.0
            figures[int(school)] = {
                "marks": int(row["total"]),
                "missing_marks": int(row["missing"]),
                "missing_share": round(share, 4),
            }
            if share > MISSING_MARKS_SHARE:
                flags.append(
                    DataQualityFlag(
                        school_id=int(school),
                        check_code=QualityCheck.MISSING_MARKS,
                        value=round(share, 4),
                        detail={"missing": int(row["missing"]), "total": int(row["total"])},
                    )
                )
        return figures, flags
