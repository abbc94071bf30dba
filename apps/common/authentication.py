"""API token authentication with the token's user, permissions and scope cached.

DRF's TokenAuthentication reads the token and its user on every request,
then the permission checks read the user's permissions and the selectors the
user's scope: three or four queries before the view does anything. Here the
token (its user attached, with the permission sets ModelBackend memoises on
the user object, and the visibility scope memoised by
apps.students.selectors.user_scope) is kept in the cache for
EDUPULSE_API_AUTH_CACHE_SECONDS, read together with a generation number in
one round trip.

Every cached entry carries the generation it was read under. Any change to
tokens, users, groups, permissions, staff scopes or regions bumps the
generation (signals below), so a revoked token, a deactivated user or a
changed scope takes effect on the next request. It is bumped twice: when the
change is saved and again when its transaction commits, because a request
reading between the two would see the new generation but the old rows and
cache them under it. Changes that bypass model signals (`QuerySet.update`)
are seen when the entry expires.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from rest_framework.authentication import TokenAuthentication

from apps.common.cache import secret_digest

GENERATION_KEY = "auth:generation"


def _entry_key(token_key: str) -> str:
    return f"auth:token:{secret_digest(token_key)}"


def _generation_bump() -> None:
    cache.set(GENERATION_KEY, uuid.uuid4().hex, None)


def auth_cache_bump(**kwargs: Any) -> None:
    """Make every cached token stale, now and once more when the transaction commits."""
    if kwargs.get("update_fields") is not None and set(kwargs["update_fields"]) == {"last_login"}:
        return  # every session login saves this; it changes nothing the cache holds
    _generation_bump()
    transaction.on_commit(_generation_bump)


class CachedTokenAuthentication(TokenAuthentication):
    """`Authorization: Token <key>`, as DRF's, with the lookup cached (see the module)."""

    def authenticate_credentials(self, key: str) -> tuple[Any, Any]:
        seconds = settings.EDUPULSE_API_AUTH_CACHE_SECONDS
        if not seconds:
            return super().authenticate_credentials(key)
        entry_key = _entry_key(key)
        found = cache.get_many([GENERATION_KEY, entry_key])
        generation = found.get(GENERATION_KEY)
        entry = found.get(entry_key)
        if generation is not None and entry is not None and entry[0] == generation:
            token = entry[1]
            return token.user, token
        # The generation is read before the rows: a change saved after this point
        # bumps it again, so what is cached below can never outlive that change.
        if generation is None:
            cache.add(GENERATION_KEY, uuid.uuid4().hex, None)
            generation = cache.get(GENERATION_KEY)
        user, token = super().authenticate_credentials(key)  # 401 for unknown or inactive
        from apps.students.selectors import user_scope

        user.get_all_permissions()  # ModelBackend memoises them on the object
        user_scope(user)
        cache.set(entry_key, (generation, token), seconds)
        return user, token


def connect_invalidation() -> None:
    """Bump the generation whenever something the cached entries hold may change."""
    from django.contrib.auth.models import Group, Permission
    from django.db.models.signals import m2m_changed, post_delete, post_save
    from rest_framework.authtoken.models import Token

    from apps.accounts.models import User
    from apps.students.models import Region, StaffScope

    for model in (Token, User, Group, Permission, StaffScope, Region):
        uid = f"auth-cache-{model._meta.label_lower}"
        post_save.connect(auth_cache_bump, sender=model, dispatch_uid=f"{uid}-save")
        post_delete.connect(auth_cache_bump, sender=model, dispatch_uid=f"{uid}-delete")
    for through in (User.groups.through, User.user_permissions.through, Group.permissions.through):
        m2m_changed.connect(
            auth_cache_bump, sender=through, dispatch_uid=f"auth-cache-{through._meta.label_lower}"
        )
