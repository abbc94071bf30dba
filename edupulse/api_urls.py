from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from apps.common.api import HealthView, ReadyView, TaskView, api_not_found

app_name = "api"

urlpatterns = [
    path("health", HealthView.as_view(), name="health"),
    path("ready", ReadyView.as_view(), name="ready"),
    path("tasks/<str:task_id>", TaskView.as_view(), name="task-detail"),
    path("", include("apps.ingestion.api.urls")),
    path("", include("apps.students.api.urls")),
    path("", include("apps.predictions.api.urls")),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="swagger-ui"),
    path("redoc/", SpectacularRedocView.as_view(url_name="api:schema"), name="redoc"),
    # Last: anything else under /api/v1/ (a negative id, a typo) answers JSON 404.
    re_path(r"^.*$", api_not_found, name="not-found"),
]
