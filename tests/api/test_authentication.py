from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.test import override_settings
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import AuthenticationFailed

from apps.common.authentication import CachedTokenAuthentication
from apps.students.models import StaffScope
from apps.students.selectors import user_scope
from tests.api.conftest import assert_error, client_for

pytestmark = pytest.mark.django_db


def _key(user: Any) -> str:
    return Token.objects.get_or_create(user=user)[0].key


def test_a_cached_token_costs_no_query_for_user_permissions_or_scope(
    district: dict[str, Any], django_assert_num_queries: Any
) -> None:
    key = _key(district["counselor"])
    auth = CachedTokenAuthentication()
    auth.authenticate_credentials(key)
    with django_assert_num_queries(0):
        user, token = auth.authenticate_credentials(key)
        assert token.key == key and user.pk == district["counselor"].pk
        assert user.has_perm("students.view_student")
        assert user_scope(user).school_ids == (district["school_a"].pk,)


def test_a_revoked_token_is_refused_at_once(district: dict[str, Any]) -> None:
    client = client_for(district["counselor"])
    assert client.get("/api/v1/schools").status_code == 200
    Token.objects.filter(user=district["counselor"]).get().delete()
    assert_error(client.get("/api/v1/schools"), 401, "authentication_failed")


def test_a_deactivated_user_is_refused_at_once(district: dict[str, Any]) -> None:
    client = client_for(district["counselor"])
    assert client.get("/api/v1/schools").status_code == 200
    counselor = district["counselor"]
    counselor.is_active = False
    counselor.save()
    assert_error(client.get("/api/v1/schools"), 401, "authentication_failed")


def test_a_changed_scope_takes_effect_at_once(district: dict[str, Any]) -> None:
    client = client_for(district["counselor"])
    names = lambda: [s["name"] for s in client.get("/api/v1/schools").json()["results"]]  # noqa: E731
    assert names() == ["Alpha High"]
    StaffScope.objects.create(user=district["counselor"], school=district["school_b"])
    assert sorted(names()) == ["Alpha High", "Beta High"]
    StaffScope.objects.filter(user=district["counselor"]).delete()
    assert names() == []


def test_lost_permissions_take_effect_at_once(district: dict[str, Any]) -> None:
    client = client_for(district["counselor"])
    assert client.get("/api/v1/students").status_code == 200
    district["counselor"].groups.clear()
    assert_error(client.get("/api/v1/students"), 403, "permission_denied")
    assert Group.objects.exists()


def test_the_commit_bumps_the_generation_again(
    district: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    from django.core.cache import cache

    from apps.common.authentication import GENERATION_KEY

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        StaffScope.objects.create(user=district["counselor"], school=district["school_b"])
        saved = cache.get(GENERATION_KEY)
    assert callbacks and cache.get(GENERATION_KEY) != saved


@override_settings(EDUPULSE_API_AUTH_CACHE_SECONDS=0)
def test_no_cache_when_turned_off(district: dict[str, Any], django_assert_num_queries: Any) -> None:
    key = _key(district["counselor"])
    auth = CachedTokenAuthentication()
    auth.authenticate_credentials(key)
    with django_assert_num_queries(1):
        auth.authenticate_credentials(key)
    with pytest.raises(AuthenticationFailed):
        auth.authenticate_credentials("nope")
