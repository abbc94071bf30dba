from typing import Any

from django.utils import translation
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from apps.predictions.models import ModelVersion, Prediction, ScoringRun, TrainingRun


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


class PredictionSerializer(serializers.ModelSerializer):
    student_code = serializers.CharField(source="student.student_id", read_only=True)
    model_version_name = serializers.CharField(source="model_version.name", read_only=True)
    sentences = serializers.SerializerMethodField(
        help_text="The risk factors as sentences, in English and Bengali."
    )

    class Meta:
        model = Prediction
        fields = [
            "id",
            "student",
            "student_code",
            "school",
            "academic_year",
            "week_start",
            "model_version",
            "model_version_name",
            "probability",
            "tier",
            "factors",
            "sentences",
            "change_since_previous",
            "created_at",
        ]

    def get_sentences(self, prediction: Prediction) -> dict[str, list[str]]:
        return prediction_sentences(prediction)


def prediction_sentences(prediction: Prediction) -> dict[str, list[str]]:
    from apps.predictions.sentences import factor_sentences

    sentences = {}
    for language in ("en", "bn"):
        with translation.override(language):
            sentences[language] = factor_sentences(list(prediction.factors or []))
    return sentences


class CurrentRiskSerializer(serializers.Serializer):
    probability = serializers.FloatField()
    tier = serializers.CharField()
    week_start = serializers.DateField()
    change_since_previous = serializers.FloatField(allow_null=True)
    model_version = serializers.IntegerField()


class ScoringRunSerializer(serializers.ModelSerializer):
    class Meta:
        model = ScoringRun
        fields = [
            "id",
            "model_version",
            "as_of",
            "week_start",
            "status",
            "schools_total",
            "schools_done",
            "students",
            "predictions",
            "alerts",
            "failures",
            "duration_s",
            "started_at",
            "finished_at",
            "trigger",
            "created_at",
        ]


class PredictRequestSerializer(serializers.Serializer):
    student = serializers.IntegerField(required=False, help_text="The student's primary key.")
    student_id = serializers.CharField(
        required=False, max_length=32, help_text="The district's student identifier."
    )
    as_of = serializers.DateField(
        required=False, allow_null=True, help_text="Read features up to this day; empty: today."
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if (attrs.get("student") is None) == (attrs.get("student_id") is None):
            raise serializers.ValidationError(_("Give exactly one of student and student_id."))
        return attrs


class PredictBatchRequestSerializer(serializers.Serializer):
    students = serializers.ListField(
        child=serializers.IntegerField(), required=False, allow_empty=False, max_length=100_000
    )
    student_ids = serializers.ListField(
        child=serializers.CharField(max_length=32),
        required=False,
        allow_empty=False,
        max_length=100_000,
    )
    as_of = serializers.DateField(required=False, allow_null=True)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if (attrs.get("students") is None) == (attrs.get("student_ids") is None):
            raise serializers.ValidationError(_("Give exactly one of students and student_ids."))
        return attrs


class PredictBatchResultSerializer(serializers.Serializer):
    predictions = PredictionSerializer(many=True)
    without_features = serializers.ListField(child=serializers.CharField())
    not_found = serializers.ListField(child=serializers.CharField())
