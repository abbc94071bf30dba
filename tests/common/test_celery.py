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


def test_each_worker_child_uses_the_configured_torch_threads(settings: object) -> None:
    import torch
    from celery.signals import worker_process_init

    before = torch.get_num_threads()
    try:
        settings.EDUPULSE_TORCH_THREADS = 1  # type: ignore[attr-defined]
        torch.set_num_threads(2)
        worker_process_init.send(sender=None)
        assert torch.get_num_threads() == 1
        settings.EDUPULSE_TORCH_THREADS = 0  # type: ignore[attr-defined]
        torch.set_num_threads(2)
        worker_process_init.send(sender=None)
        assert torch.get_num_threads() == 2  # torch's own choice is left alone
    finally:
        torch.set_num_threads(before)
