import datetime as dt
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from apps.students.demo.generator import DemoConfig, generate_district
from apps.students.demo.writers import district_to_files
from apps.students.models import Region, RegionLevel, Student
from apps.students.services import REGIONS_DATA_DIR, regions_load, subjects_load


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--as-of {value!r} is not a date like 2026-09-30.") from None


class Command(BaseCommand):
    help = (
        "Generate a synthetic district (schools, students, enrollments, daily attendance, "
        "marks, incidents, dropouts with precursors) as import files (--out) or, without "
        "--out, imported into the database through the ingestion pipeline. Deterministic "
        "for a seed and as-of date."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--schools", type=int, default=12)
        parser.add_argument(
            "--students", type=int, default=6000, help="Students in the first year."
        )
        parser.add_argument("--years", type=int, default=2)
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument(
            "--as-of",
            type=_date,
            default=None,
            help="Last day with data (default: today). The final year runs up to it.",
        )
        parser.add_argument("--district", default="Kurigram", help="A real district's name.")
        parser.add_argument("--out", type=Path, default=None, help="Write files here instead.")
        parser.add_argument(
            "--csv-only",
            action="store_true",
            help="With --out, skip the Excel copies (writing them is the slow part).",
        )
        parser.add_argument(
            "--if-empty",
            action="store_true",
            help="Do nothing (and succeed) when the database already holds students "
            "(with --out too: the files of the loaded district are kept).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["if_empty"] and Student.objects.exists():
            self.stdout.write("The database already holds students; nothing generated.")
            return
        if options["schools"] < 1 or options["students"] < 10 or options["years"] < 1:
            raise CommandError("Need at least 1 school, 10 students and 1 year.")
        districts = pd.read_csv(REGIONS_DATA_DIR / "districts.csv")
        upazilas = pd.read_csv(REGIONS_DATA_DIR / "upazilas.csv")
        match = districts[districts["name"].str.lower() == options["district"].lower()]
        if match.empty:
            raise CommandError(f"No district called {options['district']!r}.")
        district_row = match.iloc[0]
        config = DemoConfig(
            schools=options["schools"],
            students=options["students"],
            years=options["years"],
            seed=options["seed"],
            as_of=options["as_of"] or timezone.localdate(),
            district=district_row["name"],
            school_days=tuple(settings.EDUPULSE_SCHOOL_DAYS),
        )
        started = time.perf_counter()
        district = generate_district(
            config, upazilas[upazilas["district_id"] == district_row["id"]]
        )
        self.stdout.write(
            f"Generated in {time.perf_counter() - started:.1f}s (as of {config.as_of})."
        )

        # The subject catalogue is reference data the marks files refer to.
        regions_load()
        subjects_load()
        if options["out"] is not None:
            for path in district_to_files(district, options["out"], xlsx=not options["csv_only"]):
                self.stdout.write(f"  wrote {path}")
            return

        if Student.objects.exists():
            raise CommandError(
                "The database already holds students; the demo loads into an empty one "
                "(delete var/edupulse.sqlite3 or use a fresh DATABASE_URL)."
            )
        if not Region.objects.filter(level=RegionLevel.DISTRICT, name=config.district).exists():
            raise CommandError(f"District {config.district!r} is missing from the regions.")
        started = time.perf_counter()
        # The database is filled the way a district's would be: from files,
        # through the import pipeline.
        with tempfile.TemporaryDirectory(prefix="edupulse-demo-") as directory:
            district_to_files(district, Path(directory), xlsx=False)
            call_command("import_data", "auto", directory, "--quiet-problems", stdout=self.stdout)
        elapsed = time.perf_counter() - started
        self.stdout.write(self.style.SUCCESS(f"Loaded the district in {elapsed:.1f}s."))
