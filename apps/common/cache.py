"""The Redis client behind the default cache, one per process, for what the cache API cannot say.

Django's cache API has no pipeline: counting four throttle budgets through it
would be eight round trips. The client here shares one connection pool
between the threads of a process (redis-py's pool is thread-safe), where
`caches["default"]` is one backend object, and one pool, per thread.
Callers fall back to the cache API when the cache is not Redis (tests run on
locmem), so both paths must mean the same thing.
"""

from __future__ import annotations

import hashlib
import threading
from typing import TYPE_CHECKING

from django.core.cache import caches

if TYPE_CHECKING:
    import redis

_lock = threading.Lock()
_clients: dict[str, redis.Redis] = {}


def redis_client() -> redis.Redis | None:
    """The process's client for the default cache's server, or None when it is not Redis."""
    from django.core.cache.backends.redis import RedisCache

    backend = caches["default"]
    if not isinstance(backend, RedisCache):
        return None
    location: str = backend._servers[0]  # type: ignore[attr-defined]
    client = _clients.get(location)
    if client is None:
        import redis

        with _lock:
            client = _clients.get(location)
            if client is None:
                client = _clients[location] = redis.Redis.from_url(location)
    return client


def secret_digest(secret: str) -> str:
    """A cache-key-safe stand-in for a secret (an API token): its raw value never enters a key."""
    return hashlib.sha256(secret.encode()).hexdigest()[:32]
