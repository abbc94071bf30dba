"""A small district in the database plus weekly histories shaped like the feature store's.

Students and enrollments are real rows (factories); the weekly values are built
here with a clear dropout signal (attendance falls for weeks before a student
leaves), in the shape apps.features.selectors.WeeklyHistory has. The year is
2020 so that every label window is closed whenever the tests run.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch
from django.test import override_settings

from apps.predictions.datasets import split_students
from apps.students.models import RegionLevel
from tests.factories import EnrollmentFactory, RegionFactory, SchoolFactory, StudentFactory

YEAR = 2020

# Tiny models gain nothing from intra-op threads; on a busy 2-core machine they
# spin against other processes (the same choice as tests/ml/conftest.py).
torch.set_num_threads(1)
COLUMNS = ["attendance_rate", "grade_avg", "incidents"]


@dataclass(frozen=True)
class History:
    feature_version: str
    columns: list[str]
    academic_year: int
    week_starts: np.ndarray
    student_ids: np.ndarray
    values: np.ndarray
    in_session: np.ndarray


@dataclass
class ArraySource:
    feature_version: str = "test-v1"
    histories: dict[int, list[History]] = field(default_factory=dict)
    calls: list[tuple[int, dt.date]] = field(default_factory=list)

    def chunks(self, *, academic_year: int, until: dt.date) -> Iterator[History]:
        self.calls.append((academic_year, until))
        yield from self.histories.get(academic_year, [])


def week_starts(year: int) -> np.ndarray:
    first = dt.date(year, 1, 1)
    first -= dt.timedelta(days=(first.weekday() + 1) % 7)  # back to Sunday
    return np.arange(
        np.datetime64(first, "D"), np.datetime64(dt.date(year, 12, 31), "D"), np.timedelta64(7, "D")
    )


def build_district(
    n_students: int = 120, *, seed: int = 0, dropout_share: float = 0.35, chunks: int = 2
) -> ArraySource:
    """Students at two schools in 2020; a third drop out after a visible decline."""
    rng = np.random.default_rng(seed)
    division = RegionFactory(level=RegionLevel.DIVISION)
    district = RegionFactory(level=RegionLevel.DISTRICT, parent=division)
    upazilas = [RegionFactory(level=RegionLevel.UPAZILA, parent=district) for _ in range(2)]
    schools = [
        SchoolFactory(region=upazilas[0]),
        SchoolFactory(region=upazilas[1], school_type="madrasah"),
    ]
    weeks = week_starts(YEAR)
    n_weeks = len(weeks)
    ids, values, in_session = [], [], []
    owed = {"train": 0.5, "val": 0.5, "test": 0.5}
    for i in range(n_students):
        student = StudentFactory(
            gender="female" if i % 2 else "male",
            stipend_recipient=bool(i % 3 == 0),
            has_disability=bool(i % 17 == 0),
            date_of_birth=dt.date(2007 + i % 3, 1 + i % 12, 1),
        )
        school = schools[i % 2]
        entry = dt.date(YEAR, 1, 2)
        rng.random()  # the draw that once decided `drops`: keeps the stream of values
        # Dropouts spread evenly over the hash splits whatever pks the database
        # hands out (its sequences outlive each test's rollback), so no split ever
        # lacks a class.
        split = split_students([student.pk], test_fraction=0.2, val_fraction=0.15)[student.pk]
        owed[split] += dropout_share
        drops = owed[split] >= 1.0
        owed[split] -= float(drops)
        # Students who will leave attend a little less all year (the two groups
        # overlap), and then fall away.
        habit = rng.normal(0.88 if drops else 0.92, 0.04)
        attendance = np.clip(rng.normal(habit, 0.04, n_weeks), 0, 1)
        grades = np.clip(rng.normal(0.6, 0.1, n_weeks), 0, 1)
        incidents = (rng.random(n_weeks) < 0.03).astype(float)
        session = np.ones(n_weeks, dtype=bool)
        session[[0, 25, 26, n_weeks - 1]] = False  # new year, Eid, winter vacation
        exit_date, reason = None, ""
        if drops:
            leave = int(rng.integers(14, 46))
            onset = leave - int(rng.integers(5, 10))
            decline = np.clip((np.arange(n_weeks) - onset) / max(leave - onset, 1), 0, 1)
            attendance = attendance * (1 - 0.8 * decline)
            grades = grades - 0.2 * decline
            incidents = incidents + (decline > 0.3) * (rng.random(n_weeks) < 0.4)
            exit_date = dt.date.fromisoformat(str(weeks[leave])) + dt.timedelta(days=2)
            reason = "dropped_out"
            session[leave + 1 :] = False
        elif i % 29 == 0:
            exit_date, reason = dt.date(YEAR, 8, 4), "transferred"
            session[31:] = False
        EnrollmentFactory(
            student=student,
            school=school,
            academic_year=YEAR,
            grade_level=6 + i % 5,
            entry_date=entry,
            exit_date=exit_date,
            exit_reason=reason,
        )
        row = np.stack([attendance, grades, incidents], axis=1).astype(np.float32)
        row[~session] = np.nan
        ids.append(student.pk)
        values.append(row)
        in_session.append(session)
    order = np.arange(n_students)
    histories = []
    for part in np.array_split(order, chunks):
        histories.append(
            History(
                feature_version="test-v1",
                columns=list(COLUMNS),
                academic_year=YEAR,
                week_starts=weeks,
                student_ids=np.asarray(ids, dtype=np.int64)[part],
                values=np.stack(values)[part],
                in_session=np.stack(in_session)[part],
            )
        )
    return ArraySource(histories={YEAR: histories})


@pytest.fixture
def model_dir(tmp_path: Path) -> Iterator[Path]:
    directory = tmp_path / "models"
    with override_settings(EDUPULSE_MODEL_DIR=directory, MLFLOW_TRACKING_URI=None):
        yield directory


@pytest.fixture
def district() -> ArraySource:
    return build_district()


def tiny_options(**overrides: object) -> dict[str, object]:
    """Seconds, not minutes: a small model for one or two epochs."""
    return {
        "epochs": 2,
        "hidden_size": 16,
        "attention_heads": 2,
        "batch_size": 64,
        "prediction_weeks": 4,
        "device": "cpu",
        **overrides,
    }
