import datetime as dt

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from apps.common.signals import student_data_changed
from apps.dashboards.risk import RiskTier
from apps.features.exceptions import FeatureVersionMismatch
from apps.predictions.models import ModelVersion, Prediction
from apps.predictions.selectors import predictions_latest_for
from apps.predictions.services.scoring import prediction_for_student, predictions_score
from tests.predictions.scoring_support import district_make

pytestmark = pytest.mark.django_db


@pytest.fixture
def district(tmp_path):
    with override_settings(EDUPULSE_MODEL_DIR=tmp_path):
        cache.clear()
        yield district_make(tmp_path)


def test_batch_scores_every_school_and_rerun_replaces(district):
    counts = predictions_score(as_of=district.week_start + dt.timedelta(days=2))
    assert (counts.students, counts.predictions, counts.schools) == (12, 12, 2)
    rows = Prediction.objects.filter(week_start=district.week_start)
    assert rows.count() == 12
    first = {p.student_id: (p.pk, p.probability) for p in rows}
    assert all(0 <= p <= 1 for _, p in first.values())
    assert {p.tier for p in rows} <= set(RiskTier.values)
    assert {p.school_id for p in rows} == {s.pk for s in district.schools}
    # Explained where the tier asks for it, as data, never as text.
    for p in rows:
        if p.tier in (RiskTier.HIGH, RiskTier.MEDIUM):
            assert p.factors and {"feature", "direction", "weeks", "before", "after"} <= set(
                p.factors[0]
            )
            directions = [f["direction"] for f in p.factors]
            assert directions == sorted(directions, key=lambda d: d != "raises")
    again = predictions_score(as_of=district.week_start)
    assert again.predictions == 12
    assert Prediction.objects.count() == 12
    assert {p.student_id: (p.pk, p.probability) for p in rows.all()} == first


def test_change_since_previous_week(district):
    earlier = district.week_start - dt.timedelta(days=7)
    predictions_score(as_of=earlier, school_ids=[district.schools[0].pk])
    predictions_score(as_of=district.week_start, school_ids=[district.schools[0].pk])
    for p in Prediction.objects.filter(week_start=district.week_start):
        before = Prediction.objects.get(student=p.student, week_start=earlier)
        assert p.change_since_previous == pytest.approx(p.probability - before.probability)
    latest = predictions_latest_for(district.students[:6])
    assert {p.week_start for p in latest.values()} == {district.week_start}


def test_students_subset(district):
    some = [s.pk for s in district.students[4:8]]
    counts = predictions_score(student_ids=some, as_of=district.week_start)
    assert counts.predictions == 4
    assert set(Prediction.objects.values_list("student_id", flat=True)) == set(some)
    assert all(p.school_id is not None for p in Prediction.objects.all())


def test_feature_version_mismatch_is_refused(district):
    ModelVersion.objects.filter(pk=district.version.pk).update(feature_version="other")
    with pytest.raises(FeatureVersionMismatch):
        predictions_score(as_of=district.week_start)
    assert not Prediction.objects.exists()


def test_forgetting_a_student_keeps_the_cache_of_other_buckets(district, django_assert_num_queries):
    from apps.predictions.services.scoring import GENERATION_BUCKETS, prediction_cache_forget

    changed, other = district.students[0], district.students[1]
    assert changed.pk % GENERATION_BUCKETS != other.pk % GENERATION_BUCKETS
    as_of = district.week_start + dt.timedelta(days=3)
    for student in (changed, other):
        prediction_for_student(student=student, as_of=as_of)
    prediction_cache_forget(student_ids=[changed.pk])
    with django_assert_num_queries(1):  # the active model's row; the score is still cached
        prediction_for_student(student=other, as_of=as_of)
    with CaptureQueriesContext(connection) as queries:
        prediction_for_student(student=changed, as_of=as_of)
    assert len(queries.captured_queries) > 1


def test_single_prediction_is_cached_and_invalidated(district, django_assert_num_queries):
    student = district.students[0]
    as_of = district.week_start + dt.timedelta(days=3)
    first = prediction_for_student(student=student, as_of=as_of)
    assert first is not None and first.week_start == district.week_start
    with django_assert_num_queries(1):  # the active model's row; the score is cached
        again = prediction_for_student(student=student, as_of=as_of)
    assert again == first
    student_data_changed.send(sender=None, student_ids=[student.pk], source="test")
    with CaptureQueriesContext(connection) as queries:
        prediction_for_student(student=student, as_of=as_of)
    assert len(queries.captured_queries) > 1  # recomputed, not served from the cache


def test_a_cold_prediction_keeps_its_bucket_neighbours_cached(
    district, django_assert_num_queries, monkeypatch
):
    # With more students than buckets, neighbours share one: computing one of them
    # must not make the others recompute (whose writes would evict it in turn).
    monkeypatch.setattr("apps.predictions.services.scoring.GENERATION_BUCKETS", 1)
    first, second = district.students[:2]
    as_of = district.week_start + dt.timedelta(days=3)
    prediction_for_student(student=first, as_of=as_of)
    prediction_for_student(student=second, as_of=as_of)
    with django_assert_num_queries(1):  # the active model's row; the score is still cached
        prediction_for_student(student=first, as_of=as_of)


def test_a_change_during_a_cold_prediction_is_not_hidden(district, monkeypatch):
    from apps.predictions.services import scoring

    student = district.students[0]
    as_of = district.week_start + dt.timedelta(days=3)
    real = scoring._score_history

    def changed_meanwhile(*args, **kwargs):
        scored = real(*args, **kwargs)
        scoring.prediction_cache_forget(student_ids=[student.pk])  # an import lands
        return scored

    monkeypatch.setattr(scoring, "_score_history", changed_meanwhile)
    prediction_for_student(student=student, as_of=as_of)
    monkeypatch.setattr(scoring, "_score_history", real)
    with CaptureQueriesContext(connection) as queries:
        prediction_for_student(student=student, as_of=as_of)
    assert len(queries.captured_queries) > 1  # not served from before the change
