from pathlib import Path

from apps.accounts.models import User
from apps.ingestion.models import ImportJob, ImportPolicy
from apps.ingestion.services import import_job_create, import_job_run


def run_import(
    tmp_path: Path,
    kind: str,
    content: bytes | str,
    *,
    name: str = "file.csv",
    policy: str = ImportPolicy.ALL_OR_NOTHING,
    user: User | None = None,
    dry_run: bool = False,
    sheet: str = "",
) -> ImportJob:
    path = tmp_path / name
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    job = import_job_create(
        kind=kind,
        source=path,
        file_name=name,
        policy=policy,
        user=user,
        dry_run=dry_run,
        sheet=sheet,
    )
    return import_job_run(job_id=job.pk)


def codes(job: ImportJob) -> list[str]:
    return list(job.problems.order_by("line", "id").values_list("code", flat=True))
