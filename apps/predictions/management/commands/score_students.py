import datetime as dt
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.predictions.loader import NoActiveModel
from apps.predictions.models import ScoringRun
from apps.predictions.services.scoring_runs import scoring_run_request
from apps.predictions.tasks import score_district
from apps.students.models import School


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{value!r} is not a date like 2026-06-30.") from None


class Command(BaseCommand):
    help = (
        "Score students with the active model at the week holding --as-of (default: the "
        "latest week with features), school by school, and record a ScoringRun. Without "
        "a broker it runs here; with one the ml queue's workers run the schools in parallel."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--school", action="append", default=None, help="EIIN of a school (repeatable)."
        )
        parser.add_argument("--as-of", dest="as_of", type=_date, default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        school_ids = None
        if options["school"]:
            found = dict(
                School.objects.filter(eiin__in=options["school"]).values_list("eiin", "pk")
            )
            missing = sorted(set(options["school"]) - set(found))
            if missing:
                raise CommandError(f"No school with EIIN {', '.join(missing)}.")
            school_ids = list(found.values())
        try:
            run = scoring_run_request(
                as_of=options["as_of"], school_ids=school_ids, trigger="command"
            )
        except NoActiveModel:
            raise CommandError("No active model: train one with train_model --promote.") from None
        clock = time.perf_counter()
        result = (
            score_district.apply(args=(run.pk,))
            if settings.CELERY_TASK_ALWAYS_EAGER
            else (score_district.delay(run.pk))
        )
        if not settings.CELERY_TASK_ALWAYS_EAGER:
            self.stdout.write(f"Scoring run {run.pk} queued on the ml queue (task {result.id}).")
            return
        result.get()
        run = ScoringRun.objects.get(pk=run.pk)
        self.stdout.write(
            f"Scoring run {run.pk} ({run.get_status_display()}): week {run.week_start}, "
            f"{run.predictions} predictions for {run.students} students in "
            f"{run.schools_done}/{run.schools_total} schools, {run.alerts} alerts, "
            f"{len(run.failures)} failures, {time.perf_counter() - clock:.1f}s."
        )
        if run.failures:
            for failure in run.failures:
                self.stderr.write(f"  school {failure.get('school')}: {failure.get('error')}")
