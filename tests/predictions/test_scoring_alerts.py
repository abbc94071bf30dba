import pytest
from django.core import mail
from django.core.cache import cache
from django.test import override_settings
from django.urls import reverse

from apps.accounts.models import Role
from apps.predictions.models import AlertKind, Notification, Prediction
from apps.predictions.services.alerts import alert_kind
from apps.predictions.services.scoring import predictions_score
from tests.factories import StaffScopeFactory, UserFactory
from tests.predictions.scoring_support import district_make

pytestmark = pytest.mark.django_db


@pytest.fixture
def district(tmp_path):
    with override_settings(EDUPULSE_MODEL_DIR=tmp_path):
        cache.clear()
        yield district_make(tmp_path)


def test_alert_rules():
    assert alert_kind(probability=0.9, tier="high", previous=None) == AlertKind.ENTERED_HIGH
    assert alert_kind(probability=0.9, tier="high", previous=(0.3, "low")) == AlertKind.ENTERED_HIGH
    assert alert_kind(probability=0.95, tier="high", previous=(0.9, "high")) is None
    with override_settings(EDUPULSE_ALERT_RISE=10):
        assert alert_kind(probability=0.45, tier="medium", previous=(0.3, "low")) == AlertKind.ROSE
        assert alert_kind(probability=0.35, tier="medium", previous=(0.3, "low")) is None


def test_counselors_in_scope_are_alerted_once(district, django_capture_on_commit_callbacks):
    school, other = district.schools
    counselor = UserFactory(role=Role.COUNSELOR, email="c@example.org")
    StaffScopeFactory(user=counselor, school=school, region=None)
    regional = UserFactory(role=Role.COUNSELOR, email="")
    StaffScopeFactory(user=regional, school=None, region=school.region)
    stranger = UserFactory(role=Role.COUNSELOR, email="s@example.org")
    StaffScopeFactory(user=stranger, school=other, region=None)
    # Everyone at the first school jumps into the high tier.
    with override_settings(EDUPULSE_ALERT_RISE=100):
        predictions_score(as_of=district.week_start, school_ids=[other.pk])
    Notification.objects.all().delete()
    high = {"high": 0.0, "watch": 0.0}
    with django_capture_on_commit_callbacks(execute=True):
        with override_settings(EDUPULSE_ALERT_RISE=100):
            _score_with_thresholds(district, school, high)
    students = set(Prediction.objects.filter(school=school).values_list("student_id", flat=True))
    mine = Notification.objects.filter(recipient=counselor)
    assert set(mine.values_list("student_id", flat=True)) == students
    assert set(mine.values_list("kind", flat=True)) == {AlertKind.ENTERED_HIGH}
    assert Notification.objects.filter(recipient=regional).count() == len(students)
    assert not Notification.objects.filter(recipient=stranger).exists()
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["c@example.org"]
    # The same change again (a re-run): no new alert, no new email.
    with django_capture_on_commit_callbacks(execute=True):
        with override_settings(EDUPULSE_ALERT_RISE=100):
            _score_with_thresholds(district, school, high)
    assert mine.count() == len(students) and len(mail.outbox) == 1


def _score_with_thresholds(district, school, thresholds):
    from apps.predictions.loader import active_model
    from ml.metrics import Thresholds

    model = active_model()
    model.loaded.thresholds = Thresholds(
        high=thresholds["high"], watch=thresholds["watch"], target_recall=0.8, watch_recall=0.9
    )
    predictions_score(as_of=district.week_start, school_ids=[school.pk])


def _saved_user():  # type: ignore[no-untyped-def]
    # The factory sets the password after saving; the session's hash needs it stored.
    user = UserFactory(role=Role.COUNSELOR)
    user.save()
    return user


def test_notification_page_lists_only_mine(district, client):
    counselor = _saved_user()
    StaffScopeFactory(user=counselor, school=district.schools[0], region=None)
    _score_with_thresholds(district, district.schools[0], {"high": 0.0, "watch": 0.0})
    other = _saved_user()
    client.force_login(counselor)
    page = client.get(reverse("predictions:notifications"))
    assert page.status_code == 200
    assert page.context["page"].paginator.count == 6
    client.post(reverse("predictions:notifications_read"))
    assert not Notification.objects.filter(recipient=counselor, read_at__isnull=True).exists()
    client.force_login(other)
    assert client.get(reverse("predictions:notifications")).context["page"].paginator.count == 0
