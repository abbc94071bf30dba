from django.urls import path
from rest_framework.routers import SimpleRouter

from apps.students.api import views

router = SimpleRouter(trailing_slash=False)
router.register("schools", views.SchoolViewSet, basename="school")
router.register("students", views.StudentViewSet, basename="student")
router.register("enrollments", views.EnrollmentViewSet, basename="enrollment")

urlpatterns = [
    *router.urls,
    path(
        "students/<int:student_pk>/attendance",
        views.StudentAttendanceView.as_view(),
        name="student-attendance",
    ),
    path(
        "students/<int:student_pk>/grades", views.StudentGradesView.as_view(), name="student-grades"
    ),
    path(
        "students/<int:student_pk>/discipline",
        views.StudentDisciplineView.as_view(),
        name="student-discipline",
    ),
]
