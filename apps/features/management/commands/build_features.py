import datetime as dt
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.features.services import features_build_all
from apps.students.models import School


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{value!r} is not a date like 2026-03-01.") from None


class Command(BaseCommand):
    help = (
        "Build the weekly feature store for every academic year with enrollments: the whole "
        "history, or the weeks from --since on, for every school or those given with --school."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--since", type=_date, default=None, help="First day to recompute (YYYY-MM-DD)."
        )
        parser.add_argument(
            "--school",
            action="append",
            default=None,
            metavar="CODE",
            help="A school's EIIN; repeat for several. Default: every school.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        school_ids = None
        if options["school"]:
            codes = set(options["school"])
            found = dict(School.objects.filter(eiin__in=codes).values_list("eiin", "pk"))
            unknown = sorted(codes - set(found))
            if unknown:
                raise CommandError(f"Unknown school code(s): {', '.join(unknown)}.")
            school_ids = sorted(found.values())
        started = time.perf_counter()
        summary = features_build_all(since=options["since"], school_ids=school_ids)
        elapsed = time.perf_counter() - started
        years = ", ".join(str(y) for y in summary.years) or "none"
        self.stdout.write(
            self.style.SUCCESS(
                f"Built {summary.rows:,} weekly rows for {summary.students:,} students "
                f"(academic years {years}) in {elapsed:.1f}s; {summary.flags} data-quality flags."
            )
        )
