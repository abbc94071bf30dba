"""Import jobs: create, run, restart, recover."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import time
import uuid
from collections.abc import Iterable, Iterator
from functools import partial
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd
from django.conf import settings
from django.core.cache import cache
from django.core.files import File
from django.db import DatabaseError, connection, transaction
from django.db.models import F
from django.utils import timezone

from apps.accounts.models import User
from apps.common.heartbeat import beat, last_beats
from apps.common.signals import student_data_changed
from apps.ingestion.loading import Stage, TargetResult
from apps.ingestion.models import (
    RUNNING_STATUSES,
    ImportJob,
    ImportKind,
    ImportPolicy,
    ImportProblem,
    ImportStatus,
)
from apps.ingestion.pipeline import Duplicates, Loader
from apps.ingestion.problems import FileRejected, Problem
from apps.ingestion.quality import QualityCollector
from apps.ingestion.readers import inspect_file, open_chunks
from apps.ingestion.validation import References, Scope, Validator
from apps.students.models import DataQualityFlag, Enrollment, School
from apps.students.selectors import schools_visible_to, user_scope
from apps.students.services import academic_year_of

logger = logging.getLogger(__name__)

MAX_STORED_PROBLEMS = 10_000
SIGNAL_KINDS: dict[str, list[str]] = {
    ImportKind.ROSTER: ["enrollments"],
    ImportKind.EXITS: ["enrollments"],
    ImportKind.ATTENDANCE: ["attendance"],
    ImportKind.GRADES: ["grades"],
    ImportKind.INCIDENTS: ["incidents"],
    ImportKind.HOLIDAYS: ["calendar"],
}


class UploadTooLarge(Exception):
    pass


def scope_for(user: User | None) -> Scope:
    """The schools a job may write to: everything for the command line and administrators."""
    if user is None or user.sees_everything:
        return Scope()
    school_ids = set(schools_visible_to(user).values_list("pk", flat=True))
    region_paths = list(user_scope(user).region_paths)  # read with the schools, memoised
    return Scope(school_ids=school_ids, region_paths=region_paths, sees_everything=False)


def _progress_key(job_id: int) -> str:
    return f"ingestion:job:{job_id}:loaded"


def _read_key(job_id: int) -> str:
    return f"ingestion:job:{job_id}:read"


def _alive_key(job_id: int) -> str:
    return f"ingestion:job:{job_id}:alive"


def _alive(job_id: int) -> None:
    """Record that the job's worker is still at work, for `import_jobs_fail_stale`.

    The job row's heartbeat cannot say so: the row is updated inside the
    job's one transaction, which nobody else sees until it commits.
    """
    beat(_alive_key(job_id), ttl_seconds=2 * 60 * settings.EDUPULSE_IMPORT_STALE_MINUTES)


def import_job_progress(job: ImportJob) -> dict[str, Any]:
    # While a job runs, its counts live in the cache: the job row only
    # changes when the job's transaction commits (see _run).
    running = job.status in RUNNING_STATUSES
    counts = (cache.get(_read_key(job.pk)) if running else None) or {}
    rows_read = counts.get("rows_read", job.rows_read)
    rejected = counts.get("rows_rejected", job.rows_rejected)
    return {
        "status": job.status,
        "rows_read": rows_read,
        "rows_loaded": cache.get(_progress_key(job.pk)) if running else None,
        "rows_to_load": max(rows_read - rejected, 0),
    }


def import_task_progress(task_id: str, user: User) -> dict[str, Any] | None:
    """The import job behind a Celery task id, for GET /api/v1/tasks/{id}."""
    from apps.ingestion.selectors import import_jobs_visible_to

    job = import_jobs_visible_to(user).filter(celery_task_id=task_id).first()
    if job is None:
        return None
    states: dict[str, str] = {
        ImportStatus.QUEUED: "PENDING",
        ImportStatus.VALIDATING: "STARTED",
        ImportStatus.LOADING: "STARTED",
    }
    state = states.get(job.status, "SUCCESS")
    return {
        "state": state,
        "import_job": job.pk,
        "kind": job.kind,
        **import_job_progress(job),
        "rows_inserted": job.rows_inserted,
        "rows_updated": job.rows_updated,
        "rows_unchanged": job.rows_unchanged,
        "error_count": job.error_count,
    }


@transaction.atomic
def import_job_create(
    *,
    kind: str,
    source: IO[bytes] | Path,
    file_name: str,
    user: User | None = None,
    policy: str = ImportPolicy.ALL_OR_NOTHING,
    dry_run: bool = False,
    sheet: str = "",
    expected_checksum: str = "",
    max_bytes: int | None = None,
) -> ImportJob:
    """Store the file and record the job (queued). Call import_job_enqueue to run it."""
    if kind not in ImportKind.values:
        raise ValueError(f"unknown kind {kind!r}")
    if policy not in ImportPolicy.values:
        raise ValueError(f"unknown policy {policy!r}")
    handle: IO[bytes] = source.open("rb") if isinstance(source, Path) else source
    try:
        digest = hashlib.sha256()
        size = 0
        handle.seek(0)
        while block := handle.read(1 << 20):
            digest.update(block)
            size += len(block)
        if max_bytes is not None and size > max_bytes:
            raise UploadTooLarge(size)
        handle.seek(0)
        checksum = digest.hexdigest()
        job = ImportJob(
            kind=kind,
            policy=policy,
            dry_run=dry_run,
            sheet=sheet,
            created_by=user,
            file_name=Path(file_name).name[:255],
            file_size=size,
            checksum=checksum,
        )
        job.same_file_as = (
            ImportJob.objects.filter(
                checksum=checksum, kind=kind, status=ImportStatus.DONE, dry_run=False
            )
            .order_by("-created_at")
            .first()
        )
        job.file.save(f"{uuid.uuid4().hex}-{job.file_name}", File(handle), save=False)
    finally:
        if isinstance(source, Path):
            handle.close()
    job.save()
    if expected_checksum and expected_checksum.lower() != checksum:
        _finish_rejected(job, [Problem(code="truncated_upload")])
    return job


def import_job_already_done(*, kind: str, path: Path) -> bool:
    """Whether a file with this content was already imported (not a dry run) as this kind."""
    from apps.ingestion.readers import file_checksum

    return ImportJob.objects.filter(
        kind=kind, checksum=file_checksum(path), status=ImportStatus.DONE, dry_run=False
    ).exists()


def import_job_enqueue(*, job: ImportJob) -> ImportJob:
    """Run the job on the ingest queue once the surrounding transaction commits."""
    from apps.ingestion.tasks import import_job_run_task

    if job.status != ImportStatus.QUEUED:
        return job
    task_id = str(uuid.uuid4())
    ImportJob.objects.filter(pk=job.pk).update(celery_task_id=task_id)
    job.celery_task_id = task_id
    transaction.on_commit(lambda: import_job_run_task.apply_async((job.pk,), task_id=task_id))
    return job


def _save_problems(job: ImportJob, problems: Iterable[Problem], already: int = 0) -> int:
    room = max(MAX_STORED_PROBLEMS - already, 0)
    rows = [
        ImportProblem(
            job=job,
            line=p.line,
            sheet=p.sheet[:100],
            column=p.column[:200],
            value=p.value[:200],
            code=p.code,
            params=p.params,
        )
        for _i, p in zip(range(room), problems, strict=False)
    ]
    ImportProblem.objects.bulk_create(rows, batch_size=2000)
    return len(rows)


def _finish_rejected(job: ImportJob, problems: list[Problem]) -> None:
    _save_problems(job, problems)
    job.status = ImportStatus.REJECTED
    job.error_count = max(job.error_count, len(problems))
    job.finished_at = timezone.now()
    job.heartbeat_at = None
    job.save()


def _claim(job_id: int) -> bool:
    """Take a queued job; a second worker (or a redelivered task) gets False and stops."""
    now = timezone.now()
    claimed = ImportJob.objects.filter(pk=job_id, status=ImportStatus.QUEUED).update(
        status=ImportStatus.VALIDATING,
        started_at=now,
        heartbeat_at=now,
        attempts=F("attempts") + 1,
    )
    return bool(claimed)


def import_job_run(*, job_id: int, chunk_rows: int | None = None) -> ImportJob:
    """Validate and load one job. Safe to call twice: only a queued job is run."""
    import_jobs_fail_stale()
    if not _claim(job_id):
        return ImportJob.objects.get(pk=job_id)
    job = ImportJob.objects.select_related("created_by").get(pk=job_id)
    stage = Stage(job.kind, job.pk)
    try:
        _run(job, stage, chunk_rows)
    except FileRejected as rejected:
        ImportProblem.objects.filter(job=job).delete()
        job.refresh_from_db()
        _finish_rejected(
            job, [Problem(code=rejected.code, params=_plain(rejected.params), sheet=job.sheet)]
        )
    except Exception as error:
        logger.exception("import job %s failed", job.pk)
        job.refresh_from_db()
        _save_problems(
            job, [Problem(code="internal_error", params={"detail": type(error).__name__})]
        )
        job.status = ImportStatus.FAILED
        job.failure = f"{type(error).__name__}: {error}"[:2000]
        job.finished_at = timezone.now()
        job.heartbeat_at = None
        job.save()
    finally:
        try:
            with connection.cursor() as cursor:
                stage.drop(cursor)
        except Exception:  # noqa: BLE001 - a broken connection already dropped it
            logger.warning("could not drop the staging table of job %s", job.pk)
        cache.delete_many([_progress_key(job.pk), _read_key(job.pk), _alive_key(job.pk)])
    job.refresh_from_db()
    return job


def _plain(params: dict[str, Any]) -> dict[str, Any]:
    return {k: (v if isinstance(v, int | float | str) else str(v)) for k, v in params.items()}


def _beat(job: ImportJob, **fields: Any) -> None:
    fields["heartbeat_at"] = timezone.now()
    ImportJob.objects.filter(pk=job.pk).update(**fields)
    for name, value in fields.items():
        setattr(job, name, value)


def _run(job: ImportJob, stage: Stage, chunk_rows: int | None) -> None:
    path = Path(job.file.path)
    info = inspect_file(path)
    user = job.created_by
    scope = scope_for(user)
    if job.kind in (ImportKind.HOLIDAYS,) and not scope.sees_everything:
        raise FileRejected("not_allowed_kind", kind=str(ImportKind(job.kind).label))
    if job.kind == ImportKind.SCHOOLS and not scope.sees_everything and not scope.region_paths:
        raise FileRejected("not_allowed_kind", kind=str(ImportKind(job.kind).label))
    kwargs = {"chunk_rows": chunk_rows} if chunk_rows else {}
    match, chunks, sheet = open_chunks(path, info, job.kind, job.sheet, **kwargs)
    warnings: list[dict[str, Any]] = [{"code": code, "params": {}} for code in info.warnings]
    warnings += [{"code": "ignored_column", "params": {"column": c}} for c in match.ignored]
    if job.same_file_as_id:
        warnings.append({"code": "same_file", "params": {"job": job.same_file_as_id}})
    _beat(
        job,
        file_format=info.format,
        encoding=info.encoding,
        sheet=sheet,
        column_map=match.column_map,
        warnings=warnings,
    )
    with connection.cursor() as cursor:
        stage.create(cursor)
    references = References()
    validator = Validator(
        kind=job.kind,
        headers=match.headers,
        present=match.present,
        scope=scope,
        sheet=sheet,
        references=references,
        today=timezone.localdate(),
    )
    checks = _Checks(job, validator, sheet)
    quality = QualityCollector(job.kind)
    staged_schools: set[Any] = set()
    school_column = "eiin" if job.kind == ImportKind.SCHOOLS else "school_id"
    feed = checks.feed(chunks)
    results: dict[str, TargetResult] | None = None
    tail = 0.0
    # One transaction for the whole job: chunks are loaded while later ones
    # are still being validated (apps.ingestion.pipeline), so an error in the
    # last chunk must be able to undo the first. Until COMMIT nothing is
    # visible, the job row included: progress goes through the cache.
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # The job row commits in this same transaction, so a server crash
            # just after COMMIT loses both together (the job goes stale and
            # is restarted); in exchange COMMIT does not wait for the WAL
            # flush of a few hundred MB (docs/runbook.md).
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit = off")
        loader = Loader(
            stage=stage,
            kind=job.kind,
            present=match.present,
            now=timezone.now(),
            progress=partial(_loaded, job.pk),
        )
        try:
            held = None
            # A validated chunk is handed over only once the next one has been
            # read and its references looked up: those lookups wait for the
            # connection, which is then between two chunks, not in the middle
            # of a COPY that the loader could have been running meanwhile.
            for chunk in feed:
                if held is not None:
                    loader.put(held)
                    held = None
                rows = checks.add(chunk)
                if checks.errors and not checks.skip_invalid:
                    break  # rejected: stop loading, undo it, report the rest below
                quality.add(rows)
                if job.kind not in (ImportKind.HOLIDAYS, ImportKind.GRADES):
                    staged_schools.update(rows[school_column].unique().tolist())
                held = rows
                checks.report_progress()
            else:
                if checks.rows_read == 0:
                    raise FileRejected("header_only")
                if held is not None:
                    loader.put(held)
                results = loader.finish()
                tail = time.perf_counter()
        except DatabaseError:
            loader.abandon()
            # A statement of the loading thread failed first; what this
            # thread then got is only "transaction aborted".
            if loader.error is not None:
                raise loader.error from None
            raise
        finally:
            loader.abandon()
        if results is None:
            transaction.set_rollback(True)
        else:
            _finish_load(job, checks, results, loader, quality, references, staged_schools)
    if results is None:
        for chunk in feed:
            checks.add(chunk)
            _beat(job, **checks.counts())
        checks.save_problems()
        job.validate_seconds = checks.seconds
        job.status = ImportStatus.REJECTED
        job.finished_at = timezone.now()
        job.heartbeat_at = None
        for name, value in checks.counts().items():
            setattr(job, name, value)
        job.save()
    elif job.dry_run:
        job.save()  # after the rollback, with the counts an import would give
        checks.save_problems()
    else:
        # COMMIT is part of loading, so part of the figure.
        job.load_seconds = loader.seconds + (time.perf_counter() - tail)
        ImportJob.objects.filter(pk=job.pk).update(load_seconds=job.load_seconds)


class _Checks:
    """Validation of a job's chunks: counts, problems (kept until the transaction ends), repeats."""

    def __init__(self, job: ImportJob, validator: Validator, sheet: str) -> None:
        self.job = job
        self.validator = validator
        self.sheet = sheet
        self.skip_invalid = job.policy == ImportPolicy.SKIP_INVALID
        self.duplicates = Duplicates()
        self.problems: list[Problem] = []
        self.rows_read = self.rejected = self.errors = 0
        self.seconds = 0.0  # reading and checking (the loading thread works meanwhile)

    def feed(self, chunks: Iterable[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        """The file's chunks, each with its references already looked up (see _run)."""
        source = iter(chunks)
        while True:
            started = time.perf_counter()
            chunk = next(source, None)
            self.seconds += time.perf_counter() - started
            if chunk is None:
                return
            self.validator.prefetch(chunk)
            yield chunk

    def add(self, chunk: pd.DataFrame) -> pd.DataFrame:
        """Validate one chunk; the rows to stage (valid, first of their key)."""
        started = time.perf_counter()
        result = self.validator.validate(chunk)
        rows = result.stage
        lines = rows["_line"].to_numpy(dtype=np.int64)
        repeats, first = self.duplicates.find(result.keys, lines)
        problems = result.problems
        if repeats.any():
            problems = problems + [
                Problem(
                    code="duplicate_row",
                    line=int(lines[i]),
                    sheet=self.sheet,
                    params={"first_line": int(first[i])},
                )
                for i in np.flatnonzero(repeats)
            ]
            rows = rows[~repeats].reset_index(drop=True)
        self.rows_read += result.rows
        self.rejected += result.rejected + int(repeats.sum())
        self.errors += len(problems)
        room = MAX_STORED_PROBLEMS - len(self.problems)
        self.problems += problems[: max(room, 0)]
        self.seconds += time.perf_counter() - started
        return rows

    def counts(self) -> dict[str, int]:
        return {
            "rows_read": self.rows_read,
            "rows_rejected": self.rejected,
            "error_count": self.errors,
        }

    def report_progress(self) -> None:
        cache.set(_read_key(self.job.pk), self.counts(), timeout=3600)
        _alive(self.job.pk)

    def save_problems(self) -> None:
        _save_problems(self.job, self.problems)


def _loaded(job_id: int, line: int) -> None:
    """Progress of loading (called from the loading thread)."""
    cache.set(_progress_key(job_id), line, timeout=3600)
    _alive(job_id)
    after_batch(job_id, line)


def _finish_load(
    job: ImportJob,
    checks: _Checks,
    results: dict[str, TargetResult],
    loader: Loader,
    quality: QualityCollector,
    references: References,
    staged_schools: set[Any],
) -> None:
    """Inside the job's transaction, after the last chunk is loaded."""
    for name, value in checks.counts().items():
        setattr(job, name, value)
    job.validate_seconds = checks.seconds
    figures, flags = quality.summarise(references.enrollments)
    primary = list(results.values())[-1]
    job.rows_inserted = primary.inserted
    job.rows_updated = primary.updated
    job.rows_unchanged = primary.unchanged
    job.load_seconds = loader.seconds
    job.status = ImportStatus.DONE
    job.finished_at = timezone.now()
    job.heartbeat_at = None
    eiins = dict(School.objects.filter(pk__in=figures).values_list("pk", "eiin"))
    job.quality = {
        "tables": {
            name: {"inserted": r.inserted, "updated": r.updated, "unchanged": r.unchanged}
            for name, r in results.items()
        },
        "schools": {eiins.get(pk, str(pk)): f for pk, f in figures.items()},
        "flags": len(flags),
    }
    if job.dry_run:
        # Everything above ran for real, so the counts say exactly what an
        # import would do; now undo it (the job row is saved after).
        transaction.set_rollback(True)
        return
    checks.save_problems()
    source = f"import:{job.pk}"
    for flag in flags:
        flag.source = source
    DataQualityFlag.objects.filter(source=source).delete()
    DataQualityFlag.objects.bulk_create(flags)
    job.save()
    if job.kind == ImportKind.SCHOOLS:
        schools = list(School.objects.filter(eiin__in=staged_schools).values_list("pk", flat=True))
    elif job.kind in (ImportKind.HOLIDAYS, ImportKind.GRADES):
        schools = list(figures)
    else:
        schools = [int(pk) for pk in staged_schools]
    job.schools.set(schools)
    _signal(job, results)


def _signal(job: ImportJob, results: dict[str, TargetResult]) -> None:
    kinds = SIGNAL_KINDS.get(job.kind)
    if kinds is None:
        return
    student_ids = sorted({pk for r in results.values() for pk in r.student_ids})
    if job.kind == ImportKind.HOLIDAYS:
        student_ids = _students_of_changed_holidays(results)
    if not student_ids:
        return
    sinces = [r.since for r in results.values() if r.since]
    untils = [r.until for r in results.values() if r.until]
    since = min(sinces) if sinces else None
    until = max(untils) if untils else None
    if job.kind in (ImportKind.ROSTER, ImportKind.EXITS):
        since = until = None  # an enrollment change can move every week of the year

    def send() -> None:
        student_data_changed.send(
            sender=ImportJob,
            student_ids=student_ids,
            since=since,
            until=until,
            kinds=kinds,
            source=f"import:{job.pk}",
        )

    transaction.on_commit(send)


def _students_of_changed_holidays(results: dict[str, TargetResult]) -> list[int]:
    """A national holiday changes the school days of every student enrolled that year."""
    changed = [r for r in results.values() if r.inserted or r.updated]
    years = {academic_year_of(day) for r in changed for day in (r.since, r.until) if day}
    if not years:
        return []
    return sorted(
        Enrollment.objects.filter(academic_year__in=years)
        .order_by()
        .values_list("student_id", flat=True)
        .distinct()
    )


def after_batch(job_id: int, line: int) -> None:
    """Called after each loading batch, inside the transaction. A hook for crash tests."""


@transaction.atomic
def import_job_restart(*, job: ImportJob) -> ImportJob:
    """Queue a failed job again from its stored file; the problems of the last try go."""
    job = ImportJob.objects.select_for_update().get(pk=job.pk)
    if job.status != ImportStatus.FAILED:
        return job
    job.problems.all().delete()
    job.status = ImportStatus.QUEUED
    for field in (
        "rows_read",
        "rows_inserted",
        "rows_updated",
        "rows_unchanged",
        "rows_rejected",
        "error_count",
    ):
        setattr(job, field, 0)
    job.failure = ""
    job.started_at = job.finished_at = job.heartbeat_at = None
    job.save()
    return import_job_enqueue(job=job)


def import_jobs_fail_stale(*, older_than: dt.timedelta | None = None) -> list[int]:
    """Mark failed the running jobs whose worker stopped sending heartbeats.

    A job is stale when neither its row's heartbeat (written when the job
    starts and at each committed step) nor its worker's last beat in the
    cache (each chunk validated or loaded) is newer than `older_than`.

    The worker's transaction rolled back with its connection, so nothing it
    loaded is in the tables; the job can be restarted.
    """
    if older_than is None:
        older_than = dt.timedelta(minutes=settings.EDUPULSE_IMPORT_STALE_MINUTES)
    cutoff = timezone.now() - older_than
    stale = list(
        ImportJob.objects.filter(status__in=RUNNING_STATUSES, heartbeat_at__lt=cutoff).values_list(
            "pk", flat=True
        )
    )
    # A long import's row keeps the heartbeat of its start until it commits;
    # its worker's recent beats are in the cache.
    beats = last_beats(_alive_key(pk) for pk in stale)
    stale = [pk for pk in stale if beats.get(_alive_key(pk), 0.0) < cutoff.timestamp()]
    failed: list[int] = []
    for pk in stale:
        with transaction.atomic():
            changed = ImportJob.objects.filter(
                pk=pk, status__in=RUNNING_STATUSES, heartbeat_at__lt=cutoff
            ).update(
                status=ImportStatus.FAILED,
                failure="worker_lost",
                finished_at=timezone.now(),
                heartbeat_at=None,
            )
            if changed:
                ImportProblem.objects.create(job_id=pk, code="worker_lost")
                failed.append(pk)
    return failed
