import datetime as dt
from pathlib import Path

import pytest

from apps.common.signals import student_data_changed
from apps.ingestion.models import ImportKind, ImportPolicy, ImportStatus
from apps.students.models import AttendanceRecord, Enrollment, GradeRecord, School, Student
from tests.ingestion.helpers import codes, run_import

pytestmark = pytest.mark.django_db

ATTENDANCE = (
    "student_id,eiin,date,status\n"
    "S-1,100001,2026-03-01,present\n"
    "S-2,100001,2026-03-01,absent\n"
    "S-3,100001,2026-03-01,late\n"
)


def test_it_imports_attendance_and_a_second_import_changes_nothing(world, tmp_path: Path) -> None:
    received: list[dict] = []

    def listener(sender: object, **kwargs: object) -> None:
        received.append(kwargs)

    student_data_changed.connect(listener)
    try:
        first = run_import(tmp_path, ImportKind.ATTENDANCE, ATTENDANCE)
        assert first.status == ImportStatus.DONE, codes(first)
        assert (first.rows_read, first.rows_inserted, first.rows_unchanged) == (3, 3, 0)
        assert AttendanceRecord.objects.count() == 3
        second = run_import(tmp_path, ImportKind.ATTENDANCE, ATTENDANCE, name="again.csv")
        assert (second.rows_inserted, second.rows_updated, second.rows_unchanged) == (0, 0, 3)
        assert second.same_file_as == first
        corrected = ATTENDANCE.replace(
            "S-2,100001,2026-03-01,absent", "S-2,100001,2026-03-01,excused"
        )
        third = run_import(tmp_path, ImportKind.ATTENDANCE, corrected, name="fixed.csv")
        assert (third.rows_inserted, third.rows_updated, third.rows_unchanged) == (0, 1, 2)
        assert AttendanceRecord.objects.get(student__student_id="S-2").status == "excused"
    finally:
        student_data_changed.disconnect(listener)
    # on_commit callbacks run in the test's transaction only when captured;
    # see test_the_signal_is_sent_after_commit.
    assert AttendanceRecord.objects.count() == 3


def test_a_holiday_import_refreshes_the_students_enrolled_that_year(
    world, tmp_path: Path, django_capture_on_commit_callbacks
) -> None:
    received: list[dict] = []

    def listener(sender: object, **kwargs: object) -> None:
        received.append(kwargs)

    holidays = "date,name\n2026-03-26,Independence Day\n2026-12-16,Victory Day\n"
    student_data_changed.connect(listener)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            job = run_import(tmp_path, ImportKind.HOLIDAYS, holidays)
        assert job.status == ImportStatus.DONE, codes(job)
        with django_capture_on_commit_callbacks(execute=True):
            run_import(tmp_path, ImportKind.HOLIDAYS, holidays, name="again.csv")
    finally:
        student_data_changed.disconnect(listener)
    # Once: the unchanged re-import changes no school day.
    assert len(received) == 1
    sent = received[0]
    assert sent["student_ids"] == sorted(s.pk for s in world["students"])
    assert (sent["since"], sent["until"]) == (dt.date(2026, 3, 26), dt.date(2026, 12, 16))
    assert sent["kinds"] == ["calendar"]


def test_the_signal_is_sent_after_commit_with_the_changed_students(
    world, tmp_path: Path, django_capture_on_commit_callbacks
) -> None:
    received: list[dict] = []

    def listener(sender: object, **kwargs: object) -> None:
        received.append(kwargs)

    student_data_changed.connect(listener)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            job = run_import(tmp_path, ImportKind.ATTENDANCE, ATTENDANCE)
        with django_capture_on_commit_callbacks(execute=True):
            run_import(tmp_path, ImportKind.ATTENDANCE, ATTENDANCE, name="again.csv")
        with django_capture_on_commit_callbacks(execute=True):
            run_import(tmp_path, ImportKind.ATTENDANCE, ATTENDANCE, name="dry.csv", dry_run=True)
    finally:
        student_data_changed.disconnect(listener)
    assert len(received) == 1  # not for the unchanged re-import, not for the dry run
    sent = received[0]
    assert sorted(sent["student_ids"]) == sorted(s.pk for s in world["students"])
    assert sent["since"] == sent["until"] == dt.date(2026, 3, 1)
    assert sent["kinds"] == ["attendance"]
    assert sent["source"] == f"import:{job.pk}"


def test_a_dry_run_reports_the_counts_and_writes_nothing(world, tmp_path: Path) -> None:
    job = run_import(tmp_path, ImportKind.ATTENDANCE, ATTENDANCE, dry_run=True)
    assert job.status == ImportStatus.DONE
    assert job.rows_inserted == 3
    assert AttendanceRecord.objects.count() == 0


def test_headers_are_matched_by_alias_case_and_bengali(world, tmp_path: Path) -> None:
    content = "শিক্ষার্থী আইডি; School Code ;Date;  STATUS  \nS-1;100001;2026-03-01;P\n"
    job = run_import(tmp_path, ImportKind.ATTENDANCE, content)
    assert job.status == ImportStatus.DONE, codes(job)
    assert job.column_map == {
        "শিক্ষার্থী আইডি": "student_id",
        "School Code": "eiin",
        "Date": "date",
        "STATUS": "status",
    }
    assert AttendanceRecord.objects.get().status == "present"


def test_three_date_formats_are_read_day_first(world, tmp_path: Path) -> None:
    content = (
        "student_id\teiin\tdate\tstatus\n"
        "S-1\t100001\t2026-03-01\tpresent\n"
        "S-1\t100001\t02/03/2026\tpresent\n"
        "S-1\t100001\t03-03-2026\tabsent\n"
    )
    job = run_import(tmp_path, ImportKind.ATTENDANCE, content)
    assert job.status == ImportStatus.DONE, codes(job)
    days = sorted(AttendanceRecord.objects.values_list("date", flat=True))
    assert days == [dt.date(2026, 3, 1), dt.date(2026, 3, 2), dt.date(2026, 3, 3)]


def test_bengali_digits_are_numbers_and_dates(world, tmp_path: Path) -> None:
    content = (
        "student_id,academic_year,term,subject,assessment,assessment_date,score,max_score\n"
        "S-1,২০২৬,Term 1,MATH,Half-yearly,১৬/০৬/২০২৬,৫৫.৫,১০০\n"
    )
    job = run_import(tmp_path, ImportKind.GRADES, content)
    assert job.status == ImportStatus.DONE, codes(job)
    grade = GradeRecord.objects.get()
    assert (float(grade.score), float(grade.max_score), grade.assessment_date) == (
        55.5,
        100.0,
        dt.date(2026, 6, 16),
    )


def test_a_missing_required_column_rejects_the_file(world, tmp_path: Path) -> None:
    job = run_import(
        tmp_path, ImportKind.ATTENDANCE, "student_id,eiin,date\nS-1,100001,2026-03-01\n"
    )
    assert job.status == ImportStatus.REJECTED
    problem = job.problems.get()
    assert problem.code == "missing_column"
    assert "status" in problem.message
    assert AttendanceRecord.objects.count() == 0


def test_extra_columns_are_ignored_with_a_warning(world, tmp_path: Path) -> None:
    content = "student_id,eiin,date,status,teacher\nS-1,100001,2026-03-01,present,Mr X\n"
    job = run_import(tmp_path, ImportKind.ATTENDANCE, content)
    assert job.status == ImportStatus.DONE
    assert {"code": "ignored_column", "params": {"column": "teacher"}} in job.warnings


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (b"", "empty_file"),
        (b"\n\n  \n", "empty_file"),
        (b"student_id,eiin,date,status\n", "header_only"),
    ],
)
def test_empty_and_header_only_files_are_rejected(
    world, tmp_path: Path, content: bytes, code: str
) -> None:
    job = run_import(tmp_path, ImportKind.ATTENDANCE, content)
    assert job.status == ImportStatus.REJECTED
    assert codes(job) == [code]


def test_a_utf8_bom_and_utf16_are_read(world, tmp_path: Path) -> None:
    job = run_import(tmp_path, ImportKind.ATTENDANCE, "\ufeff" + ATTENDANCE)
    assert job.status == ImportStatus.DONE and job.column_map["student_id"] == "student_id"
    job = run_import(tmp_path, ImportKind.ATTENDANCE, ATTENDANCE.encode("utf-16"), name="u16.csv")
    assert job.status == ImportStatus.DONE, codes(job)
    assert job.encoding == "utf-16"
    assert job.rows_unchanged == 3


def test_windows_1252_is_read_with_a_warning(world, tmp_path: Path) -> None:
    content = (
        "student_id,name,gender,eiin,academic_year,grade_level,entry_date\n"
        "S-9,José Café,male,100001,2026,7,2026-01-05\n"
    ).encode("cp1252")
    job = run_import(tmp_path, ImportKind.ROSTER, content)
    assert job.status == ImportStatus.DONE, codes(job)
    assert job.encoding == "cp1252"
    assert job.warnings[0]["code"] == "windows_1252"
    assert Student.objects.get(student_id="S-9").name == "José Café"


def test_text_in_no_known_encoding_is_rejected(world, tmp_path: Path) -> None:
    # 0x81 and 0x8d are invalid UTF-8 here and unassigned in Windows-1252.
    job = run_import(tmp_path, ImportKind.ATTENDANCE, ATTENDANCE.encode() + b"S-1,\x81\x8d,x,y\n")
    assert job.status == ImportStatus.REJECTED
    assert codes(job) == ["unknown_encoding"]


def test_a_binary_file_is_rejected_by_content_not_name(world, tmp_path: Path) -> None:
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(200)
    job = run_import(tmp_path, ImportKind.ATTENDANCE, png, name="attendance.csv")
    assert job.status == ImportStatus.REJECTED
    assert codes(job) == ["not_csv_or_xlsx"]


def test_duplicates_unknown_students_and_bad_values_reject_everything(
    world, tmp_path: Path
) -> None:
    content = ATTENDANCE + (
        "S-1,100001,2026-03-01,present\n"  # line 5 repeats line 2
        "S-404,100001,2026-03-02,present\n"
        "S-1,100001,2026-03-02,sleeping\n"
        "S-1,999999,2026-03-03,present\n"
        "S-1,100001,2025-03-03,present\n"  # not enrolled in 2025
        "S-1,100001,2099-03-03,present\n"
    )
    job = run_import(tmp_path, ImportKind.ATTENDANCE, content)
    assert job.status == ImportStatus.REJECTED
    found = {(p.line, p.code) for p in job.problems.all()}
    assert found == {
        (5, "duplicate_row"),
        (6, "unknown_student"),
        (7, "not_allowed"),
        (8, "unknown_school"),
        (9, "not_enrolled"),
        (10, "future_date"),
    }
    duplicate = job.problems.get(code="duplicate_row")
    assert duplicate.params == {"first_line": 2}
    unknown = job.problems.get(code="unknown_student")
    assert (unknown.column, unknown.value) == ("student_id", "S-404")
    assert "S-404" in unknown.message
    assert AttendanceRecord.objects.count() == 0


def test_skip_invalid_stores_the_valid_rows(world, tmp_path: Path) -> None:
    content = ATTENDANCE + "S-1,100001,2026-03-01,present\nS-404,100001,2026-03-02,present\n"
    job = run_import(tmp_path, ImportKind.ATTENDANCE, content, policy=ImportPolicy.SKIP_INVALID)
    assert job.status == ImportStatus.DONE
    assert (job.rows_read, job.rows_inserted, job.rows_rejected, job.error_count) == (5, 3, 2, 2)
    assert AttendanceRecord.objects.count() == 3


def test_attendance_has_no_orphans_without_database_foreign_keys(world, tmp_path: Path) -> None:
    # The attendance table has no FK constraints (students/0004): the import's
    # reference checks and the ORM's cascades are what keep it orphan-free.
    content = ATTENDANCE + (
        "S-404,100001,2026-03-02,present\n"  # unknown student
        "S-1,999999,2026-03-02,present\n"  # unknown school
    )
    job = run_import(tmp_path, ImportKind.ATTENDANCE, content, policy=ImportPolicy.SKIP_INVALID)
    assert job.status == ImportStatus.DONE
    assert (job.rows_inserted, job.rows_rejected) == (3, 2)

    def orphans() -> int:
        return (
            AttendanceRecord.objects.exclude(student_id__in=Student.objects.values("pk")).count()
            + AttendanceRecord.objects.exclude(school_id__in=School.objects.values("pk")).count()
        )

    assert orphans() == 0
    Student.objects.get(student_id="S-1").delete()  # the ORM cascades
    assert AttendanceRecord.objects.count() == 2
    assert orphans() == 0


def test_values_out_of_range_are_reported(world, tmp_path: Path) -> None:
    roster = (
        "student_id,name,gender,eiin,academic_year,grade_level,entry_date\n"
        "S-7,Rina,female,100002,2026,13,2026-01-05\n"
        "S-8,Mina,female,100002,2026,7,2025-12-30\n"
    )
    job = run_import(tmp_path, ImportKind.ROSTER, roster)
    assert [(p.line, p.code) for p in job.problems.order_by("line")] == [
        (2, "above_maximum"),
        (3, "outside_academic_year"),
    ]
    grades = (
        "student_id,academic_year,term,subject,assessment,assessment_date,score,max_score\n"
        "S-1,2026,Term 1,MATH,Test,2026-03-10,25,20\n"
        "S-1,2026,Term 1,MATH,Exam,2027-01-10,5,20\n"
    )
    job = run_import(tmp_path, ImportKind.GRADES, grades, name="g.csv")
    assert codes(job) == ["score_above_max", "outside_academic_year"]
    assert Student.objects.filter(student_id__in=["S-7", "S-8"]).count() == 0
    assert GradeRecord.objects.count() == 0


def test_a_50_mb_cell_is_reported_not_loaded(world, tmp_path: Path) -> None:
    content = (
        b"student_id,eiin,date,status\n"
        + b"S-1,100001,2026-03-01,"
        + b"x" * (50 * 1024 * 1024)
        + b"\n"
    )
    job = run_import(tmp_path, ImportKind.ATTENDANCE, content)
    assert job.status == ImportStatus.REJECTED
    problem = job.problems.get()
    assert problem.code == "too_long"
    assert len(problem.value) <= 200
    assert problem.params["length"] == 50 * 1024 * 1024


def test_a_file_cut_off_mid_row_is_rejected(world, tmp_path: Path) -> None:
    job = run_import(tmp_path, ImportKind.ATTENDANCE, ATTENDANCE + "S-1,1000")
    assert job.status == ImportStatus.REJECTED
    assert (5, "too_few_columns") in {(p.line, p.code) for p in job.problems.all()}
    assert AttendanceRecord.objects.count() == 0


def test_a_roster_creates_students_and_enrollments_and_a_transfer_in_one_file(
    world, tmp_path: Path
) -> None:
    roster = (
        "student_id,name,name_bn,gender,eiin,academic_year,grade_level,section,entry_date,exit_date,exit_reason\n"
        "S-1,Rahim,রহিম,male,100001,2026,7,A,2026-01-01,2026-05-01,transferred\n"
        "S-1,Rahim,রহিম,male,100002,2026,7,B,2026-05-01,,\n"
    )
    job = run_import(tmp_path, ImportKind.ROSTER, roster)
    assert job.status == ImportStatus.DONE, list(job.problems.values_list("code", "params"))
    assert Student.objects.get(student_id="S-1").name_bn == "রহিম"
    enrollments = Enrollment.objects.filter(student__student_id="S-1").order_by("entry_date")
    assert [(e.school.eiin, e.exit_reason) for e in enrollments] == [
        ("100001", "transferred"),
        ("100002", ""),
    ]
    # A roster without the exit must not reopen the first enrollment; it
    # conflicts with the open one at the other school instead.
    again = run_import(
        tmp_path,
        ImportKind.ROSTER,
        "student_id,name,gender,eiin,academic_year,grade_level,entry_date\n"
        "S-2,Karim,male,100002,2026,7,2026-02-01\n",
        name="r2.csv",
    )
    assert codes(again) == ["already_enrolled"]


def test_exits_close_enrollments(world, tmp_path: Path) -> None:
    content = (
        "student_id,eiin,academic_year,exit_date,exit_reason\n"
        "S-1,100001,2026,2026-04-01,Dropped out\n"
        "S-2,100002,2026,2026-04-01,dropped_out\n"
    )
    job = run_import(tmp_path, ImportKind.EXITS, content, policy=ImportPolicy.SKIP_INVALID)
    assert codes(job) == ["no_enrollment"]
    enrollment = Enrollment.objects.get(student__student_id="S-1")
    assert (enrollment.exit_date, enrollment.exit_reason) == (dt.date(2026, 4, 1), "dropped_out")
