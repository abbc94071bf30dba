"""Cached feature windows for single predictions.

Keys carry two generation tokens: the student's bucket's (changed when the
data of a student in it changes) and the feature set's (changed by a full
rebuild), so invalidation is one `set_many` of at most BUCKETS tokens rather
than a hunt for every (as_of, weeks) key ever cached; a district-wide import
touches 1,024 keys, not 100,000. Neighbours in a bucket lose their entry too,
which costs them one query. Stale entries simply expire.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from typing import Any

from django.core.cache import cache

TIMEOUT = 24 * 3600
BUCKETS = 1024


def _student_key(student_id: int) -> str:
    return f"features:gen:bucket:{student_id % BUCKETS}"


def _set_key(version: str) -> str:
    return f"features:gen:set:{version}"


def window_key(*, version: str, student_id: int, as_of: dt.date, weeks: int) -> str:
    tokens = cache.get_many([_set_key(version), _student_key(student_id)])
    return (
        f"features:window:{version}:{tokens.get(_set_key(version), '0')}:"
        f"{student_id}:{tokens.get(_student_key(student_id), '0')}:{as_of.isoformat()}:{weeks}"
    )


def window_get(key: str) -> Any:
    return cache.get(key)


def window_set(key: str, value: Any) -> None:
    cache.set(key, value, TIMEOUT)


def students_invalidate(student_ids: Iterable[int]) -> None:
    token = uuid.uuid4().hex
    buckets = {int(student_id) % BUCKETS for student_id in student_ids}
    cache.set_many({f"features:gen:bucket:{bucket}": token for bucket in buckets}, None)


def feature_set_invalidate(version: str) -> None:
    cache.set(_set_key(version), uuid.uuid4().hex, None)
