"""The staging COPY and the set-based upsert's shortcuts."""

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from django.db import connection

from apps.ingestion.loading import Stage, _binary_copy
from apps.ingestion.models import ImportKind, ImportStatus
from apps.students.models import AttendanceRecord
from tests.ingestion.helpers import codes, run_import

pytestmark = pytest.mark.django_db


def _roster_frame() -> pd.DataFrame:
    days = np.array(["2026-01-01", "NaT", "2026-02-03"], dtype="M8[D]")
    return pd.DataFrame(
        {
            "_line": [2, 3, 4],
            "sid": ["S-1", "S-2", "S-3"],
            "name": ["Rahim", "রহিম উদ্দিন", 'Quote " tab\t back\\slash'],
            "name_bn": ["", "রহিম", ""],
            "gender": ["male", "male", "female"],
            "date_of_birth": days,
            "guardian_name": ["", "", ""],
            "guardian_phone": ["", "", ""],
            "stipend_recipient": [True, False, True],
            "has_disability": [False, False, True],
            "school_id": [1, 2, 3],
            "academic_year": [2026, 2026, 2026],
            "grade_level": [6, 7, 8],
            "section": ["A", "", "B"],
            "entry_date": np.array(["2026-01-01"] * 3, dtype="M8[D]"),
            "exit_date": np.array(["NaT", "2026-05-01", "NaT"], dtype="M8[D]"),
            "exit_reason": [None, "transferred", None],
        }
    )


@pytest.mark.postgres
def test_binary_copy_stages_text_nulls_and_dates_exactly() -> None:
    frame = _roster_frame()
    stage = Stage(ImportKind.ROSTER, 0)
    blocks = stage.encode(frame)
    assert blocks is not None  # the fast path is taken
    with connection.cursor() as cursor:
        stage.create(cursor)
        stage.write(cursor.cursor, frame, blocks)
        cursor.execute(
            f"SELECT line, name, name_bn, date_of_birth, stipend_recipient, school_id, "  # noqa: S608
            f"exit_date, exit_reason FROM {stage.name} ORDER BY line"
        )
        rows = cursor.fetchall()
        stage.drop(cursor)
    assert rows == [
        (2, "Rahim", "", dt.date(2026, 1, 1), True, 1, None, None),
        (3, "রহিম উদ্দিন", "রহিম", None, False, 2, dt.date(2026, 5, 1), "transferred"),
        (4, 'Quote " tab\t back\\slash', "", dt.date(2026, 2, 3), True, 3, None, None),
    ]


def test_binary_copy_gives_way_to_row_copy_for_free_text() -> None:
    frame = pd.concat([_roster_frame()] * 30, ignore_index=True)
    frame["name"] = [f"Student {i}" for i in range(len(frame))]
    frame["_line"] = np.arange(len(frame)) + 2
    assert _binary_copy(frame, Stage(ImportKind.ROSTER, 0).columns) is None


def test_a_later_month_is_inserted_and_a_mixed_file_updates_and_inserts(
    world, tmp_path: Path
) -> None:
    march = (
        "student_id,eiin,date,status\nS-1,100001,2026-03-01,present\nS-2,100001,2026-03-01,absent\n"
    )
    first = run_import(tmp_path, ImportKind.ATTENDANCE, march)
    assert first.status == ImportStatus.DONE, codes(first)
    # New dates for stored students: nothing to compare, all inserted.
    april = march.replace("2026-03-01", "2026-04-01")
    second = run_import(tmp_path, ImportKind.ATTENDANCE, april, name="april.csv")
    assert (second.rows_inserted, second.rows_updated, second.rows_unchanged) == (2, 0, 0)
    mixed = april.replace("S-2,100001,2026-04-01,absent", "S-2,100001,2026-04-01,late")
    mixed += "S-3,100001,2026-04-01,present\n"
    third = run_import(tmp_path, ImportKind.ATTENDANCE, mixed, name="mixed.csv")
    assert (third.rows_inserted, third.rows_updated, third.rows_unchanged) == (1, 1, 1)
    assert AttendanceRecord.objects.count() == 5
    assert (
        AttendanceRecord.objects.get(student__student_id="S-2", date="2026-04-01").status == "late"
    )
    # A re-import that writes nothing still records the school it was for.
    again = run_import(tmp_path, ImportKind.ATTENDANCE, mixed, name="again.csv")
    assert (again.rows_inserted, again.rows_updated, again.rows_unchanged) == (0, 0, 3)
    assert list(again.schools.values_list("eiin", flat=True)) == ["100001"]
