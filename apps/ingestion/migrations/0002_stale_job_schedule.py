"""Jobs whose worker died are marked failed every 10 minutes, not only when the next import starts."""

from django.db import migrations

TASK_NAME = "Mark import jobs whose worker stopped as failed"


def create_schedule(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    every, _ = IntervalSchedule.objects.get_or_create(every=10, period="minutes")
    PeriodicTask.objects.get_or_create(
        name=TASK_NAME,
        defaults={
            "task": "apps.ingestion.tasks.import_jobs_fail_stale_task",
            "interval": every,
            "queue": "ingest",
            "description": "Fails jobs whose heartbeat is older than EDUPULSE_IMPORT_STALE_MINUTES.",
        },
    )


def remove_schedule(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name=TASK_NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("ingestion", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedule, remove_schedule)]
