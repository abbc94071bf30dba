"""Training samples from the weekly feature store: ml.data.SequenceArrays plus their keys.

A sample is (student, academic year, prediction week). Its sequence is that year's
weekly features truncated at the prediction week (nothing after it is visible),
its static features describe the student and the enrollment open at the cutoff,
and its label comes from apps.predictions.labels. Each student-year yields
samples at several weeks, so the model learns to predict early as well as late.

Numpy only at module level; torch is never imported here.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from apps.predictions.labels import Stint, dropout_label, horizon_for

if TYPE_CHECKING:
    from ml.data import SequenceArrays

STATIC_NUMERIC_COLUMNS = ["grade_level", "stipend", "disability", "age"]
STATIC_CATEGORICAL_COLUMNS = ["gender", "region", "school_type"]
SUBGROUP_COLUMNS = ["gender", "region", "stipend", "disability"]


class WeeklyHistoryLike(Protocol):
    """What apps.features.selectors.WeeklyHistory provides (one academic year, N students)."""

    @property
    def feature_version(self) -> str: ...
    @property
    def columns(self) -> list[str]: ...
    @property
    def academic_year(self) -> int: ...
    @property
    def week_starts(self) -> np.ndarray: ...  # datetime64[D] [W]
    @property
    def student_ids(self) -> np.ndarray: ...  # int64 [N]
    @property
    def values(self) -> np.ndarray: ...  # float32 [N, W, F], NaN = not observed
    @property
    def in_session(self) -> np.ndarray: ...  # bool [N, W]


@dataclass(frozen=True)
class EnrollmentFacts:
    """One enrollment with what the static features need."""

    stint: Stint
    grade_level: int
    school_type: str
    region_id: int


@dataclass(frozen=True)
class StudentFacts:
    gender: str
    stipend: bool
    disability: bool
    date_of_birth: dt.date | None
    enrollments: tuple[EnrollmentFacts, ...]

    @property
    def stints(self) -> list[Stint]:
        return [e.stint for e in self.enrollments]

    def enrollment_at(self, day: dt.date) -> EnrollmentFacts | None:
        # After a transfer on `day` the new school is the one that counts.
        open_then = [e for e in self.enrollments if e.stint.covers(day)]
        return max(open_then, key=lambda e: e.stint.entry_date) if open_then else None


@dataclass(frozen=True)
class SamplingOptions:
    prediction_weeks: int = 5  # samples per student-year, spread over the year
    min_week: int = 3  # earliest prediction: after this many school weeks
    # With the end-of-year horizon, the year's last school weeks leave almost no
    # time to drop out (a few positives in a thousand samples): they teach little
    # and cost as much as any other week, so they are not prediction weeks.
    end_margin_weeks: int = 4
    horizon_days: int = 0  # 0 = end of the academic year
    data_from: dt.date | None = None
    data_to: dt.date | None = None
    # While a window is open only its dropouts are known; training on them without
    # the students who will stay would inflate the dropout rate, so skip such weeks.
    closed_windows_only: bool = True


@dataclass
class Samples:
    """Raw samples before the split; ``raw_cat`` holds stable values, not model codes."""

    feature_version: str
    feature_columns: list[str]
    seq: np.ndarray  # float32 [N, T, F]
    lengths: np.ndarray  # int64 [N]
    static_num: np.ndarray  # float32 [N, S]
    raw_cat: np.ndarray  # str [N, C]: gender, region pk, school type
    labels: np.ndarray  # float32 [N]
    student_ids: np.ndarray  # int64 [N]
    academic_years: np.ndarray  # int64 [N]
    week_starts: np.ndarray  # datetime64[D] [N]: the prediction week
    groups: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.seq.shape[0])

    def subset(self, index: np.ndarray) -> Samples:
        return Samples(
            feature_version=self.feature_version,
            feature_columns=self.feature_columns,
            seq=self.seq[index],
            lengths=self.lengths[index],
            static_num=self.static_num[index],
            raw_cat=self.raw_cat[index],
            labels=self.labels[index],
            student_ids=self.student_ids[index],
            academic_years=self.academic_years[index],
            week_starts=self.week_starts[index],
            groups={k: v[index] for k, v in self.groups.items()},
        )


def choose_prediction_weeks(
    history: WeeklyHistoryLike, options: SamplingOptions, until: dt.date
) -> list[int]:
    """Week indices to predict at: evenly spread over the school weeks in range."""
    week_starts = history.week_starts.astype("datetime64[D]")
    week_ends = week_starts + np.timedelta64(6, "D")
    usable = history.in_session.any(axis=0) & (week_ends <= np.datetime64(until, "D"))
    if options.data_from is not None:
        usable &= week_starts >= np.datetime64(options.data_from, "D")
    school_weeks = np.flatnonzero(history.in_session.any(axis=0))
    # The first `min_week` school weeks of the year are too early to say anything.
    excluded = set(school_weeks[: options.min_week].tolist())
    if options.horizon_days == 0 and options.end_margin_weeks > 0:
        excluded |= set(school_weeks[-options.end_margin_weeks :].tolist())
    candidates = [int(w) for w in np.flatnonzero(usable) if int(w) not in excluded]
    if not candidates or options.prediction_weeks < 1:
        return []
    picks = np.linspace(0, len(candidates) - 1, min(options.prediction_weeks, len(candidates)))
    return sorted({candidates[int(round(p))] for p in picks})


def _age(born: dt.date | None, day: dt.date) -> float:
    if born is None:
        return float("nan")
    return (day - born).days / 365.25


@dataclass(frozen=True)
class StaticRow:
    numeric: list[float]  # STATIC_NUMERIC_COLUMNS
    categorical: list[str]  # STATIC_CATEGORICAL_COLUMNS, raw values (encode with the vocabulary)
    groups: dict[str, str]  # SUBGROUP_COLUMNS


def static_row(student: StudentFacts, enrollment: EnrollmentFacts, cutoff: dt.date) -> StaticRow:
    """A student's static features at a cutoff; scoring must build them the same way."""
    return StaticRow(
        numeric=[
            float(enrollment.grade_level),
            float(student.stipend),
            float(student.disability),
            _age(student.date_of_birth, cutoff),
        ],
        categorical=[student.gender, str(enrollment.region_id), enrollment.school_type],
        groups={
            "gender": student.gender,
            "region": str(enrollment.region_id),
            "stipend": "yes" if student.stipend else "no",
            "disability": "yes" if student.disability else "no",
        },
    )


def samples_from_history(
    history: WeeklyHistoryLike,
    facts: dict[int, StudentFacts],
    options: SamplingOptions,
    *,
    today: dt.date,
) -> Samples | None:
    """Every labelled sample of one chunk; None when the chunk yields none."""
    until = min(options.data_to or today, today)
    weeks = choose_prediction_weeks(history, options, until)
    n_weeks = history.values.shape[1]
    blocks: list[Samples] = []
    for w in weeks:
        week_start = history.week_starts[w].astype("datetime64[D]").item()
        cutoff = week_start + dt.timedelta(days=6)
        horizon = horizon_for(
            cutoff, academic_year=history.academic_year, horizon_days=options.horizon_days
        )
        if options.closed_windows_only and horizon >= today:
            continue
        rows: list[int] = []
        labels: list[int] = []
        static_num: list[list[float]] = []
        raw_cat: list[list[str]] = []
        groups: dict[str, list[str]] = {name: [] for name in SUBGROUP_COLUMNS}
        for row in np.flatnonzero(history.in_session[:, w]):
            student = facts.get(int(history.student_ids[row]))
            if student is None:
                continue
            label = dropout_label(student.stints, cutoff=cutoff, horizon=horizon, today=today)
            enrollment = student.enrollment_at(cutoff)
            if label is None or enrollment is None:
                continue
            rows.append(int(row))
            labels.append(label)
            statics = static_row(student, enrollment, cutoff)
            static_num.append(statics.numeric)
            raw_cat.append(statics.categorical)
            for name in SUBGROUP_COLUMNS:
                groups[name].append(statics.groups[name])
        if not rows:
            continue
        idx = np.asarray(rows)
        seq = np.full((len(idx), n_weeks, history.values.shape[2]), np.nan, dtype=np.float32)
        # Truncate at the prediction week: later weeks stay NaN and beyond `lengths`.
        seq[:, : w + 1] = history.values[idx, : w + 1]
        blocks.append(
            Samples(
                feature_version=history.feature_version,
                feature_columns=list(history.columns),
                seq=seq,
                lengths=np.full(len(idx), w + 1, dtype=np.int64),
                static_num=np.asarray(static_num, dtype=np.float32).reshape(len(idx), -1),
                raw_cat=np.asarray(raw_cat, dtype=str).reshape(len(idx), -1),
                labels=np.asarray(labels, dtype=np.float32),
                student_ids=history.student_ids[idx].astype(np.int64),
                academic_years=np.full(len(idx), history.academic_year, dtype=np.int64),
                week_starts=np.full(len(idx), np.datetime64(week_start, "D")),
                groups={k: np.asarray(v) for k, v in groups.items()},
            )
        )
    return concat_samples(blocks) if blocks else None


def concat_samples(parts: Sequence[Samples]) -> Samples:
    """Join samples from several chunks and years, padding sequences to the longest year."""
    if not parts:
        raise ValueError("no samples to join")
    first = parts[0]
    for part in parts[1:]:
        if part.feature_version != first.feature_version or part.feature_columns != (
            first.feature_columns
        ):
            raise ValueError("samples come from different feature versions")
    t_max = max(p.seq.shape[1] for p in parts)
    seqs = []
    for p in parts:
        pad = t_max - p.seq.shape[1]
        seqs.append(
            p.seq if pad == 0 else np.pad(p.seq, ((0, 0), (0, pad), (0, 0)), constant_values=np.nan)
        )
    return Samples(
        feature_version=first.feature_version,
        feature_columns=first.feature_columns,
        seq=np.concatenate(seqs),
        lengths=np.concatenate([p.lengths for p in parts]),
        static_num=np.concatenate([p.static_num for p in parts]),
        raw_cat=np.concatenate([p.raw_cat for p in parts]),
        labels=np.concatenate([p.labels for p in parts]),
        student_ids=np.concatenate([p.student_ids for p in parts]),
        academic_years=np.concatenate([p.academic_years for p in parts]),
        week_starts=np.concatenate([p.week_starts for p in parts]),
        groups={k: np.concatenate([p.groups[k] for p in parts]) for k in first.groups},
    )


def split_students(
    student_ids: Iterable[int], *, test_fraction: float, val_fraction: float, salt: str = "edupulse"
) -> dict[int, str]:
    """ "train", "val" or "test" for each student, from a hash of the student's pk.

    The same student always lands in the same split, whatever else changed, so
    every model trained on this database is tested on students that no model
    trained on, and two models can be compared on the same held-out students.
    """
    if not (0 < test_fraction and 0 < val_fraction and test_fraction + val_fraction < 1):
        raise ValueError("the test and validation fractions must be positive and sum below 1")
    result: dict[int, str] = {}
    for pk in {int(x) for x in student_ids}:
        digest = hashlib.blake2b(f"{salt}:{pk}".encode(), digest_size=8).digest()
        u = int.from_bytes(digest, "big") / 2**64
        if u < test_fraction:
            result[pk] = "test"
        elif u < test_fraction + val_fraction:
            result[pk] = "val"
        else:
            result[pk] = "train"
    return result


def category_vocabulary(raw_cat: np.ndarray) -> list[list[str]]:
    """Per categorical column, the values seen (sorted); a value's code is its index."""
    return [sorted({str(v) for v in raw_cat[:, j]}) for j in range(raw_cat.shape[1])]


def encode_categories(raw_cat: np.ndarray, vocabulary: list[list[str]]) -> np.ndarray:
    """Codes for the model; a value missing from the vocabulary is -1 ("unknown")."""
    codes = np.full(raw_cat.shape, -1, dtype=np.int64)
    for j, values in enumerate(vocabulary):
        index = {v: i for i, v in enumerate(values)}
        codes[:, j] = [index.get(str(v), -1) for v in raw_cat[:, j]]
    return codes


def to_arrays(samples: Samples, vocabulary: list[list[str]]) -> SequenceArrays:
    from ml.data import SequenceArrays

    return SequenceArrays(
        seq=samples.seq,
        lengths=samples.lengths,
        static_num=samples.static_num,
        static_cat=encode_categories(samples.raw_cat, vocabulary),
        labels=samples.labels,
        group=dict(samples.groups),
    )


def save_samples(path: Path, samples: Samples) -> None:
    """Plain arrays (no pickle), so a held-out file can be read back safely."""
    payload = {
        "seq": samples.seq,
        "lengths": samples.lengths,
        "static_num": samples.static_num,
        "raw_cat": samples.raw_cat.astype(str),
        "labels": samples.labels,
        "student_ids": samples.student_ids,
        "academic_years": samples.academic_years,
        "week_starts": samples.week_starts.astype("datetime64[D]").astype(np.int64),
        "feature_columns": np.asarray(samples.feature_columns, dtype=str),
        "feature_version": np.asarray(samples.feature_version),
        **{f"group__{k}": v.astype(str) for k, v in samples.groups.items()},
    }
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(tmp, **payload)  # type: ignore[arg-type]  # numpy stub overload
    tmp.replace(path)


def load_samples(path: Path) -> Samples:
    with np.load(path, allow_pickle=False) as data:
        n = data["seq"].shape[0]
        return Samples(
            feature_version=str(data["feature_version"]),
            feature_columns=[str(c) for c in data["feature_columns"]],
            seq=data["seq"],
            lengths=data["lengths"],
            static_num=data["static_num"],
            raw_cat=data["raw_cat"].reshape(n, -1),
            labels=data["labels"],
            student_ids=data["student_ids"],
            academic_years=data["academic_years"],
            week_starts=data["week_starts"].astype("datetime64[D]"),
            groups={k[7:]: data[k] for k in data.files if k.startswith("group__")},
        )
