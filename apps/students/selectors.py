"""Reads, with the user's scope already applied. Every page, API and export uses these."""

from django.db.models import Q, QuerySet

from apps.accounts.models import User
from apps.students.models import Enrollment, School, Student


def _scope_filter_for_schools(user: User) -> Q | None:
    """None means everything; an empty Q-match means nothing."""
    if user.sees_everything:
        return None
    school_ids: list[int] = []
    region_paths: list[str] = []
    for scope in user.scopes.select_related("region"):
        if scope.school_id is not None:
            school_ids.append(scope.school_id)
        elif scope.region is not None:
            region_paths.append(scope.region.path)
    condition = Q(pk__in=school_ids)
    for path in region_paths:
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
