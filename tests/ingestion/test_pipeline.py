"""Loading beside validation: chunk by chunk inside the job's one transaction."""

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
from django.core.cache import cache

from apps.ingestion import loading
from apps.ingestion.models import ImportJob, ImportKind, ImportPolicy, ImportStatus
from apps.ingestion.pipeline import Duplicates
from apps.ingestion.services import import_job_create, import_job_progress, import_job_run
from apps.students.models import AttendanceRecord
from tests.ingestion.helpers import codes

pytestmark = pytest.mark.django_db

HEADER = "student_id,eiin,date,status\n"


def _days(first: dt.date, count: int) -> list[dt.date]:
    return [first + dt.timedelta(days=i) for i in range(count)]


def _rows(days: list[dt.date], status: str = "present") -> list[str]:
    return [f"S-{s},100001,{day},{status}" for day in days for s in (1, 2, 3)]


def _run(
    tmp_path: Path,
    rows: list[str],
    *,
    name: str = "attendance.csv",
    policy: str = ImportPolicy.ALL_OR_NOTHING,
    dry_run: bool = False,
    chunk_rows: int = 4,
) -> ImportJob:
    path = tmp_path / name
    path.write_text(HEADER + "\n".join(rows) + "\n")
    job = import_job_create(
        kind=ImportKind.ATTENDANCE,
        source=path,
        file_name=name,
        policy=policy,
        dry_run=dry_run,
    )
    return import_job_run(job_id=job.pk, chunk_rows=chunk_rows)


def test_an_error_in_the_last_chunk_undoes_the_chunks_already_loaded(world, tmp_path) -> None:
    rows = _rows(_days(dt.date(2026, 3, 1), 4))  # 12 rows: 3 chunks of 4
    rows[-1] = rows[-1].replace("present", "sleeping")  # line 13
    job = _run(tmp_path, rows)
    assert job.status == ImportStatus.REJECTED
    assert [(p.line, p.code) for p in job.problems.all()] == [(13, "not_allowed")]
    assert (job.rows_read, job.rows_rejected, job.error_count) == (12, 1, 1)
    assert AttendanceRecord.objects.count() == 0


def test_an_error_in_the_first_chunk_still_reports_the_whole_file(world, tmp_path) -> None:
    rows = _rows(_days(dt.date(2026, 3, 1), 4))
    rows[0] = rows[0].replace("S-1", "S-404")  # line 2
    rows[10] = rows[10].replace("100001", "999999")  # line 12, in the third chunk
    job = _run(tmp_path, rows)
    assert job.status == ImportStatus.REJECTED
    assert [(p.line, p.code) for p in job.problems.order_by("line")] == [
        (2, "unknown_student"),
        (12, "unknown_school"),
    ]
    assert job.rows_read == 12
    assert AttendanceRecord.objects.count() == 0


def test_a_row_repeating_one_of_an_earlier_chunk_is_a_duplicate_of_that_line(
    world, tmp_path
) -> None:
    rows = _rows(_days(dt.date(2026, 3, 1), 3))  # lines 2..10
    rows.append(rows[1])  # line 11 repeats line 3, two chunks earlier
    job = _run(tmp_path, rows)
    assert job.status == ImportStatus.REJECTED
    duplicate = job.problems.get()
    assert (duplicate.line, duplicate.code, duplicate.params) == (
        11,
        "duplicate_row",
        {"first_line": 3},
    )
    assert AttendanceRecord.objects.count() == 0


def test_skip_invalid_keeps_the_first_of_repeated_rows_across_chunks(world, tmp_path) -> None:
    rows = _rows(_days(dt.date(2026, 3, 1), 3))
    rows.append(rows[1].replace("present", "absent"))  # line 11 repeats line 3's key
    job = _run(tmp_path, rows, policy=ImportPolicy.SKIP_INVALID)
    assert job.status == ImportStatus.DONE, codes(job)
    assert (job.rows_read, job.rows_inserted, job.rows_rejected) == (10, 9, 1)
    assert codes(job) == ["duplicate_row"]
    kept = AttendanceRecord.objects.get(student__student_id="S-2", date=dt.date(2026, 3, 1))
    assert kept.status == "present"


def test_chunks_of_new_rows_and_chunks_of_stored_rows_in_one_file(world, tmp_path) -> None:
    march = _days(dt.date(2026, 3, 1), 2)
    first = _run(tmp_path, _rows(march), name="march.csv")
    assert (first.rows_inserted, first.rows_unchanged) == (6, 0)
    # Chunk 1 holds stored keys, chunk 2 stored ones (one changed) and new
    # ones, chunk 3 only new days.
    rows = _rows(march) + _rows(_days(dt.date(2026, 3, 3), 2))
    rows[4] = rows[4].replace("present", "late")  # S-2 on March 2
    job = _run(tmp_path, rows, name="march-and-more.csv", chunk_rows=4)
    assert job.status == ImportStatus.DONE, codes(job)
    assert (job.rows_inserted, job.rows_updated, job.rows_unchanged) == (6, 1, 5)
    assert job.quality["tables"]["attendance"] == {"inserted": 6, "updated": 1, "unchanged": 5}
    assert AttendanceRecord.objects.count() == 12
    changed = AttendanceRecord.objects.get(student__student_id="S-2", date=dt.date(2026, 3, 2))
    assert changed.status == "late"
    again = _run(tmp_path, rows, name="again.csv", chunk_rows=3)
    assert (again.rows_inserted, again.rows_updated, again.rows_unchanged) == (0, 0, 12)


def test_a_dry_run_in_chunks_counts_everything_and_writes_nothing(world, tmp_path) -> None:
    rows = _rows(_days(dt.date(2026, 3, 1), 3)) + ["S-404,100001,2026-03-04,present"]
    job = _run(tmp_path, rows, policy=ImportPolicy.SKIP_INVALID, dry_run=True)
    assert job.status == ImportStatus.DONE
    assert (job.rows_inserted, job.rows_rejected) == (9, 1)
    assert codes(job) == ["unknown_student"]  # the problems survive the rollback
    assert AttendanceRecord.objects.count() == 0


@pytest.mark.postgres
def test_a_failed_statement_of_the_loading_side_fails_the_job_with_its_own_error(
    world, tmp_path, monkeypatch
) -> None:
    days = _days(dt.date(2026, 3, 1), 2)
    assert _run(tmp_path, _rows(days[:1]), name="first.csv").status == ImportStatus.DONE
    # Pretend the probe missed the stored day: its COPY then hits the unique
    # index, and later statements only see an aborted transaction.
    monkeypatch.setattr(loading, "_spans_stored", lambda cursor, target, spans: False)
    job = _run(tmp_path, _rows(days), name="second.csv", chunk_rows=2)
    assert job.status == ImportStatus.FAILED
    assert job.failure.startswith("UniqueViolation")
    assert codes(job) == ["internal_error"]
    assert AttendanceRecord.objects.count() == 3


def test_progress_of_a_running_job_comes_from_the_cache(world, tmp_path) -> None:
    job = import_job_create(
        kind=ImportKind.ATTENDANCE, source=_write(tmp_path), file_name="attendance.csv"
    )
    assert import_job_progress(job)["rows_read"] == 0
    job.status = ImportStatus.VALIDATING
    cache.set(f"ingestion:job:{job.pk}:read", {"rows_read": 40, "rows_rejected": 2})
    cache.set(f"ingestion:job:{job.pk}:loaded", 21)
    progress = import_job_progress(job)
    assert (progress["rows_read"], progress["rows_to_load"], progress["rows_loaded"]) == (
        40,
        38,
        21,
    )
    job = import_job_run(job_id=job.pk)  # the finished job reads its own row again
    assert import_job_progress(job)["rows_read"] == 3


def _write(tmp_path: Path) -> Path:
    path = tmp_path / "attendance.csv"
    path.write_text(HEADER + "\n".join(_rows([dt.date(2026, 3, 1)])) + "\n")
    return path


def test_duplicates_are_found_within_and_across_chunks() -> None:
    found = Duplicates()
    repeats, first = found.find(np.array([5, 7, 5], dtype=np.uint64), np.array([2, 3, 4]))
    assert repeats.tolist() == [False, False, True]
    assert first.tolist() == [2, 3, 2]
    for start in range(10, 50, 10):  # enough chunks to merge the sorted runs
        keys = np.arange(start, start + 10, dtype=np.uint64) * 100
        repeats, _first = found.find(keys, np.arange(start, start + 10) + 100)
        assert not repeats.any()
    repeats, first = found.find(
        np.array([7, 1, 3000, 9], dtype=np.uint64), np.array([500, 501, 502, 503])
    )
    assert repeats.tolist() == [True, False, True, False]
    assert first.tolist() == [3, 501, 130, 503]
    repeats, first = found.find(np.array([1, 9], dtype=np.uint64), np.array([600, 601]))
    assert repeats.tolist() == [True, True]
    assert first.tolist() == [501, 503]
