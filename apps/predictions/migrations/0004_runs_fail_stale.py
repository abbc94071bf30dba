"""Training and scoring runs whose worker died are marked failed every 10 minutes."""

from django.db import migrations

TASK_NAME = "Mark training and scoring runs whose worker stopped as failed"


def create_schedule(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    every, _ = IntervalSchedule.objects.get_or_create(every=10, period="minutes")
    PeriodicTask.objects.get_or_create(
        name=TASK_NAME,
        defaults={
            "task": "apps.predictions.tasks.runs_fail_stale_task",
            "interval": every,
            # Not "ml": the worker that died, or one busy training, would never run it.
            "queue": "default",
            "description": "Fails training runs whose worker has not beaten for "
            "EDUPULSE_TRAINING_STALE_MINUTES and scoring runs with no school finished for "
            "EDUPULSE_SCORING_STALE_MINUTES.",
        },
    )


def remove_schedule(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name=TASK_NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("predictions", "0003_nightly_scoring"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedule, remove_schedule)]
