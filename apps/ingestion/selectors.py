"""Reads of import jobs, with the user's scope applied."""

from django.db.models import Q, QuerySet

from apps.accounts.models import User
from apps.ingestion.models import ImportJob, ImportProblem
from apps.students.selectors import schools_visible_to


def import_jobs_visible_to(user: User) -> QuerySet[ImportJob]:
    """Administrators see every job; others their own and those touching their schools only."""
    jobs = ImportJob.objects.select_related("created_by", "same_file_as")
    if not user.is_authenticated or not user.is_active:
        return jobs.none()
    if user.sees_everything:
        return jobs
    visible = schools_visible_to(user).values("pk")
    outside = ImportJob.objects.filter(schools__isnull=False).exclude(schools__in=visible)
    return (
        jobs.filter(Q(created_by=user) | Q(schools__in=visible))
        .exclude(pk__in=outside.values("pk"))
        .distinct()
    )


def import_problems_of(job: ImportJob) -> QuerySet[ImportProblem]:
    return ImportProblem.objects.filter(job=job).order_by("line", "id")
