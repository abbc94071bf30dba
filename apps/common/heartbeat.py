"""A worker's sign of life in the shared cache.

Sweeps that fail work whose worker died (an import job, a training run) read
it: a row updated inside a long transaction, or not updated for a long step,
cannot tell a busy worker from a dead one, but a beat that stops can.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from django.core.cache import cache

logger = logging.getLogger(__name__)


def beat(key: str, *, ttl_seconds: int) -> None:
    cache.set(key, time.time(), timeout=ttl_seconds)


def last_beats(keys: Iterable[str]) -> dict[str, float]:
    """The time of each key's last beat; keys that never beat (or expired) are absent."""
    return cache.get_many(list(keys))


@contextmanager
def beating(key: str, *, every_seconds: float, ttl_seconds: int) -> Iterator[None]:
    """Beat now and then every ``every_seconds`` from a thread, until the block ends.

    The thread dies with the process, which is the point: a worker killed for
    memory or by the hard time limit stops beating.
    """
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(every_seconds):
            try:
                beat(key, ttl_seconds=ttl_seconds)
            except Exception:  # a cache outage must not end the work it watches
                logger.warning("heartbeat %s could not be written", key, exc_info=True)

    beat(key, ttl_seconds=ttl_seconds)
    thread = threading.Thread(target=run, name=f"heartbeat {key}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
