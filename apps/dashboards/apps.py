from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DashboardsConfig(AppConfig):
    name = "apps.dashboards"
    label = "dashboards"
    verbose_name = _("Dashboards")

    def ready(self) -> None:
        from apps.common.signals import student_data_changed
        from apps.dashboards.selectors import overview_cache_clear

        # The school overview caches its year aggregates; new records make them stale.
        student_data_changed.connect(overview_cache_clear, dispatch_uid="dashboards-overview")
