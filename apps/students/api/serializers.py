from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.students.models import (
    AttendanceRecord,
    DisciplineIncident,
    Enrollment,
    GradeRecord,
    School,
    Student,
)


class SchoolSerializer(serializers.ModelSerializer):
    region_code = serializers.CharField(source="region.code", read_only=True)
    region_name = serializers.CharField(source="region.name", read_only=True)

    class Meta:
        model = School
        fields = [
            "id",
            "eiin",
            "name",
            "name_bn",
            "school_type",
            "region",
            "region_code",
            "region_name",
            "is_active",
        ]


class CurrentRiskSerializer(serializers.Serializer):
    probability = serializers.FloatField()
    tier = serializers.CharField()
    week_start = serializers.DateField()
    change_since_previous = serializers.FloatField(allow_null=True)
    prediction = serializers.IntegerField()


class StudentSerializer(serializers.ModelSerializer):
    current_risk = serializers.SerializerMethodField(
        help_text="The latest prediction by the active model; null when none yet."
    )

    # Contacts (guardian's phone) stay out of the API: scripts need ids, not phone numbers.
    class Meta:
        model = Student
        fields = [
            "id",
            "student_id",
            "name",
            "name_bn",
            "gender",
            "date_of_birth",
            "stipend_recipient",
            "has_disability",
            "current_risk",
        ]

    @extend_schema_field(CurrentRiskSerializer(allow_null=True))
    def get_current_risk(self, student: Student) -> dict[str, Any] | None:
        # The view looks the page's predictions up in one query (context "latest").
        latest = self.context.get("latest") or {}
        prediction = latest.get(student.pk)
        if prediction is None:
            return None
        return {
            "probability": prediction.probability,
            "tier": prediction.tier,
            "week_start": prediction.week_start,
            "change_since_previous": prediction.change_since_previous,
            "prediction": prediction.pk,
        }


class EnrollmentSerializer(serializers.ModelSerializer):
    student_code = serializers.CharField(source="student.student_id", read_only=True)
    school_eiin = serializers.CharField(source="school.eiin", read_only=True)

    class Meta:
        model = Enrollment
        fields = [
            "id",
            "student",
            "student_code",
            "school",
            "school_eiin",
            "academic_year",
            "grade_level",
            "section",
            "entry_date",
            "exit_date",
            "exit_reason",
        ]


class AttendanceSerializer(serializers.ModelSerializer):
    class Meta:
        model = AttendanceRecord
        fields = ["date", "school", "status"]


class GradeSerializer(serializers.ModelSerializer):
    subject_code = serializers.CharField(source="subject.code", read_only=True)

    class Meta:
        model = GradeRecord
        fields = [
            "id",
            "subject",
            "subject_code",
            "academic_year",
            "term",
            "assessment",
            "assessment_date",
            "score",
            "max_score",
            "is_missing",
        ]


class DisciplineSerializer(serializers.ModelSerializer):
    class Meta:
        model = DisciplineIncident
        fields = [
            "id",
            "school",
            "date",
            "category",
            "severity",
            "action_taken",
            "days_suspended",
        ]
