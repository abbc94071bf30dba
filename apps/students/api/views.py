"""Schools, students, enrollments and each student's records: read-only and scoped.

Every queryset starts from a visibility selector, so an object outside the caller's
scope is simply not found (404): its existence does not leak through a 403.
"""

from typing import Any

import django_filters
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import generics, viewsets

from apps.common.api import CanViewModel, errors
from apps.students.api.serializers import (
    AttendanceSerializer,
    DisciplineSerializer,
    EnrollmentSerializer,
    GradeSerializer,
    SchoolSerializer,
    StudentSerializer,
)
from apps.students.models import (
    AttendanceRecord,
    DisciplineIncident,
    Enrollment,
    GradeRecord,
    School,
    Student,
)
from apps.students.selectors import (
    enrollments_visible_to,
    schools_visible_to,
    students_visible_to,
)

LIST_ERRORS = errors(400)
DETAIL_ERRORS = errors(404)


class SchoolFilter(django_filters.FilterSet):
    region = django_filters.CharFilter(
        field_name="region__path", lookup_expr="startswith", label="Region path prefix"
    )
    name = django_filters.CharFilter(lookup_expr="icontains")

    class Meta:
        model = School
        fields = ["eiin", "school_type", "is_active", "region", "name"]


@extend_schema_view(
    list=extend_schema(responses={200: SchoolSerializer(many=True), **LIST_ERRORS}),
    retrieve=extend_schema(responses={200: SchoolSerializer, **DETAIL_ERRORS}),
)
class SchoolViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = SchoolSerializer
    permission_classes = [CanViewModel]
    filterset_class = SchoolFilter
    ordering_fields = ["name", "eiin", "school_type"]
    ordering = ["name"]

    def get_queryset(self) -> QuerySet[School]:
        return schools_visible_to(self.request.user)  # type: ignore[arg-type]


class StudentFilter(django_filters.FilterSet):
    school = django_filters.NumberFilter(field_name="enrollments__school", distinct=True)
    academic_year = django_filters.NumberFilter(
        field_name="enrollments__academic_year", distinct=True
    )
    grade_level = django_filters.NumberFilter(field_name="enrollments__grade_level", distinct=True)
    name = django_filters.CharFilter(lookup_expr="icontains")

    class Meta:
        model = Student
        fields = ["student_id", "gender", "stipend_recipient", "has_disability", "name"]


@extend_schema_view(
    list=extend_schema(responses={200: StudentSerializer(many=True), **LIST_ERRORS}),
    retrieve=extend_schema(responses={200: StudentSerializer, **DETAIL_ERRORS}),
)
class StudentViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = StudentSerializer
    permission_classes = [CanViewModel]
    filterset_class = StudentFilter
    ordering_fields = ["student_id", "name"]
    ordering = ["student_id"]

    def get_queryset(self) -> QuerySet[Student]:
        return students_visible_to(self.request.user)  # type: ignore[arg-type]

    def get_serializer(self, *args: Any, **kwargs: Any) -> Any:
        # Current risk for the page (or the one student) in one query, not one per row.
        from apps.predictions.selectors import predictions_latest_for

        if args:
            rows = args[0] if kwargs.get("many") else [args[0]]
            kwargs.setdefault("context", self.get_serializer_context())
            kwargs["context"]["latest"] = predictions_latest_for(rows)
        return super().get_serializer(*args, **kwargs)


class EnrollmentFilter(django_filters.FilterSet):
    open = django_filters.BooleanFilter(field_name="exit_date", lookup_expr="isnull")

    class Meta:
        model = Enrollment
        fields = ["school", "student", "academic_year", "grade_level", "section", "exit_reason"]


@extend_schema_view(
    list=extend_schema(responses={200: EnrollmentSerializer(many=True), **LIST_ERRORS}),
    retrieve=extend_schema(responses={200: EnrollmentSerializer, **DETAIL_ERRORS}),
)
class EnrollmentViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = EnrollmentSerializer
    permission_classes = [CanViewModel]
    filterset_class = EnrollmentFilter
    ordering_fields = ["academic_year", "grade_level", "entry_date"]
    ordering = ["-academic_year", "student__student_id"]

    def get_queryset(self) -> QuerySet[Enrollment]:
        return enrollments_visible_to(self.request.user)  # type: ignore[arg-type]


class _StudentRecords(generics.ListAPIView):
    """One student's records; the student must be in the caller's scope (else 404)."""

    permission_classes = [CanViewModel]
    model: Any = None

    def get_queryset(self) -> QuerySet[Any]:
        if getattr(self, "swagger_fake_view", False):  # schema generation: no user
            return self.model.objects.none()
        student = get_object_or_404(
            students_visible_to(self.request.user),  # type: ignore[arg-type]
            pk=self.kwargs["student_pk"],
        )
        return self.model.objects.filter(student=student)


class DatedFilter(django_filters.FilterSet):
    date_from = django_filters.DateFilter(field_name="date", lookup_expr="gte")
    date_to = django_filters.DateFilter(field_name="date", lookup_expr="lte")


class AttendanceFilter(DatedFilter):
    class Meta:
        model = AttendanceRecord
        fields = ["status", "school", "date_from", "date_to"]


class DisciplineFilter(DatedFilter):
    class Meta:
        model = DisciplineIncident
        fields = ["category", "severity", "school", "date_from", "date_to"]


class GradeFilter(django_filters.FilterSet):
    subject = django_filters.CharFilter(field_name="subject__code")

    class Meta:
        model = GradeRecord
        fields = ["academic_year", "term", "subject", "is_missing"]


@extend_schema(responses={200: AttendanceSerializer(many=True), **errors(400, 404)})
class StudentAttendanceView(_StudentRecords):
    model = AttendanceRecord
    serializer_class = AttendanceSerializer
    filterset_class = AttendanceFilter
    ordering_fields = ["date"]
    ordering = ["-date"]


@extend_schema(responses={200: GradeSerializer(many=True), **errors(400, 404)})
class StudentGradesView(_StudentRecords):
    model = GradeRecord
    serializer_class = GradeSerializer
    filterset_class = GradeFilter
    ordering_fields = ["assessment_date", "academic_year"]
    ordering = ["-assessment_date", "id"]

    def get_queryset(self) -> QuerySet[Any]:
        return super().get_queryset().select_related("subject")


@extend_schema(responses={200: DisciplineSerializer(many=True), **errors(400, 404)})
class StudentDisciplineView(_StudentRecords):
    model = DisciplineIncident
    serializer_class = DisciplineSerializer
    filterset_class = DisciplineFilter
    ordering_fields = ["date", "severity"]
    ordering = ["-date", "id"]
