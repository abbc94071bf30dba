from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class FeaturesConfig(AppConfig):
    name = "apps.features"
    label = "features"
    verbose_name = _("Weekly features")

    def ready(self) -> None:
        # Imported here so that the receiver module can use the models.
        from apps.common.signals import student_data_changed
        from apps.features.receivers import schedule_refresh

        student_data_changed.connect(schedule_refresh, dispatch_uid="features.schedule_refresh")
