"""TrainingFeedback.prediction_id (an integer) becomes the ForeignKey `prediction`.

The column keeps its name and its values; verdicts on predictions that no longer
exist lose the link (SET NULL is what the key does from now on anyway).
"""

import django.db.models.deletion
from django.db import migrations, models


def drop_dangling(apps, schema_editor):
    TrainingFeedback = apps.get_model("feedback", "TrainingFeedback")
    Prediction = apps.get_model("predictions", "Prediction")
    TrainingFeedback.objects.exclude(prediction=None).exclude(
        prediction__in=Prediction.objects.values("pk")
    ).update(prediction=None)


class Migration(migrations.Migration):
    dependencies = [
        ("feedback", "0001_initial"),
        ("predictions", "0002_scoring"),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="trainingfeedback", name="feedback_one_per_user_and_prediction"
        ),
        # Rename then alter: the ForeignKey named `prediction` owns the `prediction_id` column.
        migrations.RenameField(
            model_name="trainingfeedback", old_name="prediction_id", new_name="prediction"
        ),
        migrations.RunPython(drop_dangling, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="trainingfeedback",
            name="prediction",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="feedback",
                to="predictions.prediction",
                verbose_name="prediction",
            ),
        ),
        migrations.AddConstraint(
            model_name="trainingfeedback",
            constraint=models.UniqueConstraint(
                condition=models.Q(("prediction__isnull", False)),
                fields=("prediction", "given_by"),
                name="feedback_one_per_user_and_prediction",
            ),
        ),
    ]
