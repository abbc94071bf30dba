import os

from celery import Celery
from celery.signals import worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "edupulse.settings.local")

app = Celery("edupulse")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_process_init.connect
def torch_threads_limit(**_kwargs: object) -> None:
    """Give each worker child EDUPULSE_TORCH_THREADS threads for the model (0: torch's choice).

    torch takes one thread per core in every process, so `--concurrency N` on C
    cores would run N x C threads that thrash (OpenMP threads spin while they wait
    for each other). C / N each keeps every core busy; scoring's chord runs one
    school per child.
    """
    from django.conf import settings

    threads = settings.EDUPULSE_TORCH_THREADS
    if threads:
        import torch

        torch.set_num_threads(threads)
