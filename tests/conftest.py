"""Shared fixtures.

Tests marked `postgres` or `redis` need the real servers. Locally they skip
when a server is missing; with EDUPULSE_REQUIRE_SERVICES=1 (CI) a missing
server fails the run instead, so CI can never go green by skipping them.
"""

import os
from collections.abc import Iterator

import pytest
from django.db import connection

REQUIRE_SERVICES = os.environ.get("EDUPULSE_REQUIRE_SERVICES") == "1"
TEST_REDIS_URL = os.environ.get("EDUPULSE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def _missing(reason: str) -> None:
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (EDUPULSE_REQUIRE_SERVICES=1 forbids skipping)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def _require_marked_services(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("postgres") and connection.vendor != "postgresql":
        _missing("needs PostgreSQL: set DATABASE_URL=postgres://...")
    if request.node.get_closest_marker("redis"):
        import redis

        try:
            redis.Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=1).ping()
        except redis.RedisError:
            _missing(f"needs Redis at {TEST_REDIS_URL}")


@pytest.fixture
def redis_url() -> Iterator[str]:
    import redis

    client = redis.Redis.from_url(TEST_REDIS_URL)
    client.flushdb()
    yield TEST_REDIS_URL
    client.flushdb()
