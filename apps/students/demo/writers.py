"""Write a generated district out as the import files of docs/data-formats.md."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

from apps.common.xlsx import xlsx_file
from apps.students.demo.generator import DemoDistrict

ROSTER_COLUMNS = [
    "student_id",
    "name",
    "name_bn",
    "gender",
    "date_of_birth",
    "guardian_name",
    "guardian_phone",
    "stipend_recipient",
    "has_disability",
    "eiin",
    "academic_year",
    "grade_level",
    "section",
    "entry_date",
]
EXIT_COLUMNS = ["student_id", "eiin", "academic_year", "exit_date", "exit_reason"]
GRADE_COLUMNS = [
    "student_id",
    "academic_year",
    "term",
    "subject",
    "assessment",
    "assessment_date",
    "score",
    "max_score",
]


def _dates(values: pd.Series) -> list[dt.date | None]:
    return [None if pd.isna(v) else pd.Timestamp(v).date() for v in values]


def roster_frame(district: DemoDistrict) -> pd.DataFrame:
    """One row per enrollment with the student's details, as districts export them.

    A transfer closes one enrollment and opens another in the same year, so
    the roster carries the exit of transferred enrollments (a student can be
    open at one school at a time); other exits come in exits.csv.
    """
    joined = district.enrollments.merge(district.students, on="student_id", how="left")
    joined["entry_date"] = _dates(joined["entry_date"])
    transferred = joined["exit_reason"] == "transferred"
    joined["exit_date"] = [
        d if t else None for d, t in zip(_dates(joined["exit_date"]), transferred, strict=True)
    ]
    joined["exit_reason"] = joined["exit_reason"].where(transferred, "")
    return joined[[*ROSTER_COLUMNS, "exit_date", "exit_reason"]]


def exits_frame(district: DemoDistrict) -> pd.DataFrame:
    exits = district.enrollments[district.enrollments["exit_reason"] != ""].copy()
    exits["exit_date"] = _dates(exits["exit_date"])
    return exits[EXIT_COLUMNS]


def _write_xlsx(frame: pd.DataFrame, path: Path, sheet: str) -> None:
    rows = (
        [None if (isinstance(v, float) and np.isnan(v)) else v for v in row]
        for row in frame.itertuples(index=False)
    )
    xlsx_file(path, sheet, list(frame.columns), rows)


def district_to_files(district: DemoDistrict, out_dir: Path, *, xlsx: bool = True) -> list[Path]:
    """The same district as the CSV and XLSX files documented in docs/data-formats.md."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.glob("attendance_*.csv"):
        stale.unlink()  # years of an earlier, longer district
    written: list[Path] = []

    def csv(frame: pd.DataFrame, name: str) -> None:
        path = out_dir / name
        frame.to_csv(path, index=False, date_format="%Y-%m-%d")
        written.append(path)

    schools = district.schools[["eiin", "name", "name_bn", "school_type", "district", "upazila"]]
    csv(schools, "schools.csv")
    roster = roster_frame(district)
    csv(roster, "roster.csv")
    csv(exits_frame(district), "exits.csv")
    attendance = district.attendance.copy()
    attendance["year"] = pd.DatetimeIndex(attendance["date"]).year
    for year, frame in attendance.groupby("year"):
        csv(frame.drop(columns="year"), f"attendance_{year}.csv")
    grades = district.grades.copy()
    grades["assessment_date"] = _dates(grades["assessment_date"])
    csv(grades[GRADE_COLUMNS], "grades.csv")
    incidents = district.incidents.copy()
    incidents["date"] = _dates(incidents["date"])
    csv(incidents, "incidents.csv")
    csv(district.holidays, "holidays.csv")
    if not xlsx:
        return written
    for frame, name, sheet in (
        (roster, "roster.xlsx", "Roster"),
        (grades[GRADE_COLUMNS], "grades.xlsx", "Marks"),
        (incidents, "incidents.xlsx", "Incidents"),
    ):
        _write_xlsx(frame, out_dir / name, sheet)
        written.append(out_dir / name)
    return written
