import pytest
from celery import Celery
from celery.contrib.testing.worker import start_worker

from apps.common.tasks import ping


def test_without_a_broker_tasks_run_inline() -> None:
    assert ping.delay().get(timeout=1) == "pong"


@pytest.mark.redis
def test_a_real_worker_answers_through_redis(redis_url: str) -> None:
    # A separate app configured like production's: the project app has
    # already cached its eager, backend-less configuration in this process.
    app = Celery("edupulse-test")
    app.config_from_object("django.conf:settings", namespace="CELERY")
    app.conf.update(broker_url=redis_url, result_backend=redis_url, task_always_eager=False)
    app.finalize()
    assert "common.ping" in app.tasks  # shared tasks bind to every app
    with start_worker(app, pool="solo", perform_ping_check=False, queues=["default"]):
        result = app.send_task("common.ping", queue="default")
        assert result.get(timeout=20) == "pong"
