import datetime as dt

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection
from django.test import override_settings
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from apps.features import store
from apps.features.signals import features_updated
from apps.predictions.models import Prediction, ScoringRun, ScoringStatus
from apps.predictions.services.scoring_runs import (
    scoring_run_finish,
    scoring_run_request,
    scoring_run_start,
    scoring_runs_fail_stale,
    scoring_school_execute,
)
from apps.predictions.tasks import runs_fail_stale_task, score_district
from tests.predictions.scoring_support import district_make

pytestmark = pytest.mark.django_db


@pytest.fixture
def district(tmp_path):
    with override_settings(EDUPULSE_MODEL_DIR=tmp_path):
        cache.clear()
        yield district_make(tmp_path)


def test_command_scores_the_district_and_records_the_run(district, capsys):
    call_command("score_students", as_of=district.week_start)
    run = ScoringRun.objects.get()
    assert run.status == ScoringStatus.SUCCEEDED
    assert (run.students, run.predictions, run.schools_done, run.schools_total) == (12, 12, 2, 2)
    assert run.model_version == district.version and run.duration_s is not None
    assert "12 predictions" in capsys.readouterr().out
    # Again for the same week and model: replaced, not duplicated.
    call_command("score_students", as_of=district.week_start)
    assert Prediction.objects.count() == 12 and ScoringRun.objects.count() == 2


def test_command_one_school_by_eiin(district):
    school = district.schools[1]
    call_command("score_students", school=[school.eiin], as_of=district.week_start)
    assert set(Prediction.objects.values_list("school_id", flat=True)) == {school.pk}


def test_default_week_is_the_latest_with_features(district):
    call_command("score_students")
    assert set(Prediction.objects.values_list("week_start", flat=True)) == {district.week_start}


def test_a_failing_school_is_recorded_and_the_others_go_on(district):
    # A corrupt stored row (3 bytes where a vector belongs) breaks the second school only.
    broken = district.schools[1]
    with connection.cursor() as cursor:
        cursor.execute(
            f'UPDATE {store.TABLE} SET "values" = %s WHERE school_id = %s',  # noqa: S608
            [b"\x00\x00\x00", broken.pk],
        )
    run = scoring_run_request(as_of=district.week_start, trigger="test")
    score_district.apply(args=(run.pk,)).get()
    run.refresh_from_db()
    assert run.status == ScoringStatus.PARTIAL
    assert (run.predictions, run.schools_done) == (6, 1)
    assert [f["school"] for f in run.failures] == [broken.pk]
    assert run.failures[0]["error"]


def test_feature_update_rescores_those_students(district, django_capture_on_commit_callbacks):
    call_command("score_students", as_of=district.week_start)
    Prediction.objects.all().delete()
    some = [s.pk for s in district.students[:3]]
    with django_capture_on_commit_callbacks(execute=True):
        features_updated.send(sender=None, student_ids=some, source="test")
    assert set(Prediction.objects.values_list("student_id", flat=True)) == set(some)
    assert ScoringRun.objects.filter(trigger__startswith="features").count() == 1


def test_nightly_schedule_exists():
    task = PeriodicTask.objects.get(task="apps.predictions.tasks.score_district")
    assert task.crontab is not None and task.enabled


def test_scheduled_run_without_model_is_skipped():
    assert score_district.apply().get() == {"run": None, "skipped": "no active model"}


def test_a_run_whose_workflow_was_lost_is_failed_and_a_late_finish_still_counts(district):
    lost = scoring_run_request(as_of=district.week_start, trigger="test")
    busy = scoring_run_request(as_of=district.week_start, trigger="test")
    for run in (lost, busy):
        scoring_run_start(run=run)
    long_ago = timezone.now() - dt.timedelta(hours=3)
    ScoringRun.objects.filter(pk__in=[lost.pk, busy.pk]).update(updated_at=long_ago)
    # A school finishing says the workflow is alive.
    result = scoring_school_execute(run_id=busy.pk, school_id=district.schools[0].pk)

    assert runs_fail_stale_task.apply().get() == {"training": [], "scoring": [lost.pk]}
    lost.refresh_from_db()
    assert lost.status == ScoringStatus.FAILED and lost.finished_at is not None
    assert lost.failures[0]["error"].startswith("worker_lost")
    assert ScoringRun.objects.get(pk=busy.pk).status == ScoringStatus.RUNNING
    assert scoring_runs_fail_stale() == []
    # Should the lost workflow finish after all, its real outcome is recorded.
    assert scoring_run_finish(run_id=lost.pk, results=[result]).status == ScoringStatus.SUCCEEDED
