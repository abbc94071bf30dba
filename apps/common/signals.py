"""Signals that cross app boundaries.

`student_data_changed` is sent (after the transaction commits) whenever raw
records of students change: an import job, an admin edit, the demo loader.
Receivers recompute what depends on those records (weekly features, cached
predictions). Keyword arguments:

- ``student_ids``: list of Student primary keys whose records changed
- ``since`` / ``until``: the dates the changed records cover (``None`` = unknown)
- ``kinds``: the record kinds that changed ("attendance", "grades", ...)
- ``source``: a short label of who sent it, for logs ("import:42", "demo")
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.dispatch import Signal

_pending: ContextVar[list[dict[str, Any]] | None] = ContextVar("student_data_pending", default=None)


class StudentDataSignal(Signal):
    """Holds its sends back inside `student_data_changes_batched`."""

    def send(self, sender: Any, **named: Any) -> list[tuple[Any, Any]]:
        pending = _pending.get()
        if pending is not None:
            pending.append(named)
            return []
        return super().send(sender, **named)


student_data_changed = StudentDataSignal()


def _merged(changes: list[dict[str, Any]], source: str) -> dict[str, Any]:
    def widest(name: str, pick: Any) -> Any:
        values = [change.get(name) for change in changes]
        # One unknown bound makes the union unknown: receivers then redo whole years.
        return None if any(v is None for v in values) else pick(values)

    return {
        "student_ids": sorted({int(pk) for change in changes for pk in change["student_ids"]}),
        "since": widest("since", min),
        "until": widest("until", max),
        "kinds": sorted({kind for change in changes for kind in change.get("kinds", [])}),
        "source": source,
    }


@contextmanager
def student_data_changes_batched(*, source: str) -> Iterator[None]:
    """Send one signal for everything changed inside the block, at its end.

    A backfill of many files would otherwise make every receiver redo the same
    students once per file; committed changes are announced even if the block
    fails part-way.
    """
    token = _pending.set([])
    try:
        yield
    finally:
        changes = _pending.get() or []
        _pending.reset(token)
        if changes:
            student_data_changed.send(sender=None, **_merged(changes, source))
