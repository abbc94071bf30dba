"""Scoring: the active model's risk for students at one week, written set-based.

Batch and single predictions share one path: read the students' weekly
history up to the week from the feature store, add the static features the
model was trained with (apps.predictions.datasets, the same code as training),
score in one forward pass, explain the students worth explaining, and upsert
the rows on (student, week, model version), so a re-run replaces.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import F, Max, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from apps.common.bulk import bulk_insert_rows
from apps.dashboards.risk import RiskTier
from apps.features.calendar import week_start_of
from apps.features.models import FeatureSet, WeeklyFeature
from apps.features.selectors import (
    FeatureVersionMismatch,
    WeeklyHistory,
    feature_set_check,
    history_chunks,
    students_as_of,
)
from apps.predictions.datasets import (
    STATIC_NUMERIC_COLUMNS,
    StudentFacts,
    encode_categories,
    static_row,
)
from apps.predictions.loader import ActiveModel, NoActiveModel, active_model
from apps.predictions.models import ModelStatus, ModelVersion, Prediction, ScoringRun
from apps.students.models import Enrollment, School, Student
from apps.students.services import academic_year_of

if TYPE_CHECKING:
    from ml.data import SequenceArrays

__all__ = [
    "FeatureVersionMismatch",
    "NoActiveModel",
    "ScoreCounts",
    "prediction_body_get",
    "prediction_body_set",
    "prediction_cache_forget",
    "prediction_for_student",
    "predictions_score",
    "tier_for",
]

logger = logging.getLogger(__name__)

# The model's levels are high / watch / low; the pages call the middle one "medium".
TIER_OF_LEVEL = {"high": RiskTier.HIGH, "watch": RiskTier.MEDIUM, "low": RiskTier.LOW}
CACHE_PREFIX = "prediction:v1"

ForwardFn = Callable[["SequenceArrays"], np.ndarray]


@dataclass
class ScoreCounts:
    students: int = 0
    predictions: int = 0
    explained: int = 0
    alerts: int = 0
    schools: int = 0

    def add(self, other: ScoreCounts) -> None:
        for name, value in asdict(other).items():
            setattr(self, name, getattr(self, name) + value)

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class Scored:
    """One chunk's scores, before writing."""

    student_ids: np.ndarray
    school_ids: list[int | None]
    probabilities: np.ndarray
    tiers: list[str]
    factors: list[list[dict[str, Any]]]


def tier_for(model: ActiveModel, probability: float) -> str:
    thresholds = model.loaded.thresholds
    if thresholds is not None:
        return str(TIER_OF_LEVEL[thresholds.level(probability)])
    stored = model.version.thresholds or {}
    if probability >= float(stored.get("high", 0.5)):
        return str(RiskTier.HIGH)
    if probability >= float(stored.get("watch", 0.25)):
        return str(RiskTier.MEDIUM)
    return str(RiskTier.LOW)


# --------------------------------------------------------------------------- inputs


def _student_facts(ids: np.ndarray, academic_year: int) -> dict[int, StudentFacts]:
    from apps.predictions.services.training import student_facts

    return student_facts(ids, academic_year=academic_year, horizon_days=0)


def _schools_at(ids: Sequence[int], academic_year: int, cutoff: dt.date) -> dict[int, int]:
    """Each student's school that week: the latest enrollment of the year begun by then."""
    rows = (
        Enrollment.objects.filter(
            student_id__in=list(ids), academic_year=academic_year, entry_date__lte=cutoff
        )
        .order_by("student_id", "entry_date")
        .values_list("student_id", "school_id")
    )
    return dict(rows)  # later entries overwrite earlier ones


def _arrays(
    model: ActiveModel, history: WeeklyHistory, week_index: int, cutoff: dt.date
) -> tuple[SequenceArrays, np.ndarray]:
    """Model inputs for the students of `history` who have an enrollment that week."""
    from ml.data import SequenceArrays

    facts = _student_facts(history.student_ids, history.academic_year)
    rows, static_num, raw_cat = [], [], []
    for row, pk in enumerate(history.student_ids.tolist()):
        student = facts.get(int(pk))
        if student is None:
            continue
        enrollment = student.enrollment_at(cutoff) or (
            student.enrollments[-1] if student.enrollments else None
        )
        if enrollment is None:
            continue
        rows.append(row)
        # The same helper as training: the static features cannot drift apart.
        static = static_row(student, enrollment, cutoff)
        static_num.append(static.numeric)
        raw_cat.append(static.categorical)
    idx = np.asarray(rows, dtype=np.int64)
    n = len(idx)
    vocabulary = model.loaded.extra.get("categories") or [
        [] for _ in model.loaded.static_categorical_columns
    ]
    raw = np.asarray(raw_cat, dtype=str).reshape(n, len(vocabulary))
    arrays = SequenceArrays(
        seq=history.values[idx, : week_index + 1],
        lengths=np.full(n, week_index + 1, dtype=np.int64),
        static_num=np.asarray(static_num, dtype=np.float32).reshape(n, len(STATIC_NUMERIC_COLUMNS)),
        static_cat=encode_categories(raw, vocabulary),
    )
    return arrays, history.student_ids[idx]


def _week_index(history: WeeklyHistory, week_start: dt.date) -> int:
    found = np.flatnonzero(history.week_starts == np.datetime64(week_start, "D"))
    if not len(found):
        raise ValueError(f"{week_start} is not a week of academic year {history.academic_year}")
    return int(found[0])


def _explain(
    model: ActiveModel,
    arrays: SequenceArrays,
    tiers: list[str],
    week_starts: np.ndarray,
    attention: np.ndarray | None,
) -> list[list[dict[str, Any]]]:
    """Top factors as plain data, for the students whose tier is worth explaining."""
    from ml.explain import explain

    factors: list[list[dict[str, Any]]] = [[] for _ in tiers]
    wanted = set(settings.EDUPULSE_EXPLAIN_TIERS)
    chosen = np.asarray([i for i, tier in enumerate(tiers) if tier in wanted], dtype=np.int64)
    if not len(chosen):
        return factors
    subset = arrays.subset(chosen)
    explained = explain(
        model.scorer,
        subset,
        top_k=settings.EDUPULSE_EXPLAIN_TOP_K,
        static_numeric_names=STATIC_NUMERIC_COLUMNS,
        steps=settings.EDUPULSE_EXPLAIN_STEPS,
        batch_size=128,
        attention=None if attention is None else attention[chosen],
    )
    recent = 4
    for i, student_factors in zip(chosen.tolist(), explained, strict=True):
        length = int(arrays.lengths[i])
        factors[i] = [
            {
                "feature": f.feature,
                "kind": f.kind,
                "direction": f.direction,
                "weight": round(float(f.weight), 4),
                "weeks": [str(week_starts[w]) for w in f.weeks if w < len(week_starts)],
                "recent_weeks": min(recent, length),
                "before": None if f.value_baseline is None else round(float(f.value_baseline), 4),
                "after": None if f.value_recent is None else round(float(f.value_recent), 4),
            }
            # What raises the risk comes first: the first factor is the page's "top reason".
            for f in sorted(student_factors, key=lambda f: (f.direction != "raises", -f.weight))
        ]
    return factors


def _score_history(
    model: ActiveModel,
    history: WeeklyHistory,
    week_start: dt.date,
    *,
    keep_present: bool,
    school_id: int | None,
    forward: ForwardFn | None = None,
) -> Scored | None:
    week_index = _week_index(history, week_start)
    if keep_present:
        # history_chunks gives every student of the year: keep those with a row that week.
        present = history.in_session[:, week_index] | history.observed[:, week_index].any(axis=1)
        if not present.any():
            return None
        history = WeeklyHistory(
            feature_version=history.feature_version,
            columns=history.columns,
            academic_year=history.academic_year,
            week_starts=history.week_starts,
            student_ids=history.student_ids[present],
            values=history.values[present],
            in_session=history.in_session[present],
        )
    if not len(history.student_ids):
        return None
    cutoff = week_start + dt.timedelta(days=6)
    arrays, ids = _arrays(model, history, week_index, cutoff)
    if not len(ids):
        return None
    attention = None
    if forward is None:
        # The pooling weights come with the forward pass; explanations reuse them.
        probabilities, attention = model.scorer.score_with_attention(arrays)
    else:
        probabilities = forward(arrays)
    tiers = [tier_for(model, float(p)) for p in probabilities]
    week_starts = history.week_starts[: week_index + 1].astype("datetime64[D]")
    factors = _explain(model, arrays, tiers, week_starts, attention)
    if school_id is not None:
        schools: list[int | None] = [school_id] * len(ids)
    else:
        at = _schools_at(ids.tolist(), history.academic_year, cutoff)
        schools = [at.get(int(pk)) for pk in ids]
    return Scored(ids, schools, probabilities, tiers, factors)


# --------------------------------------------------------------------------- writes


def _previous(student_ids: Sequence[int], week_start: dt.date) -> dict[int, tuple[float, str]]:
    """Each student's latest earlier prediction (any model): (probability, tier)."""
    rows = (
        Prediction.objects.filter(student_id__in=list(student_ids), week_start__lt=week_start)
        .annotate(
            rank=Window(
                RowNumber(),
                partition_by=[F("student_id")],
                order_by=[F("week_start").desc(), F("created_at").desc()],
            )
        )
        .filter(rank=1)
        .values_list("student_id", "probability", "tier")
    )
    return {pk: (p, tier) for pk, p, tier in rows}


COLUMNS = (
    "student_id",
    "school_id",
    "academic_year",
    "week_start",
    "model_version_id",
    "probability",
    "tier",
    "factors",
    "change_since_previous",
    "created_at",
)
KEY = ("student_id", "week_start", "model_version_id")
_UPDATE = ", ".join(f"{c} = excluded.{c}" for c in COLUMNS if c not in KEY)


# Up to this many rows go straight in with INSERT ... ON CONFLICT; more go through a
# staging table filled by COPY (four statements, but set-based).
SINGLE_ROWS = 4


def _upsert(rows: list[tuple[Any, ...]]) -> None:
    table = Prediction._meta.db_table
    columns = ", ".join(COLUMNS)
    conflict = "ON CONFLICT (student_id, week_start, model_version_id) DO UPDATE SET " + _UPDATE
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql" and len(rows) > SINGLE_ROWS:
            cursor.execute(
                "CREATE TEMP TABLE IF NOT EXISTS prediction_stage ("
                "student_id bigint, school_id bigint, academic_year smallint, week_start date, "
                "model_version_id bigint, probability double precision, tier varchar(10), "
                "factors jsonb, change_since_previous double precision, "
                "created_at timestamptz) ON COMMIT DELETE ROWS"
            )
            bulk_insert_rows("prediction_stage", COLUMNS, rows)
            cursor.execute(
                f"INSERT INTO {table} ({columns}) SELECT {columns} FROM prediction_stage "  # noqa: S608
                f"{conflict}"
            )
            cursor.execute("TRUNCATE prediction_stage")
            return
        # A single prediction (or a handful): one statement, no staging table.
        # Stored as Django stores it (naive UTC text on SQLite): sqlite3's own
        # adapter would write the offset too, and "since" comparisons go wrong.
        created_at = COLUMNS.index("created_at")
        rows = [
            (
                *row[:created_at],
                connection.ops.adapt_datetimefield_value(row[created_at]),
                *row[created_at + 1 :],
            )
            for row in rows
        ]
        placeholders = ", ".join(["%s"] * len(COLUMNS))
        cursor.executemany(
            f"INSERT INTO {table} ({columns}) VALUES ({placeholders}) {conflict}",  # noqa: S608
            rows,
        )


def _write(
    model: ActiveModel,
    scored: Scored,
    *,
    week_start: dt.date,
    academic_year: int,
    forget: bool = True,
) -> tuple[int, int]:
    """Upsert one chunk and raise its alerts; (predictions, alerts).

    `forget` makes the students' cached single predictions stale (their buckets).
    """
    from apps.predictions.services.alerts import alerts_raise

    ids = [int(pk) for pk in scored.student_ids]
    now = timezone.now()
    with transaction.atomic():
        previous = _previous(ids, week_start)
        rows = []
        for i, pk in enumerate(ids):
            p = float(scored.probabilities[i])
            before = previous.get(pk)
            rows.append(
                (
                    pk,
                    scored.school_ids[i],
                    academic_year,
                    week_start,
                    model.version.pk,
                    p,
                    scored.tiers[i],
                    json.dumps(scored.factors[i]),
                    None if before is None else p - before[0],
                    now,
                )
            )
        _upsert(rows)
        alerts = alerts_raise(
            model_version=model.version,
            week_start=week_start,
            scored={
                pk: (float(scored.probabilities[i]), scored.tiers[i]) for i, pk in enumerate(ids)
            },
            previous=previous,
        )
    if forget:
        prediction_cache_forget(student_ids=ids)
    return len(rows), alerts


# --------------------------------------------------------------------------- services


def scoring_as_of_default() -> dt.date | None:
    """The latest week the feature store has, not after today (None: no features yet)."""
    from apps.features.selectors import feature_set_current

    return WeeklyFeature.objects.filter(
        feature_set=feature_set_current(), week_start__lte=timezone.localdate()
    ).aggregate(last=Max("week_start"))["last"]


def _as_of(as_of: dt.date | None) -> dt.date:
    """`as_of`, else the latest week with features, else today."""
    return as_of or scoring_as_of_default() or timezone.localdate()


def _model_and_features(version: ModelVersion | None = None) -> tuple[ActiveModel, FeatureSet]:
    """The model to score with and the feature set it reads; checked before loading.

    A model built on other features would score garbage: FeatureVersionMismatch.
    """
    if version is None:
        version = ModelVersion.objects.filter(status=ModelStatus.ACTIVE).first()
        if version is None:
            raise NoActiveModel("no active model version")
    feature_set = feature_set_check(version.feature_version)
    return active_model(version), feature_set


def predictions_score(
    *,
    student_ids: Sequence[int] | None = None,
    school_ids: Sequence[int] | None = None,
    as_of: dt.date | None = None,
    scoring_run: ScoringRun | None = None,
) -> ScoreCounts:
    """Score students at the week holding `as_of` (default today) with the active model.

    With `school_ids` (or neither argument: every school), school by school; with
    `student_ids`, those students. Idempotent: a re-run replaces the rows.
    """
    model, feature_set = _model_and_features(scoring_run.model_version if scoring_run else None)
    week_start = week_start_of(_as_of(as_of))
    academic_year = academic_year_of(week_start + dt.timedelta(days=6))
    counts = ScoreCounts()
    if student_ids is not None:
        for history in history_chunks(
            feature_set,
            academic_year=academic_year,
            student_ids=sorted({int(i) for i in student_ids}),
            school_ids=school_ids,
            until=week_start,
        ):
            scored = _score_history(model, history, week_start, keep_present=True, school_id=None)
            if scored is not None:
                written, alerts = _write(
                    model, scored, week_start=week_start, academic_year=academic_year
                )
                counts.add(ScoreCounts(len(scored.student_ids), written, 0, alerts))
        return counts
    schools = (
        list(school_ids)
        if school_ids is not None
        else list(School.objects.order_by("pk").values_list("pk", flat=True))
    )
    for school_id in schools:
        history = students_as_of(feature_set, week_start=week_start, school_ids=[school_id])
        scored = _score_history(model, history, week_start, keep_present=False, school_id=school_id)
        counts.schools += 1
        if scored is None:
            continue
        written, alerts = _write(model, scored, week_start=week_start, academic_year=academic_year)
        explained = sum(1 for f in scored.factors if f)
        counts.add(ScoreCounts(len(scored.student_ids), written, explained, alerts))
    return counts


# Students share a generation stamp per bucket (as the feature windows do,
# apps/features/cache.py): forgetting a district-wide import sets 1,024 keys
# instead of one per student (100,000 took about a second, twice per import);
# a student's neighbours in the bucket lose their cached prediction too.
GENERATION_BUCKETS = 1024


def _generation_key(student_id: int) -> str:
    return f"{CACHE_PREFIX}:gen:{int(student_id) % GENERATION_BUCKETS}"


def prediction_cache_forget(*, student_ids: Sequence[int]) -> None:
    """Make every cached single prediction of these students stale."""
    stamp = time.time_ns()
    buckets = {int(pk) % GENERATION_BUCKETS for pk in student_ids}
    cache.set_many({_generation_key(bucket): stamp for bucket in buckets}, None)


def _generation(student_id: int) -> Any:
    return cache.get(_generation_key(student_id), 0)


def _cache_key(student_id: int, as_of: dt.date | None, version_pk: int, generation: Any) -> str:
    day = as_of.isoformat() if as_of else "latest"
    return f"{CACHE_PREFIX}:{student_id}:{generation}:{version_pk}:{day}"


def _body_key(student_id: int, as_of: dt.date | None, version_pk: int) -> str:
    day = as_of.isoformat() if as_of else "latest"
    return f"{CACHE_PREFIX}:body:{int(student_id)}:{version_pk}:{day}"


def prediction_body_get(
    *, student_id: int, as_of: dt.date | None, version_pk: int
) -> tuple[Any, bytes | None]:
    """(generation, body): a rendered prediction cached by `prediction_body_set`, if still current.

    One round trip: the entry and its bucket's generation are read together
    (one MGET on Redis), and the entry holds the generation it was stored
    under, so forgetting a bucket (prediction_cache_forget) makes it stale
    without touching it. The generation comes back for `prediction_body_set`.
    """
    generation_key = _generation_key(student_id)
    body_key = _body_key(student_id, as_of, version_pk)
    found = cache.get_many([generation_key, body_key])
    generation = found.get(generation_key, 0)
    entry = found.get(body_key)
    if entry is None or entry[0] != generation:
        return generation, None
    return generation, bytes(entry[1])


def prediction_body_set(
    *, student_id: int, as_of: dt.date | None, version_pk: int, generation: Any, body: bytes
) -> None:
    """Keep a rendered prediction (the API's response body) until its bucket changes or the TTL.

    `generation` is the one `prediction_body_get` read before the prediction
    was computed: a change that lands meanwhile bumps the bucket past it, so
    the entry can never hide that change.
    """
    cache.set(
        _body_key(student_id, as_of, version_pk),
        (generation, body),
        settings.EDUPULSE_PREDICTION_CACHE_SECONDS,
    )


def prediction_for_student(
    *, student: Student | int, as_of: dt.date | None = None, forward: ForwardFn | None = None
) -> Prediction | None:
    """The student's (or student pk's) risk from the latest features up to `as_of` (cached, TTL).

    None when the student has no features that year. `forward` replaces the
    model's forward pass (the micro-batcher passes its own).
    """
    student_pk = student if isinstance(student, int) else student.pk
    version = ModelVersion.objects.filter(status=ModelStatus.ACTIVE).first()
    if version is None:
        raise NoActiveModel("no active model version")
    # Read before the features: a change landing meanwhile bumps the bucket past
    # this generation, so what is cached under it below cannot hide the change.
    key = _cache_key(student_pk, as_of, version.pk, _generation(student_pk))
    cached = cache.get(key)
    if isinstance(cached, Prediction):
        return cached
    model, feature_set = _model_and_features(version)
    if forward is None and settings.EDUPULSE_SCORE_BATCH_WAIT_MS > 0:
        from apps.predictions.batcher import batcher_for

        forward = batcher_for(model.scorer, wait_ms=settings.EDUPULSE_SCORE_BATCH_WAIT_MS).score
    day = _as_of(as_of)
    latest = WeeklyFeature.objects.filter(
        feature_set=feature_set,
        student_id=student_pk,
        academic_year=academic_year_of(day),
        week_start__lte=day,
    ).aggregate(last=Max("week_start"))["last"]
    if latest is None:
        return None
    academic_year = academic_year_of(latest + dt.timedelta(days=6))
    for history in history_chunks(
        feature_set, academic_year=academic_year, student_ids=[student_pk], until=latest
    ):
        scored = _score_history(
            model, history, latest, keep_present=True, school_id=None, forward=forward
        )
        if scored is None:
            return None
        # The bucket is left alone: the row written says what any entry still current
        # says (the same features and model), and bumping it made every neighbour in
        # the bucket recompute, whose writes bumped it again: with more students
        # than buckets, a cache that never warmed up.
        _write(model, scored, week_start=latest, academic_year=academic_year, forget=False)
    # The serializer reads both relations: fetch them with the row.
    prediction = Prediction.objects.select_related("student", "model_version").get(
        student_id=student_pk, week_start=latest, model_version=model.version
    )
    cache.set(key, prediction, settings.EDUPULSE_PREDICTION_CACHE_SECONDS)
    return prediction
