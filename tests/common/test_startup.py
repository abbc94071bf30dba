import gc
import sys
import weakref

from apps.common.startup import startup_objects_freeze


class _Node:
    def __init__(self) -> None:
        self.me = self


def test_start_up_objects_are_frozen_and_later_garbage_is_still_collected() -> None:
    gc.unfreeze()
    try:
        startup_objects_freeze()
        assert gc.get_freeze_count() > 10_000
        assert "apps.dashboards.views" in sys.modules  # the URLconf was loaded before freezing
        cycle = _Node()  # garbage a request leaves behind: a reference cycle
        alive = weakref.ref(cycle)
        del cycle
        gc.collect()
        assert alive() is None
    finally:
        gc.unfreeze()
