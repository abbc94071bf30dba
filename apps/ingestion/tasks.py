from celery import shared_task

from apps.ingestion.services import import_job_run, import_jobs_fail_stale


@shared_task(name="apps.ingestion.tasks.import_job_run_task", acks_late=True)
def import_job_run_task(job_id: int) -> dict[str, object]:
    # Claiming is a conditional UPDATE inside the service: a redelivered
    # message for a job another worker already took does nothing.
    job = import_job_run(job_id=job_id)
    return {"job": job.pk, "status": job.status}


@shared_task(name="apps.ingestion.tasks.import_jobs_fail_stale_task")
def import_jobs_fail_stale_task() -> list[int]:
    return import_jobs_fail_stale()
