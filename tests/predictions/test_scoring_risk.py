import datetime as dt

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import translation

from apps.dashboards.risk import NoPredictions, RiskTier, risk_source
from apps.predictions.models import ModelStatus, ModelVersion, Prediction
from apps.predictions.risk import PredictionRiskSource
from apps.predictions.sentences import factor_sentence
from apps.students.models import Enrollment
from tests.predictions.scoring_support import district_make

pytestmark = pytest.mark.django_db


@pytest.fixture
def scored(tmp_path):
    with override_settings(EDUPULSE_MODEL_DIR=tmp_path):
        cache.clear()
        district = district_make(tmp_path)
        from apps.predictions.services.scoring import predictions_score

        predictions_score(as_of=district.week_start - dt.timedelta(days=7))
        predictions_score(as_of=district.week_start)
        yield district


def test_the_pages_read_real_scores_only_while_a_model_is_active(scored):
    source = risk_source()
    assert isinstance(source, PredictionRiskSource) and source.available
    ModelVersion.objects.update(status=ModelStatus.RETIRED)
    assert isinstance(risk_source(), NoPredictions)


def test_current_risk_history_and_factors(scored):
    source = risk_source()
    ids = [s.pk for s in scored.students]
    risks = source.for_students(ids)
    assert set(risks) == set(ids)
    for pk, risk in risks.items():
        latest = Prediction.objects.get(student_id=pk, week_start=scored.week_start)
        assert (risk.prediction_id, risk.probability, risk.tier) == (
            latest.pk,
            latest.probability,
            latest.tier,
        )
        assert risk.change_since_last_week == pytest.approx(latest.change_since_previous)
        points = source.history(pk)
        assert [p.week_start for p in points] == [
            scored.week_start - dt.timedelta(days=7),
            scored.week_start,
        ]
        if latest.factors:
            factors = source.factors(pk)
            assert factors[0].sentence == factor_sentence(latest.factors[0]) == risk.top_reason
            assert all(isinstance(w, dt.date) for f in factors for w in f.weeks)
    counts = source.tier_counts([s.pk for s in scored.schools])
    assert sum(counts.values()) == 12 and set(counts) <= set(RiskTier.values)


def test_each_method_costs_the_same_queries_for_few_and_many(scored):
    source = risk_source()
    school_ids = [s.pk for s in scored.schools]

    def cost(ids: list[int]) -> int:
        with CaptureQueriesContext(connection) as queries:
            source.for_students(ids)
            source.tier_counts(school_ids)
            source.top_risers(school_ids, 5)
            source.new_high_risk_count(Enrollment.objects.filter(student_id__in=ids), None)
            list(source.annotate(Enrollment.objects.filter(student_id__in=ids)))
            list(source.filter(Enrollment.objects.all(), tier="high", rising=True))
        return len(queries)

    ids = [s.pk for s in scored.students]
    assert cost(ids[:2]) == cost(ids) == 6


def test_caseload_sorting_and_filters_in_sql(scored):
    source = risk_source()
    rows = source.annotate(Enrollment.objects.all()).order_by("-risk_probability")
    probabilities = [e.risk_probability for e in rows]
    assert probabilities == sorted(probabilities, reverse=True)
    latest = Prediction.objects.filter(week_start=scored.week_start)
    for tier in RiskTier.values:
        got = set(
            source.filter(Enrollment.objects.all(), tier=tier, rising=False).values_list(
                "student_id", flat=True
            )
        )
        assert got == set(latest.filter(tier=tier).values_list("student_id", flat=True))
    rising = set(
        source.filter(Enrollment.objects.all(), tier="", rising=True).values_list(
            "student_id", flat=True
        )
    )
    assert rising == set(
        latest.filter(change_since_previous__gt=0).values_list("student_id", flat=True)
    )
    risers = source.top_risers([s.pk for s in scored.schools], 3)
    changes = [r.change_since_last_week for r in risers]
    assert all(c > 0 for c in changes) and changes == sorted(changes, reverse=True)


def test_sentences_in_both_languages():
    factor = {
        "feature": "attendance_rate",
        "kind": "weekly",
        "direction": "raises",
        "weeks": ["2026-03-01"],
        "recent_weeks": 4,
        "before": 0.95,
        "after": 0.61,
    }
    with translation.override("en"):
        english = factor_sentence(factor)
    assert english == "Attendance fell from 95% to 61% over the last 4 weeks."
    with translation.override("bn"):
        bengali = factor_sentence(factor)
    assert bengali != english and "উপস্থিতি" in bengali
    static = {"feature": "stipend", "kind": "static", "direction": "lowers"}
    with translation.override("en"):
        assert factor_sentence(static) == "Stipend lowers the risk."
