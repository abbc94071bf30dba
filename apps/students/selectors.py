"""Reads, with the user's scope already applied. Every page, API and export uses these."""

from dataclasses import dataclass
from typing import Any

from django.db.models import Q, QuerySet

from apps.accounts.models import User
from apps.students.models import Enrollment, School, Student


@dataclass(frozen=True)
class VisibilityScope:
    """What a user may see: everything, or these schools and every school under these regions."""

    everything: bool
    school_ids: tuple[int, ...] = ()
    region_paths: tuple[str, ...] = ()


# The attribute that memoises the scope on a user object. A request has its own user
# object (the session's is read per request, the cached token's unpickled per
# request), so the memo lives as long as the request; the API's token cache
# (apps.common.authentication) keeps it for longer, under its own invalidation.
SCOPE_ATTRIBUTE = "_edupulse_scope"


def user_scope(user: Any) -> VisibilityScope:
    """The user's scope, read once per user object (one query), not once per check."""
    scope: VisibilityScope | None = getattr(user, SCOPE_ATTRIBUTE, None)
    if scope is not None:
        return scope
    if user.sees_everything:
        scope = VisibilityScope(everything=True)
    else:
        school_ids: list[int] = []
        region_paths: list[str] = []
        for school_id, path in user.scopes.values_list("school_id", "region__path"):
            if school_id is not None:
                school_ids.append(school_id)
            elif path is not None:
                region_paths.append(path)
        scope = VisibilityScope(False, tuple(school_ids), tuple(region_paths))
    setattr(user, SCOPE_ATTRIBUTE, scope)
    return scope


def _scope_filter_for_schools(user: User) -> Q | None:
    """None means everything; an empty Q-match means nothing."""
    scope = user_scope(user)
    if scope.everything:
        return None
    condition = Q(pk__in=scope.school_ids)
    for path in scope.region_paths:
        condition |= Q(region__path__startswith=path)
    return condition


def schools_visible_to(user: User) -> QuerySet[School]:
    schools = School.objects.select_related("region")
    if not user.is_authenticated or not user.is_active:
        return schools.none()
    condition = _scope_filter_for_schools(user)
    if condition is None:
        return schools
    return schools.filter(condition)


def students_visible_to(user: User) -> QuerySet[Student]:
    """Students with at least one enrollment at a school the user may see."""
    students = Student.objects.all()
    if not user.is_authenticated or not user.is_active:
        return students.none()
    if user.sees_everything:
        return students
    visible_school_ids = schools_visible_to(user).values("pk")
    return students.filter(
        pk__in=Enrollment.objects.filter(school__in=visible_school_ids).values("student_id")
    )


def enrollments_visible_to(user: User) -> QuerySet[Enrollment]:
    enrollments = Enrollment.objects.select_related("student", "school")
    if not user.is_authenticated or not user.is_active:
        return enrollments.none()
    if user.sees_everything:
        return enrollments
    return enrollments.filter(school__in=schools_visible_to(user).values("pk"))
