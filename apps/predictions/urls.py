from django.urls import path

from apps.predictions import views

app_name = "predictions"

urlpatterns = [
    path("notifications/", views.notifications_view, name="notifications"),
    path("notifications/read/", views.notifications_read, name="notifications_read"),
]
