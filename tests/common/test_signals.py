import datetime as dt
from typing import Any

import pytest

from apps.common.signals import student_data_changed, student_data_changes_batched

# The apps' own receivers (features, dashboards) stay connected and touch the database.
pytestmark = pytest.mark.django_db


@pytest.fixture
def received() -> Any:
    calls: list[dict[str, Any]] = []

    def receiver(sender: Any, **kwargs: Any) -> None:
        kwargs.pop("signal")
        calls.append(kwargs)

    student_data_changed.connect(receiver, dispatch_uid="test-receiver")
    yield calls
    student_data_changed.disconnect(dispatch_uid="test-receiver")


def send(ids: list[int], since: dt.date | None, until: dt.date | None, kind: str) -> None:
    student_data_changed.send(
        sender=None, student_ids=ids, since=since, until=until, kinds=[kind], source="t"
    )


def test_outside_a_batch_each_send_reaches_receivers(received: list[dict[str, Any]]) -> None:
    send([1], dt.date(2026, 1, 5), dt.date(2026, 1, 9), "attendance")
    send([2], None, None, "enrollments")
    assert [call["student_ids"] for call in received] == [[1], [2]]


def test_a_batch_sends_one_union_at_its_end(received: list[dict[str, Any]]) -> None:
    with student_data_changes_batched(source="backfill"):
        send([3, 1], dt.date(2026, 2, 2), dt.date(2026, 2, 6), "attendance")
        send([2, 3], dt.date(2026, 1, 5), dt.date(2026, 3, 1), "grades")
        assert received == []
    assert received == [
        {
            "student_ids": [1, 2, 3],
            "since": dt.date(2026, 1, 5),
            "until": dt.date(2026, 3, 1),
            "kinds": ["attendance", "grades"],
            "source": "backfill",
        }
    ]


def test_an_unknown_bound_makes_the_union_unknown(received: list[dict[str, Any]]) -> None:
    with student_data_changes_batched(source="backfill"):
        send([1], None, None, "enrollments")
        send([2], dt.date(2026, 1, 5), dt.date(2026, 1, 9), "attendance")
    assert (received[0]["since"], received[0]["until"]) == (None, None)


def test_committed_changes_are_announced_when_the_block_fails(
    received: list[dict[str, Any]],
) -> None:
    with pytest.raises(RuntimeError), student_data_changes_batched(source="backfill"):
        send([7], None, None, "roster")
        raise RuntimeError("second file broke")
    assert received[0]["student_ids"] == [7]


def test_an_empty_batch_sends_nothing(received: list[dict[str, Any]]) -> None:
    with student_data_changes_batched(source="backfill"):
        pass
    assert received == []
