from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DashboardsConfig(AppConfig):
    name = "apps.dashboards"
    label = "dashboards"
    verbose_name = _("Dashboards")

    def ready(self) -> None:
        from apps.common.signals import student_data_changed
        from apps.dashboards.receivers import schedule_overview_refresh

        # The school overview reads summaries of the records; new records rewrite them.
        student_data_changed.connect(schedule_overview_refresh, dispatch_uid="dashboards-overview")
