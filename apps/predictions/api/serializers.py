from rest_framework import serializers

from apps.predictions.models import ModelVersion, TrainingRun


class ModelVersionSerializer(serializers.ModelSerializer):
    class Meta:
        model = ModelVersion
        fields = [
            "id",
            "name",
            "status",
            "feature_version",
            "data_from",
            "data_to",
            "metrics",
            "validation_metrics",
            "baseline_metrics",
            "thresholds",
            "training_started_at",
            "training_finished_at",
            "promoted_at",
            "retired_at",
        ]


class TrainingRunSerializer(serializers.ModelSerializer):
    class Meta:
        model = TrainingRun
        fields = [
            "id",
            "status",
            "data_from",
            "data_to",
            "options",
            "promote",
            "progress",
            "error",
            "started_at",
            "finished_at",
            "model_version",
            "created_at",
        ]


class TrainUpdateRequestSerializer(serializers.Serializer):
    since = serializers.DateField(
        required=False,
        allow_null=True,
        help_text="Feedback and outcomes recorded from this date; empty: since the active "
        "model was trained.",
    )
    epochs = serializers.IntegerField(min_value=1, max_value=50, default=3)
    ewc_lambda = serializers.FloatField(min_value=0.0, max_value=1e6, default=100.0)
    promote = serializers.BooleanField(
        default=False, help_text="Make the updated model active if it is not worse."
    )


class TaskAcceptedSerializer(serializers.Serializer):
    task = serializers.CharField(help_text="Poll GET /api/v1/tasks/{task}.")
    status_url = serializers.CharField()
    training_run = serializers.IntegerField(required=False)


class FeatureDriftSerializer(serializers.Serializer):
    feature = serializers.CharField()
    observed = serializers.IntegerField()
    training_mean = serializers.FloatField()
    training_std = serializers.FloatField()
    current_mean = serializers.FloatField(allow_null=True)
    mean_shift = serializers.FloatField(allow_null=True)
    psi = serializers.FloatField(allow_null=True)
    level = serializers.ChoiceField(choices=["stable", "moderate", "large", "unknown"])


class DriftSerializer(serializers.Serializer):
    week_start = serializers.DateField(allow_null=True)
    students = serializers.IntegerField()
    features = FeatureDriftSerializer(many=True)
    note = serializers.CharField(required=False)


class MetricsSerializer(serializers.Serializer):
    model_version = ModelVersionSerializer(allow_null=True)
    performance = serializers.DictField()
    baselines = serializers.DictField()
    drift = DriftSerializer(allow_null=True)
