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
from apps.students.models import Enrollment, Student
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
    # for_students takes two: the current ids (one index step per student), then the rows.
    assert cost(ids[:2]) == cost(ids) == 7


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


def test_school_figures_read_each_enrolled_students_latest_prediction(scored):
    source = risk_source()
    school = scored.schools[0]
    mine = [e.student_id for e in Enrollment.objects.filter(school=school).order_by("student_id")]
    left, unscored = mine[0], mine[1]
    Enrollment.objects.filter(student_id=left).update(
        exit_date=scored.week_start, exit_reason="transferred"
    )
    # Not scored in the latest week: the earlier prediction is still the current one.
    Prediction.objects.filter(student_id=unscored, week_start=scored.week_start).delete()
    earlier = Prediction.objects.get(student_id=unscored)
    Prediction.objects.filter(pk=earlier.pk).update(tier="high", change_since_previous=0.5)
    for i, pk in enumerate(mine[2:]):
        Prediction.objects.filter(student_id=pk, week_start=scored.week_start).update(
            tier=RiskTier.values[i % 3], change_since_previous=0.01 * (i - 1)
        )
    current = {}
    for p in Prediction.objects.order_by("week_start"):
        current[p.student_id] = p  # the latest wins
    enrolled = [pk for pk in mine if pk != left]
    tiers: dict[str, int] = {}
    for pk in enrolled:
        tiers[current[pk].tier] = tiers.get(current[pk].tier, 0) + 1
    assert source.tier_counts([school.pk]) == tiers
    rising = sorted(
        (current[pk] for pk in enrolled if (current[pk].change_since_previous or 0) > 0),
        key=lambda p: (-p.change_since_previous, p.student_id),
    )
    risers = source.top_risers([school.pk], 3)
    assert [r.prediction_id for r in risers] == [p.pk for p in rising[:3]]
    assert risers[0].student_id == unscored
    everyone = Student.objects.filter(pk__in=[s.pk for s in scored.students])
    high = [p for p in current.values() if p.tier == "high"]
    assert source.new_high_risk_count(everyone, None) == len(high) > 0
    newest = max(p.created_at for p in high)
    assert source.new_high_risk_count(everyone, newest) == 0
    assert source.new_high_risk_count(everyone, newest - dt.timedelta(microseconds=1)) == len(
        [p for p in high if p.created_at == newest]
    )


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
    # Bengali readers get Bengali digits, in the numbers and the weeks alike.
    assert "৯৫" in bengali and "৬১" in bengali and "৪" in bengali
    assert not any(digit in bengali for digit in "0123456789")
    static = {"feature": "stipend", "kind": "static", "direction": "lowers"}
    with translation.override("en"):
        assert factor_sentence(static) == "Stipend lowers the risk."


def test_a_change_too_small_to_show_reads_as_no_change():
    factor = {
        "feature": "attendance_rate",
        "kind": "weekly",
        "direction": "raises",
        "recent_weeks": 4,
        "before": 0.902,
        "after": 0.898,
    }
    with translation.override("en"):
        assert factor_sentence(factor) == "Attendance stayed at 90%, which raises the risk."
    marks = dict(factor, feature="marks_average", before=41.04, after=40.96, direction="lowers")
    with translation.override("en"):
        assert factor_sentence(marks) == "Average marks stayed at 41.0, which lowers the risk."
