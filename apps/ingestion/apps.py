from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class IngestionConfig(AppConfig):
    name = "apps.ingestion"
    label = "ingestion"
    verbose_name = _("Imports")

    def ready(self) -> None:
        from apps.common.progress import register_task_progress
        from apps.ingestion.services import import_task_progress

        register_task_progress(import_task_progress)
