"""Recompute features when students' raw records change (apps.common.signals)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from functools import partial
from typing import Any

from django.db import transaction

logger = logging.getLogger(__name__)

TASK_STUDENTS = 20_000  # students per task message


def _iso(value: dt.date | dt.datetime | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        value = value.date()
    return value.isoformat()


def schedule_refresh(
    sender: Any,
    *,
    student_ids: Iterable[int],
    since: dt.date | None = None,
    until: dt.date | None = None,
    kinds: Iterable[str] | None = None,
    source: str = "",
    **kwargs: Any,
) -> None:
    from apps.features.tasks import features_refresh_task

    ids = sorted({int(i) for i in student_ids})
    if not ids:
        return
    # The refresh itself drops the students' cached windows once it commits.
    since_text, until_text = _iso(since), _iso(until)
    logger.info(
        "features refresh queued: students=%s since=%s source=%s", len(ids), since_text, source
    )
    # Tasks of TASK_STUDENTS let several workers share a district-wide
    # import. Inline (eager, no broker) they would run one after another,
    # each re-reading what they share (the schools' records, the calendar):
    # one refresh of every student is cheaper.
    per_task = len(ids) if features_refresh_task.app.conf.task_always_eager else TASK_STUDENTS
    for first in range(0, len(ids), per_task):
        chunk = ids[first : first + per_task]
        transaction.on_commit(
            partial(
                features_refresh_task.delay,
                student_ids=chunk,
                since=since_text,
                until=until_text,
                source=source,
            )
        )
