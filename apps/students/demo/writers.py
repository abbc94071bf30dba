"""Put a generated district into the database, or write it out as import files."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
from django.db import transaction
from django.utils import timezone
from openpyxl import Workbook

from apps.common.bulk import bulk_insert_rows
from apps.students.demo.generator import DemoDistrict
from apps.students.models import (
    AttendanceRecord,
    DisciplineIncident,
    Enrollment,
    GradeRecord,
    Holiday,
    Region,
    RegionLevel,
    School,
    Student,
    Subject,
)

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
    """One row per enrollment with the student's details, as districts export them."""
    joined = district.enrollments.merge(district.students, on="student_id", how="left")
    joined["entry_date"] = _dates(joined["entry_date"])
    return joined[ROSTER_COLUMNS]


def exits_frame(district: DemoDistrict) -> pd.DataFrame:
    exits = district.enrollments[district.enrollments["exit_reason"] != ""].copy()
    exits["exit_date"] = _dates(exits["exit_date"])
    return exits[EXIT_COLUMNS]


@transaction.atomic
def district_to_database(district: DemoDistrict) -> dict[str, int]:
    """Write the district straight into the tables (the demo's fast path)."""
    region_by_name = {
        r.name: r
        for r in Region.objects.filter(level=RegionLevel.UPAZILA, parent__name=district.district)
    }
    schools = [
        School(
            eiin=row.eiin,
            name=row.name,
            name_bn=row.name_bn,
            school_type=row.school_type,
            region=region_by_name[row.upazila],
        )
        for row in district.schools.itertuples()
    ]
    School.objects.bulk_create(schools)
    school_pk = dict(School.objects.values_list("eiin", "pk"))

    students = district.students
    Student.objects.bulk_create(
        Student(
            student_id=row.student_id,
            name=row.name,
            name_bn=row.name_bn,
            gender=row.gender,
            date_of_birth=row.date_of_birth,
            guardian_name=row.guardian_name,
            guardian_phone=row.guardian_phone,
            stipend_recipient=bool(row.stipend_recipient),
            has_disability=bool(row.has_disability),
        )
        for row in students.itertuples()
    )
    student_pk = dict(Student.objects.values_list("student_id", "pk"))

    enrollments = district.enrollments
    Enrollment.objects.bulk_create(
        Enrollment(
            student_id=student_pk[row.student_id],
            school_id=school_pk[row.eiin],
            academic_year=int(row.academic_year),
            grade_level=int(row.grade_level),
            section=row.section,
            entry_date=pd.Timestamp(row.entry_date).date(),
            exit_date=None if pd.isna(row.exit_date) else pd.Timestamp(row.exit_date).date(),
            exit_reason=row.exit_reason,
        )
        for row in enrollments.itertuples()
    )

    Holiday.objects.bulk_create(
        (
            Holiday(date=row.date, name=row.name, name_bn=row.name_bn)
            for row in district.holidays.itertuples()
        ),
        ignore_conflicts=True,
    )

    # Sorted by the unique key so index pages fill in order; ISO strings skip
    # the driver's per-value date adaptation.
    attendance = district.attendance.assign(
        student_pk=district.attendance["student_id"].map(student_pk),
        school_pk=district.attendance["eiin"].map(school_pk),
    ).sort_values(["student_pk", "date"])
    attendance_rows = zip(
        attendance["student_pk"].tolist(),
        attendance["school_pk"].tolist(),
        pd.DatetimeIndex(attendance["date"]).strftime("%Y-%m-%d").tolist(),
        attendance["status"].tolist(),
        strict=True,
    )
    attendance_count = bulk_insert_rows(
        AttendanceRecord._meta.db_table,
        ["student_id", "school_id", "date", "status"],
        attendance_rows,
    )

    now = timezone.now()
    subject_pk = dict(Subject.objects.values_list("code", "pk"))
    grades = district.grades
    missing = grades["score"].isna().to_numpy()
    grade_rows = zip(
        grades["student_id"].map(student_pk).tolist(),
        grades["subject"].map(subject_pk).tolist(),
        grades["academic_year"].astype(int).tolist(),
        grades["term"].tolist(),
        grades["assessment"].tolist(),
        _dates(grades["assessment_date"]),
        [None if m else float(s) for m, s in zip(missing, grades["score"].to_numpy(), strict=True)],
        grades["max_score"].astype(float).tolist(),
        missing.tolist(),
        [now] * len(grades),
        [now] * len(grades),
        strict=True,
    )
    grade_count = bulk_insert_rows(
        GradeRecord._meta.db_table,
        [
            "student_id",
            "subject_id",
            "academic_year",
            "term",
            "assessment",
            "assessment_date",
            "score",
            "max_score",
            "is_missing",
            "created_at",
            "updated_at",
        ],
        grade_rows,
    )

    incidents = district.incidents
    DisciplineIncident.objects.bulk_create(
        DisciplineIncident(
            student_id=student_pk[row.student_id],
            school_id=school_pk[row.eiin],
            date=pd.Timestamp(row.date).date(),
            category=row.category,
            severity=int(row.severity),
            action_taken=row.action_taken,
            days_suspended=int(row.days_suspended),
        )
        for row in incidents.itertuples()
    )
    return {
        "schools": len(schools),
        "students": len(students),
        "enrollments": len(enrollments),
        "attendance": attendance_count,
        "grades": grade_count,
        "incidents": len(incidents),
    }


def _write_xlsx(frame: pd.DataFrame, path: Path, sheet: str) -> None:
    # write_only keeps memory flat for tens of thousands of rows.
    workbook = Workbook(write_only=True)
    worksheet = workbook.create_sheet(sheet)
    worksheet.append(list(frame.columns))
    for row in frame.itertuples(index=False):
        worksheet.append([None if (isinstance(v, float) and np.isnan(v)) else v for v in row])
    workbook.save(path)


def district_to_files(district: DemoDistrict, out_dir: Path) -> list[Path]:
    """The same district as the CSV and XLSX files documented in docs/data-formats.md."""
    out_dir.mkdir(parents=True, exist_ok=True)
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
    for frame, name, sheet in (
        (roster, "roster.xlsx", "Roster"),
        (grades[GRADE_COLUMNS], "grades.xlsx", "Marks"),
        (incidents, "incidents.xlsx", "Incidents"),
    ):
        _write_xlsx(frame, out_dir / name, sheet)
        written.append(out_dir / name)
    return written
