from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from apps.accounts.models import Role, User
from apps.accounts.services import user_create
from apps.students.models import Region, RegionLevel, School
from apps.students.services import staff_scope_grant

DEMO_PASSWORD = "edupulse-demo"  # noqa: S105 - printed for the local demo only


class Command(BaseCommand):
    help = (
        "Create one demo account per role (administrator, data manager, counselor, analyst) "
        "scoped to the demo district, and print their credentials. For local demos only."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--district", default="Kurigram")

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        district = Region.objects.filter(
            level=RegionLevel.DISTRICT, name__iexact=options["district"]
        ).first()
        if district is None:
            raise CommandError("Load the regions and the demo district first.")
        first_school = School.objects.filter(region__path__startswith=district.path).first()
        if first_school is None:
            raise CommandError("The demo district has no schools yet.")
        accounts = [
            ("admin", Role.ADMINISTRATOR, None, None),
            ("datamanager", Role.DATA_MANAGER, None, district),
            ("counselor", Role.COUNSELOR, first_school, None),
            ("analyst", Role.ANALYST, None, district),
        ]
        self.stdout.write(f"Demo accounts (password for all: {DEMO_PASSWORD}):")
        for username, role, school, region in accounts:
            user = User.objects.filter(username=username).first()
            if user is None:
                user = user_create(username=username, password=DEMO_PASSWORD, role=role)
            if school is not None or region is not None:
                staff_scope_grant(user=user, school=school, region=region)
            where = school or region or "everything"
            self.stdout.write(f"  {username:<12} {role.label:<14} sees {where}")
