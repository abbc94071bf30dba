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


def test_web_processes_run_torch_on_one_thread() -> None:
    import os
    import subprocess

    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    env["DJANGO_SETTINGS_MODULE"] = "edupulse.settings.test"
    out = subprocess.run(  # noqa: S603
        [sys.executable, "-c", "import edupulse.wsgi, torch; print(torch.get_num_threads())"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "1"
