from typing import Any

import pytest
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.test import APIClient, APIRequestFactory
from rest_framework.views import APIView

from apps.common.throttling import RequestThrottle, parse_rate
from tests.api.conftest import assert_error, client_for

pytestmark = pytest.mark.django_db


def test_rates_read_like_drf() -> None:
    assert parse_rate("600/min") == (600, 60)
    assert parse_rate("10/hour") == (10, 3600)
    assert parse_rate("5/s") == (5, 1)


class _Open(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list[type] = []

    def get(self, request: Request) -> Response:
        return Response({"ok": True})


def test_anonymous_budget_is_per_address(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(RequestThrottle.THROTTLE_RATES, "anon", "1/min")
    view = _Open.as_view()
    factory = APIRequestFactory()
    assert view(factory.get("/open")).status_code == 200
    response = view(factory.get("/open"))
    response.render()
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 60
    error = response.data["error"]
    assert error["code"] == "throttled"
    assert error["details"]["wait_seconds"] == int(response["Retry-After"])
    assert view(factory.get("/open", REMOTE_ADDR="10.1.2.3")).status_code == 200


def test_health_is_never_throttled(monkeypatch: pytest.MonkeyPatch) -> None:
    # Liveness probes come from one address every few seconds.
    monkeypatch.setitem(RequestThrottle.THROTTLE_RATES, "anon", "1/min")
    client = APIClient()
    for _ in range(3):
        assert client.get("/api/v1/health").status_code == 200


def test_scoped_budget_counts_only_its_views(
    monkeypatch: pytest.MonkeyPatch, district: dict[str, Any]
) -> None:
    monkeypatch.setitem(RequestThrottle.THROTTLE_RATES, "predict", "1/min")
    client = client_for(district["counselor"])
    payload = {"student_id": "S-A-1"}
    # No model: 503, but the request still spent the budget.
    assert client.post("/api/v1/predict", payload, format="json").status_code == 503
    assert_error(client.post("/api/v1/predict", payload, format="json"), 429, "throttled")
    assert client.get("/api/v1/schools").status_code == 200
    # Another counselor has their own budget.
    assert (
        client_for(district["analyst"]).post("/api/v1/predict", payload, format="json").status_code
        == 503
    )


def test_cache_keys_hold_no_token(district: dict[str, Any]) -> None:
    from rest_framework.authtoken.models import Token

    client = client_for(district["counselor"])
    assert client.get("/api/v1/schools").status_code == 200
    key = Token.objects.get(user=district["counselor"]).key
    from django.core.cache import cache

    stored = list(cache._cache)  # type: ignore[attr-defined]  # locmem's keys
    assert stored and not any(key in k for k in stored)


@pytest.mark.redis
def test_budgets_are_counted_in_redis(
    monkeypatch: pytest.MonkeyPatch, district: dict[str, Any], redis_url: str, settings: Any
) -> None:
    import redis

    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis_url}
    }
    monkeypatch.setitem(RequestThrottle.THROTTLE_RATES, "token", "2/min")
    client = client_for(district["counselor"])
    assert client.get("/api/v1/schools").status_code == 200
    assert client.get("/api/v1/schools").status_code == 200
    response = client.get("/api/v1/schools")
    assert_error(response, 429, "throttled")
    assert 1 <= int(response["Retry-After"]) <= 60
    keys = [k.decode() for k in redis.Redis.from_url(redis_url).keys("*throttle:*")]
    assert {k.split(":")[3] for k in keys} >= {"user", "token"}
    token = client_for(district["counselor"])._credentials["HTTP_AUTHORIZATION"].split()[1]
    assert not any(token in k for k in keys)
    ttls = [redis.Redis.from_url(redis_url).ttl(k) for k in keys]
    assert all(0 < ttl <= 61 for ttl in ttls)
