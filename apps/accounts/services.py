from typing import Any

from django.apps import apps as django_apps
from django.contrib.auth.models import Group, Permission
from django.db import transaction

from apps.accounts.models import Role, User
from apps.accounts.roles import ROLE_PERMISSIONS


@transaction.atomic
def roles_sync() -> dict[str, int]:
    """Create one group per role and give it exactly the permissions of its role."""
    assigned: dict[str, int] = {}
    for role, codenames in ROLE_PERMISSIONS.items():
        group, _created = Group.objects.get_or_create(name=role)
        if codenames == ["*"]:
            permissions = list(Permission.objects.all())
        else:
            wanted = {tuple(name.split(".", 1)) for name in codenames}
            permissions = [
                permission
                for permission in Permission.objects.select_related("content_type")
                if (permission.content_type.app_label, permission.codename) in wanted
            ]
        group.permissions.set(permissions)
        assigned[role] = len(permissions)
    return assigned


def roles_sync_on_migrate(sender: Any, **kwargs: Any) -> None:
    # post_migrate fires once per app; permissions of later apps only exist
    # after the last one, so sync then.
    with_models = [config for config in django_apps.get_app_configs() if config.models_module]
    if with_models and sender.label == with_models[-1].label:
        roles_sync()


@transaction.atomic
def user_create(
    *,
    username: str,
    password: str | None,
    role: Role,
    email: str = "",
    first_name: str = "",
    last_name: str = "",
) -> User:
    user = User(
        username=username,
        email=email,
        first_name=first_name,
        last_name=last_name,
        role=role,
        is_staff=role in (Role.ADMINISTRATOR, Role.DATA_MANAGER),
        is_superuser=role == Role.ADMINISTRATOR,
    )
    if password is None:
        user.set_unusable_password()
    else:
        user.set_password(password)
    user.full_clean()
    user.save()
    user_set_role(user=user, role=role)
    return user


@transaction.atomic
def user_set_role(*, user: User, role: Role) -> User:
    group, _created = Group.objects.get_or_create(name=role)
    role_groups = Group.objects.filter(name__in=Role.values)
    user.groups.remove(*role_groups)
    user.groups.add(group)
    if user.role != role:
        user.role = role
        user.save(update_fields=["role"])
    return user
