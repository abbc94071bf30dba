"""Keep the school overview's summaries current when students' records change."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from functools import partial
from typing import Any

from django.db import transaction


def schedule_overview_refresh(
    sender: Any,
    *,
    student_ids: Iterable[int],
    since: dt.date | None = None,
    until: dt.date | None = None,
    kinds: Iterable[str] | None = None,
    **kwargs: Any,
) -> None:
    from apps.dashboards.tasks import overview_refresh_task
    from apps.features.receivers import _iso

    ids = sorted({int(pk) for pk in student_ids})
    if not ids:
        return
    transaction.on_commit(
        partial(
            overview_refresh_task.delay,
            student_ids=ids,
            since=_iso(since),
            until=_iso(until),
            kinds=sorted(kinds) if kinds is not None else None,
        )
    )
