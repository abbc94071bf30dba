import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from django.core.management import CommandError, call_command
from openpyxl import load_workbook

from apps.students.demo.generator import DemoConfig, DemoDistrict, generate_district
from apps.students.models import AttendanceRecord, Enrollment, GradeRecord, School, Student
from apps.students.services import REGIONS_DATA_DIR

AS_OF = dt.date(2026, 9, 30)


def _kurigram_upazilas() -> pd.DataFrame:
    districts = pd.read_csv(REGIONS_DATA_DIR / "districts.csv")
    upazilas = pd.read_csv(REGIONS_DATA_DIR / "upazilas.csv")
    district_id = districts.loc[districts["name"] == "Kurigram", "id"].iloc[0]
    return upazilas[upazilas["district_id"] == district_id]


@pytest.fixture(scope="module")
def district() -> DemoDistrict:
    return generate_district(
        DemoConfig(schools=4, students=1500, years=2, seed=7, as_of=AS_OF), _kurigram_upazilas()
    )


def test_the_same_seed_gives_the_same_district(district: DemoDistrict) -> None:
    again = generate_district(
        DemoConfig(schools=4, students=1500, years=2, seed=7, as_of=AS_OF), _kurigram_upazilas()
    )
    for name in ("schools", "students", "enrollments", "attendance", "grades", "incidents"):
        pd.testing.assert_frame_equal(getattr(district, name), getattr(again, name))


def test_another_seed_gives_another_district(district: DemoDistrict) -> None:
    other = generate_district(
        DemoConfig(schools=4, students=1500, years=2, seed=8, as_of=AS_OF), _kurigram_upazilas()
    )
    assert not district.attendance["status"].equals(other.attendance["status"])


def test_every_exit_kind_occurs(district: DemoDistrict) -> None:
    reasons = set(district.enrollments["exit_reason"])
    assert {"dropped_out", "transferred", "graduated"} <= reasons
    annual = district.enrollments[district.enrollments["academic_year"] == 2025]
    dropout_rate = (annual["exit_reason"] == "dropped_out").mean()
    assert 0.03 < dropout_rate < 0.2


def test_no_data_after_the_as_of_date_and_none_on_fridays(district: DemoDistrict) -> None:
    dates = pd.DatetimeIndex(district.attendance["date"])
    assert dates.max() <= pd.Timestamp(AS_OF)
    assert not (dates.day_of_week == 4).any()  # Friday
    assert not dates.isin(pd.to_datetime(["2026-03-26", "2025-12-16"])).any()


def _attendance_rate_before_exit(district: DemoDistrict, weeks: int) -> pd.Series:
    exits = district.enrollments[district.enrollments["exit_reason"] == "dropped_out"]
    frame = district.attendance.merge(exits[["student_id", "exit_date"]], on="student_id")
    window = frame[
        (frame["date"] < frame["exit_date"] - pd.Timedelta(days=21))
        & (frame["date"] >= frame["exit_date"] - pd.Timedelta(weeks=weeks + 3))
    ]
    return window.groupby("student_id")["status"].apply(
        lambda s: s.isin(["present", "late"]).mean()
    )


def test_dropouts_have_falling_attendance_before_they_leave(district: DemoDistrict) -> None:
    overall = district.attendance["status"].isin(["present", "late"]).mean()
    before_exit = _attendance_rate_before_exit(district, weeks=6)
    assert before_exit.mean() < overall - 0.15
    # ...but some leave with no warning at all, as real ones do.
    assert (before_exit > overall).sum() >= 3


def test_dropouts_fail_more_and_have_more_incidents(district: DemoDistrict) -> None:
    dropped = set(
        district.enrollments.loc[district.enrollments["exit_reason"] == "dropped_out", "student_id"]
    )
    grades = district.grades.assign(share=district.grades["score"] / district.grades["max_score"])
    is_dropout = grades["student_id"].isin(dropped)
    assert grades.loc[is_dropout, "share"].mean() < grades.loc[~is_dropout, "share"].mean()
    assert (
        grades.loc[is_dropout, "score"].isna().mean()
        > grades.loc[~is_dropout, "score"].isna().mean()
    )
    per_student = district.incidents.groupby("student_id").size()
    assert (
        per_student.reindex(list(dropped), fill_value=0).mean()
        > per_student.reindex(
            list(set(district.students["student_id"]) - dropped), fill_value=0
        ).mean()
    )


def test_names_come_in_both_scripts(district: DemoDistrict) -> None:
    student = district.students.iloc[0]
    assert student["name"].isascii()
    assert any("\u0980" <= ch <= "\u09ff" for ch in student["name_bn"])
    assert np.all(district.students["student_id"].str.match(r"^KUR-\d{6}$"))


@pytest.mark.django_db
def test_the_command_loads_the_district_and_refuses_a_second_load() -> None:
    call_command(
        "generate_demo_data",
        "--schools",
        "2",
        "--students",
        "120",
        "--years",
        "1",
        "--as-of",
        "2026-04-30",
    )
    assert School.objects.count() == 2
    assert Student.objects.count() == 120
    assert Enrollment.objects.filter(academic_year=2026).count() >= 120
    assert AttendanceRecord.objects.count() > 120 * 50
    assert GradeRecord.objects.filter(is_missing=False).exists()
    with pytest.raises(CommandError, match="already holds students"):
        call_command("generate_demo_data", "--students", "120", "--as-of", "2026-04-30")
    call_command("generate_demo_data", "--students", "120", "--if-empty")
    assert Student.objects.count() == 120


@pytest.mark.django_db
def test_the_command_writes_import_files(tmp_path: Path) -> None:
    call_command(
        "generate_demo_data",
        "--schools",
        "2",
        "--students",
        "60",
        "--years",
        "2",
        "--as-of",
        "2026-04-30",
        "--out",
        str(tmp_path),
    )
    names = {path.name for path in tmp_path.iterdir()}
    assert {
        "schools.csv",
        "roster.csv",
        "exits.csv",
        "attendance_2025.csv",
        "attendance_2026.csv",
        "grades.csv",
        "incidents.csv",
        "roster.xlsx",
        "grades.xlsx",
    } <= names
    roster = pd.read_csv(tmp_path / "roster.csv")
    assert list(roster.columns)[:3] == ["student_id", "name", "name_bn"]
    # Only transfers carry their exit in the roster; the rest come in exits.csv.
    assert set(roster["exit_reason"].dropna()) <= {"transferred"}
    sheet = load_workbook(tmp_path / "grades.xlsx", read_only=True).active
    header = next(sheet.iter_rows(values_only=True))
    assert header[:3] == ("student_id", "academic_year", "term")
