import pytest
from django.contrib.auth.models import Group, Permission

from apps.accounts.models import Role
from apps.accounts.services import roles_sync, user_create, user_set_role

pytestmark = pytest.mark.django_db


def test_migrate_creates_one_group_per_role_with_its_permissions() -> None:
    assert set(Group.objects.values_list("name", flat=True)) >= set(Role.values)
    counselor = Group.objects.get(name=Role.COUNSELOR)
    codenames = set(counselor.permissions.values_list("codename", flat=True))
    assert "view_student" in codenames
    assert "change_student" not in codenames
    data_manager = Group.objects.get(name=Role.DATA_MANAGER)
    assert data_manager.permissions.filter(codename="add_attendancerecord").exists()


def _role_permissions() -> dict[str, set[int]]:
    return {
        group.name: set(group.permissions.values_list("pk", flat=True))
        for group in Group.objects.filter(name__in=Role.values)
    }


def test_roles_sync_is_idempotent() -> None:
    before = _role_permissions()
    groups = Group.objects.count()
    assert roles_sync() == {role: len(perms) for role, perms in before.items()}
    assert Group.objects.count() == groups
    assert _role_permissions() == before


def test_roles_sync_restores_a_tampered_role() -> None:
    counselor = Group.objects.get(name=Role.COUNSELOR)
    counselor.permissions.clear()
    counselor.permissions.add(Permission.objects.get(codename="delete_student"))
    roles_sync()
    codenames = set(counselor.permissions.values_list("codename", flat=True))
    assert "view_student" in codenames and "delete_student" not in codenames


def test_a_counselor_can_read_students_but_not_change_them() -> None:
    user = user_create(username="c1", password="pw-long-enough", role=Role.COUNSELOR)
    assert user.has_perm("students.view_student")
    assert not user.has_perm("students.change_student")
    assert not user.is_staff


def test_changing_role_replaces_the_group() -> None:
    user = user_create(username="d1", password=None, role=Role.DATA_MANAGER)
    user_set_role(user=user, role=Role.ANALYST)
    assert list(user.groups.values_list("name", flat=True)) == [Role.ANALYST]
    assert user.role == Role.ANALYST
    assert not user.has_usable_password()
