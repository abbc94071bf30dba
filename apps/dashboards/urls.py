from django.contrib.auth import views as auth_views
from django.urls import path

from apps.dashboards import views

app_name = "dashboards"

urlpatterns = [
    path("", views.home_view, name="home"),
    path("signin/", views.SignInView.as_view(), name="login"),
    path("signin/verify/", views.verify_view, name="verify"),
    path("signout/", auth_views.LogoutView.as_view(), name="logout"),
    path("language/", views.language_view, name="language"),
    path("caseload/", views.caseload_view, name="caseload"),
    path("caseload/export.<str:fmt>", views.caseload_export_view, name="caseload_export"),
    path("students/<int:pk>/", views.student_view, name="student"),
    path(
        "students/<int:pk>/interventions/new/",
        views.intervention_create_view,
        name="intervention_create",
    ),
    path(
        "students/<int:pk>/interventions.<str:fmt>",
        views.student_interventions_export_view,
        name="student_interventions_export",
    ),
    path("students/<int:pk>/outcomes/", views.outcome_create_view, name="outcome_create"),
    path("students/<int:pk>/feedback/", views.feedback_create_view, name="feedback_create"),
    path("interventions/<int:pk>/edit/", views.intervention_edit_view, name="intervention_edit"),
    path("overview/", views.overview_view, name="overview"),
    path("overview/export.<str:fmt>", views.overview_export_view, name="overview_export"),
]
