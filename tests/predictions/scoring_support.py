"""A district with weekly features in the real store and an active (untrained) model.

The model's weights are random but fixed by a seed, which is all scoring needs:
the tests check the plumbing (what is read, written, replaced, cached, alerted),
not how good the scores are. One feature drives the score on purpose:
`risk_model` sets the output layer so that low attendance means high risk.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from apps.features import store
from apps.features.calendar import year_calendar
from apps.features.selectors import feature_set_current
from apps.predictions.datasets import STATIC_CATEGORICAL_COLUMNS, STATIC_NUMERIC_COLUMNS
from apps.predictions.loader import active_model_forget
from apps.predictions.models import ModelStatus, ModelVersion
from apps.students.models import School, Student
from tests.factories import EnrollmentFactory, SchoolFactory, StudentFactory

YEAR = 2026
WEEK = 10  # index of the scored week in the year's calendar


@dataclass
class District:
    schools: list[School]
    students: list[Student]
    week_start: dt.date
    version: ModelVersion


def risk_model(tmp_dir: Path, columns: list[str], *, seed: int = 0, name: str = "model.pt") -> Path:
    from ml.checkpoint import save_checkpoint
    from ml.config import ModelConfig
    from ml.data import Normalizer, SequenceArrays
    from ml.metrics import Thresholds
    from ml.model import EduPulseModel

    torch.manual_seed(seed)
    config = ModelConfig(
        n_seq_features=len(columns),
        n_static_numeric=len(STATIC_NUMERIC_COLUMNS),
        static_cat_cardinalities=(2, 2, 2),
        hidden_size=8,
        attention_heads=1,
        fusion_hidden=8,
        static_embed_dim=2,
        dropout=0.0,
    )
    model = EduPulseModel(config)
    rng = np.random.default_rng(seed)
    arrays = SequenceArrays(
        seq=rng.random((16, WEEK + 1, len(columns))).astype(np.float32),
        lengths=np.full(16, WEEK + 1),
        static_num=rng.random((16, len(STATIC_NUMERIC_COLUMNS))).astype(np.float32),
        static_cat=np.zeros((16, len(STATIC_CATEGORICAL_COLUMNS)), dtype=np.int64),
    )
    path = tmp_dir / name
    save_checkpoint(
        path,
        model=model,
        model_config=config,
        normalizer=Normalizer.fit(arrays),
        feature_version=feature_set_current().version,
        feature_columns=columns,
        static_numeric_columns=list(STATIC_NUMERIC_COLUMNS),
        static_categorical_columns=list(STATIC_CATEGORICAL_COLUMNS),
        thresholds=Thresholds(high=0.6, watch=0.4, target_recall=0.8, watch_recall=0.9),
        extra={"categories": [["female", "male"], ["1", "2"], ["general", "madrasah"]]},
    )
    return path


def model_version_make(path: Path, *, status: str = ModelStatus.ACTIVE) -> ModelVersion:
    now = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    return ModelVersion.objects.create(
        name=f"test-{path.stem}-{ModelVersion.objects.count()}",
        status=status,
        file_path=path.name,
        feature_version=feature_set_current().version,
        data_from=dt.date(2020, 1, 1),
        data_to=dt.date(2020, 12, 31),
        training_started_at=now,
        training_finished_at=now,
    )


def features_write(
    students: list[Student], school: School, *, weeks: int = WEEK + 1, attendance: float = 0.9
) -> None:
    """Weekly rows for these students at this school, weeks 0..weeks-1 of YEAR."""
    feature_set = feature_set_current()
    columns = list(feature_set.columns)
    calendar = year_calendar(YEAR)
    n, f = len(students), len(columns)
    rng = np.random.default_rng(len(students) + school.pk)
    values = rng.random((n * weeks, f)).astype(np.float32)
    values[:, columns.index("attendance_rate")] = attendance
    store.rows_insert(
        feature_set_id=feature_set.pk,
        academic_year=YEAR,
        rows=store.Rows(
            student_id=np.repeat(np.asarray([s.pk for s in students], dtype=np.int64), weeks),
            school_id=np.full(n * weeks, school.pk, dtype=np.int64),
            week_start=np.tile(calendar.week_starts[:weeks], n),
            in_session=np.ones(n * weeks, dtype=bool),
            values=values,
            state=np.zeros((n * weeks, 0), dtype=np.int16),
        ),
    )


def district_make(model_dir: Path, *, per_school: int = 6, schools: int = 2) -> District:
    active_model_forget()
    feature_set = feature_set_current()
    made_schools = [SchoolFactory() for _ in range(schools)]
    students: list[Student] = []
    for school in made_schools:
        mine = [StudentFactory() for _ in range(per_school)]
        for student in mine:
            EnrollmentFactory(
                student=student, school=school, academic_year=YEAR, entry_date=dt.date(YEAR, 1, 4)
            )
        features_write(mine, school)
        students.extend(mine)
    path = risk_model(model_dir, list(feature_set.columns))
    version = model_version_make(path)
    week_start = year_calendar(YEAR).week_starts[WEEK].astype(object)
    return District(made_schools, students, week_start, version)
