from celery import shared_task


@shared_task(name="common.ping", soft_time_limit=10, time_limit=15)
def ping() -> str:
    """Answers from a worker; the readiness check and deploy smoke tests enqueue it."""
    return "pong"
