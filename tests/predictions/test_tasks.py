import datetime as dt
import time
from pathlib import Path
from typing import Any

import pytest
from celery import Celery, current_app
from celery.contrib.testing.worker import start_worker
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from apps.common.heartbeat import beat, beating, last_beats
from apps.predictions.models import ModelVersion, TrainingRun, TrainingStatus
from apps.predictions.services import (
    runs,
    training_run_claim,
    training_run_execute,
    training_run_request,
    training_runs_fail_stale,
)
from apps.predictions.tasks import runs_fail_stale_task, train_model
from tests.predictions.conftest import ArraySource, tiny_options


@pytest.mark.django_db
def test_a_run_is_claimed_once() -> None:
    run = training_run_request(requested_by=None, enqueue=False)
    assert training_run_claim(run_id=run.pk) is True
    assert training_run_claim(run_id=run.pk) is False
    run.refresh_from_db()
    assert run.status == TrainingStatus.RUNNING and run.started_at is not None


@pytest.mark.django_db
def test_the_task_stops_when_the_run_is_already_taken() -> None:
    run = training_run_request(requested_by=None, enqueue=False)
    TrainingRun.objects.filter(pk=run.pk).update(
        status=TrainingStatus.RUNNING, started_at=timezone.now()
    )
    assert train_model.delay(run.pk).get() == {"run": run.pk, "claimed": False}


@pytest.mark.django_db
def test_a_request_enqueues_the_task_only_after_commit(
    django_capture_on_commit_callbacks,  # type: ignore[no-untyped-def]
) -> None:
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        run = training_run_request(requested_by=None, options={"epochs": 3}, promote=True)
    assert len(callbacks) == 1
    assert run.options == {"epochs": 3} and run.promote is True


@pytest.mark.django_db
def test_bad_options_are_refused_when_requested() -> None:
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        training_run_request(requested_by=None, options={"epochs": 0}, enqueue=False)
    assert not TrainingRun.objects.exists()


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_worker_on_the_ml_queue_runs_a_training_run_once(
    redis_url: str, request: pytest.FixtureRequest
) -> None:
    # A separate app configured like production's (see tests/common/test_celery.py).
    # start_worker makes its app the current and default one; put the project's
    # back afterwards, or shared tasks called later in the session stop being eager.
    project_app = current_app._get_current_object()
    request.addfinalizer(project_app.set_default)
    request.addfinalizer(project_app.set_current)
    app = Celery("edupulse-test-ml", set_as_current=False)
    app.config_from_object("django.conf:settings", namespace="CELERY")
    app.conf.update(broker_url=redis_url, result_backend=redis_url, task_always_eager=False)
    app.finalize()
    name = "apps.predictions.tasks.train_model"
    assert name in app.tasks
    assert app.amqp.router.route({}, name)["queue"].name == "ml"
    run = training_run_request(requested_by=None, enqueue=False)
    # Only the ml queue is consumed: the task reaches it through the routing settings.
    with start_worker(app, pool="solo", perform_ping_check=False, queues=["ml"]):
        first = app.send_task(name, args=[run.pk])
        with pytest.raises(Exception, match="No labelled samples"):
            first.get(timeout=60)
        again = app.send_task(name, args=[run.pk])
        assert again.get(timeout=60) == {"run": run.pk, "claimed": False}
    run.refresh_from_db()
    assert run.status == TrainingStatus.FAILED
    assert "No labelled samples" in run.error


@pytest.mark.django_db
def test_only_someone_who_may_promote_can_ask_for_promotion() -> None:
    from django.core.exceptions import PermissionDenied

    from apps.accounts.models import Role
    from apps.accounts.services import user_create

    analyst = user_create(username="a", password="pw-long-enough", role=Role.ANALYST)
    with pytest.raises(PermissionDenied):
        training_run_request(requested_by=analyst, promote=True, enqueue=False)
    assert training_run_request(requested_by=analyst, promote=False, enqueue=False).pk


class WorkerKilled(BaseException):
    """Stands for SIGKILL: no `except Exception` in the worker sees it."""


@pytest.mark.django_db
def test_a_run_whose_worker_dies_mid_training_is_failed_by_the_sweep(
    district: ArraySource, model_dir: Path
) -> None:
    run = training_run_request(requested_by=None, options=tiny_options(epochs=2), enqueue=False)
    long_ago = timezone.now() - dt.timedelta(hours=1)
    swept_while_alive: list[list[int]] = []

    def progress(event: dict[str, Any]) -> None:
        if "epoch" not in event:
            return
        # Even with a row untouched for an hour, the worker's beat keeps its run.
        TrainingRun.objects.filter(pk=run.pk).update(updated_at=long_ago)
        swept_while_alive.append(training_runs_fail_stale(older_than=dt.timedelta(minutes=10)))
        raise WorkerKilled

    with pytest.raises(WorkerKilled):
        training_run_execute(run_id=run.pk, progress=progress, source=district)

    assert swept_while_alive == [[]]
    run.refresh_from_db()
    assert run.status == TrainingStatus.RUNNING  # what a killed worker leaves behind
    assert training_run_claim(run_id=run.pk) is False  # a redelivery cannot take it
    assert training_runs_fail_stale(older_than=dt.timedelta(0)) == [run.pk]
    run.refresh_from_db()
    assert run.status == TrainingStatus.FAILED
    assert run.error.startswith("worker_lost") and run.finished_at is not None
    assert not ModelVersion.objects.exists()
    assert training_runs_fail_stale(older_than=dt.timedelta(0)) == []


@pytest.mark.django_db
def test_the_beat_schedule_fails_only_runs_whose_worker_stopped() -> None:
    dead, busy, fresh, waiting = (
        training_run_request(requested_by=None, enqueue=False) for _ in range(4)
    )
    long_ago = timezone.now() - dt.timedelta(minutes=settings.EDUPULSE_TRAINING_STALE_MINUTES + 1)
    TrainingRun.objects.filter(pk__in=[dead.pk, busy.pk]).update(
        status=TrainingStatus.RUNNING, updated_at=long_ago
    )
    TrainingRun.objects.filter(pk=fresh.pk).update(status=TrainingStatus.RUNNING)
    TrainingRun.objects.filter(pk=waiting.pk).update(updated_at=long_ago)  # pending, not lost
    beat(runs._alive_key(busy.pk), ttl_seconds=60)
    scheduled = PeriodicTask.objects.get(task=runs_fail_stale_task.name)
    assert scheduled.enabled and scheduled.interval is not None
    assert scheduled.queue == "default"

    assert runs_fail_stale_task.apply().get() == {"training": [dead.pk], "scoring": []}
    statuses = dict(TrainingRun.objects.values_list("pk", "status"))
    assert statuses == {
        dead.pk: TrainingStatus.FAILED,
        busy.pk: TrainingStatus.RUNNING,
        fresh.pk: TrainingStatus.RUNNING,
        waiting.pk: TrainingStatus.PENDING,
    }


def test_a_beating_block_beats_until_it_ends() -> None:
    key = "tests:heartbeat"
    cache.delete(key)
    with beating(key, every_seconds=0.02, ttl_seconds=60):
        first = last_beats([key])[key]
        time.sleep(0.2)
        later = last_beats([key])[key]
    ended = last_beats([key])[key]
    time.sleep(0.1)

    assert first < later
    assert last_beats([key])[key] == ended  # the thread stopped with the block
