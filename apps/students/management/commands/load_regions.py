from typing import Any

from django.core.management.base import BaseCommand

from apps.students.services import regions_load


class Command(BaseCommand):
    help = "Load or refresh Bangladesh's divisions, districts and upazilas (idempotent)."

    def handle(self, *args: Any, **options: Any) -> None:
        changed = regions_load()
        self.stdout.write(self.style.SUCCESS(f"Regions loaded: {changed} created or updated."))
