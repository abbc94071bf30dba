import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.common.signals import student_data_changes_batched
from apps.ingestion.formats import FILE_NAME_HINTS
from apps.ingestion.models import BACKFILL_ORDER, ImportJob, ImportKind, ImportPolicy, ImportStatus
from apps.ingestion.problems import render_message
from apps.ingestion.services import import_job_already_done, import_job_create, import_job_run

SUFFIXES = {".csv", ".tsv", ".txt", ".xlsx"}
SHOWN_PROBLEMS = 20


def kind_of(path: Path) -> str | None:
    stem = path.stem.lower()
    for kind, hints in FILE_NAME_HINTS.items():
        if any(stem.startswith(hint) for hint in hints):
            return kind
    return None


def files_for(kind: str, directory: Path) -> tuple[list[tuple[str, Path]], list[str]]:
    """A directory's files in backfill order; a workbook with the same stem as a CSV is skipped."""
    files = sorted(p for p in directory.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES)
    stems_with_csv = {p.stem for p in files if p.suffix.lower() != ".xlsx"}
    chosen: list[tuple[str, Path]] = []
    skipped: list[str] = []
    for path in files:
        if path.suffix.lower() == ".xlsx" and path.stem in stems_with_csv:
            skipped.append(f"{path.name} (same data as {path.stem}.csv)")
            continue
        file_kind = kind_of(path)
        if file_kind is None:
            skipped.append(f"{path.name} (name does not say its kind)")
            continue
        if kind in ("auto", file_kind):
            chosen.append((file_kind, path))
    order: dict[str, int] = {str(k): i for i, k in enumerate(BACKFILL_ORDER)}
    chosen.sort(key=lambda item: (order[item[0]], item[1].name))
    return chosen, skipped


class Command(BaseCommand):
    help = (
        "Import a CSV or XLSX file, or every file of a directory (a historical backfill, "
        "in the order schools, roster, exits, attendance, grades, incidents, holidays). "
        "Exit status: 0 imported, 1 a file was rejected or failed, 2 usage error."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "kind",
            choices=[*ImportKind.values, "auto"],
            help="What the file holds; 'auto' (directories only) goes by file names.",
        )
        parser.add_argument("path", type=Path)
        parser.add_argument(
            "--policy", choices=ImportPolicy.values, default=ImportPolicy.ALL_OR_NOTHING
        )
        parser.add_argument("--dry-run", action="store_true", help="Validate and report only.")
        parser.add_argument("--sheet", default="", help="Workbook sheet (default: the first).")
        parser.add_argument(
            "--quiet-problems", action="store_true", help="Print counts but not the problems."
        )
        parser.add_argument(
            "--skip-known",
            action="store_true",
            help="Skip files already imported successfully (same kind and checksum).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["path"]
        kind: str = options["kind"]
        if path.is_dir():
            files, skipped = files_for(kind, path)
            for name in skipped:
                self.stdout.write(f"skipped {name}")
            if not files:
                raise CommandError(f"No importable files in {path}.", returncode=2)
        elif path.is_file():
            if kind == "auto":
                guessed = kind_of(path)
                if guessed is None:
                    raise CommandError(
                        "Name the kind: the file name does not say it.", returncode=2
                    )
                kind = guessed
            files = [(kind, path)]
        else:
            raise CommandError(f"{path} does not exist.", returncode=2)
        # A backfill announces its changes once, so features are rebuilt once.
        with student_data_changes_batched(source=f"import_data:{path.name}"):
            failed = self._import(files, options)
        if failed:
            sys.exit(1)

    def _import(self, files: list[tuple[str, Path]], options: dict[str, Any]) -> bool:
        failed = False
        for file_kind, file_path in files:
            if options["skip_known"] and import_job_already_done(kind=file_kind, path=file_path):
                self.stdout.write(f"skipped {file_path.name} (already imported)")
                continue
            job = import_job_create(
                kind=file_kind,
                source=file_path,
                file_name=file_path.name,
                policy=options["policy"],
                dry_run=options["dry_run"],
                sheet=options["sheet"],
            )
            job = import_job_run(job_id=job.pk)
            self._summary(job, quiet=options["quiet_problems"])
            failed |= job.status != ImportStatus.DONE
        return failed

    def _summary(self, job: ImportJob, *, quiet: bool) -> None:
        style = self.style.SUCCESS if job.status == ImportStatus.DONE else self.style.ERROR
        # Validation and loading overlap (apps.ingestion.pipeline): the job's wall time.
        seconds = (
            (job.finished_at - job.started_at).total_seconds()
            if job.finished_at and job.started_at
            else 0.0
        )
        dry = " (dry run: nothing written)" if job.dry_run else ""
        self.stdout.write(
            style(
                f"job #{job.pk} {job.kind} {job.file_name}: {job.status}{dry} — "
                f"{job.rows_read:,} read, {job.rows_inserted:,} inserted, "
                f"{job.rows_updated:,} updated, {job.rows_unchanged:,} unchanged, "
                f"{job.rows_rejected:,} rejected, {job.error_count:,} errors in {seconds:.1f}s"
            )
        )
        if job.status == ImportStatus.DONE and job.rows_inserted + job.rows_updated == 0:
            self.stdout.write("  nothing changed: every row is already stored")
        for source, field in job.column_map.items():
            if source != field:
                self.stdout.write(f"  column “{source}” → {field}")
        for warning in job.warnings:
            self.stdout.write(f"  warning: {render_message(warning['code'], warning['params'])}")
        if quiet:
            return
        for problem in job.problems.all()[:SHOWN_PROBLEMS]:
            where = f"{problem.sheet}!" if problem.sheet else ""
            where += f"line {problem.line}" if problem.line else "file"
            column = f" [{problem.column}]" if problem.column else ""
            value = f" “{problem.value}”" if problem.value else ""
            self.stdout.write(f"  {where}{column}{value}: {problem.message}")
        if job.error_count > SHOWN_PROBLEMS:
            self.stdout.write(f"  … {job.error_count - SHOWN_PROBLEMS:,} more in the error report")
