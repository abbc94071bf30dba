from django.urls import path

from apps.ingestion.api import views

urlpatterns = [
    path("data/upload", views.UploadView.as_view(), name="data-upload"),
    path("data/jobs", views.JobListView.as_view(), name="import-job-list"),
    path("data/jobs/<int:pk>", views.JobDetailView.as_view(), name="import-job-detail"),
    path(
        "data/jobs/<int:pk>/problems", views.JobProblemsView.as_view(), name="import-job-problems"
    ),
    path("data/jobs/<int:pk>/report.csv", views.JobReportView.as_view(), name="import-job-report"),
]
