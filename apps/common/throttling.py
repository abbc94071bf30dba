"""The API's request budgets, named in REST_FRAMEWORK; kept apart from the views (DRF imports them early).

One class counts every budget that applies to a request, each in a fixed
window (`<budget>:<who>:<window number>`):

- ``anon``: per client address, requests without a user;
- ``user``: per user, session or token alike;
- ``token``: per API token, so a leaked script token cannot use up its owner's
  browser budget (the key holds a digest of the token, never the token);
- the view's ``throttle_scope`` (``predict``, ``train``): per user or address.

DRF's own throttles keep a list of timestamps per budget in the cache and
rewrite it on every request: four budgets cost about eight round trips and
30 ms of pickling at high rates. Here each budget is one counter: INCR and
EXPIRE for all of them go to Redis in one pipeline (one round trip), or
through the cache API when the cache is not Redis (tests). A fixed window
lets a client spend up to twice its budget across a window boundary; the
budgets are generous guards against runaway scripts, not billing, so that is
acceptable for the price.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

from apps.common.cache import redis_client, secret_digest

_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class Budget:
    key: str
    limit: int
    period: int


def parse_rate(rate: str) -> tuple[int, int]:
    """'600/min' -> (600, 60): requests per period in seconds (DRF's rate syntax)."""
    count, period = rate.split("/")
    return int(count), _PERIODS[period[0]]


class RequestThrottle(BaseThrottle):
    """Every budget that applies to the request, counted in one round trip."""

    # The same dict as DRF's throttles read (api_settings), so tests and settings agree.
    THROTTLE_RATES: dict[str, Any] = api_settings.DEFAULT_THROTTLE_RATES

    def __init__(self) -> None:
        self._wait: float | None = None

    def budgets(self, request: Any, view: Any, now: float) -> list[Budget]:
        user = getattr(request, "user", None)
        signed_in = bool(user is not None and user.is_authenticated)
        who = f"user:{getattr(user, 'pk', None)}" if signed_in else f"ip:{self.get_ident(request)}"
        wanted = [("user", who) if signed_in else ("anon", who)]
        token = getattr(request, "auth", None)
        key = getattr(token, "key", None)
        if signed_in and isinstance(key, str):
            wanted.append(("token", secret_digest(key)))
        scope = getattr(view, "throttle_scope", None)
        if scope:
            wanted.append((scope, who))
        budgets = []
        for name, ident in wanted:
            rate = self.THROTTLE_RATES.get(name)
            if not rate:
                continue
            limit, period = parse_rate(rate)
            window = int(now // period)
            budgets.append(Budget(f"throttle:{name}:{ident}:{window}", limit, period))
        return budgets

    def allow_request(self, request: Any, view: Any) -> bool:
        now = time.time()
        budgets = self.budgets(request, view, now)
        if not budgets:
            return True
        counts = _count(budgets)
        over = [b for b, n in zip(budgets, counts, strict=True) if n > b.limit]
        if not over:
            return True
        # Until the window of the longest refusing budget ends.
        self._wait = max(b.period - now % b.period for b in over)
        return False

    def wait(self) -> float | None:
        return self._wait


def _count(budgets: list[Budget]) -> list[int]:
    """Add one to each budget's counter; the counts after the request."""
    client = redis_client()
    if client is None:
        counts = []
        for budget in budgets:
            # add() starts the window's counter (with its expiry) only if it is not there yet.
            cache.add(budget.key, 0, budget.period + 1)
            try:
                counts.append(int(cache.incr(budget.key)))
            except ValueError:  # expired between the two calls: a new window
                cache.set(budget.key, 1, budget.period + 1)
                counts.append(1)
        return counts
    pipe = client.pipeline(transaction=False)
    for budget in budgets:
        key = cache.make_key(budget.key)
        pipe.incr(key)
        pipe.expire(key, budget.period + 1)
    replies = pipe.execute()
    return [int(n) for n in replies[::2]]
