import threading

import numpy as np
import pytest
from django.apps import apps
from django.core.cache import cache
from django.test import override_settings

from apps.predictions import loader
from apps.predictions.batcher import MicroBatcher
from apps.predictions.models import ModelStatus, ModelVersion
from tests.predictions.scoring_support import district_make, model_version_make, risk_model

pytestmark = pytest.mark.django_db


@pytest.fixture
def district(tmp_path):
    with override_settings(EDUPULSE_MODEL_DIR=tmp_path):
        cache.clear()
        yield district_make(tmp_path)
        loader.active_model_forget()


def _arrays(n: int, weeks: int, seed: int, model):
    from ml.data import SequenceArrays

    rng = np.random.default_rng(seed)
    return SequenceArrays(
        seq=rng.random((n, weeks, model.loaded.model_config.n_seq_features)).astype(np.float32),
        lengths=np.full(n, weeks),
        static_num=rng.random((n, 4)).astype(np.float32),
        static_cat=np.zeros((n, 3), dtype=np.int64),
    )


def test_model_is_loaded_once_per_process_and_follows_promotion(district, tmp_path):
    first = loader.active_model()
    assert loader.active_model() is first and loader.active_model_loaded()
    other = model_version_make(
        risk_model(tmp_path, first.loaded.feature_columns, seed=1, name="other.pt"),
        status=ModelStatus.CANDIDATE,
    )
    ModelVersion.objects.filter(pk=district.version.pk).update(status=ModelStatus.RETIRED)
    ModelVersion.objects.filter(pk=other.pk).update(status=ModelStatus.ACTIVE)
    assert loader.active_model().version.pk == other.pk


def test_warm_up_only_when_asked(district):
    loader.active_model_forget()
    config = apps.get_app_config("predictions")
    config.ready()  # EDUPULSE_WARM_MODEL is off in tests
    assert not loader.active_model_loaded()
    with override_settings(EDUPULSE_WARM_MODEL=True):
        config.ready()
    assert loader.active_model_loaded()


def test_concurrent_requests_share_a_forward_pass(district):
    model = loader.active_model()
    batcher = MicroBatcher(model.scorer, wait_ms=300)
    # Different lengths and sizes: padding must not change anyone's score.
    requests = [_arrays(1 + i % 2, 5 + i, seed=i, model=model) for i in range(8)]
    expected = [model.scorer.score(a) for a in requests]
    results: list[np.ndarray | None] = [None] * len(requests)
    start = threading.Barrier(len(requests))

    def client(i: int) -> None:
        start.wait()
        results[i] = batcher.score(requests[i])

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    batcher.close()
    assert sum(batcher.batch_sizes) == sum(len(a) for a in requests)
    assert len(batcher.batch_sizes) < len(requests) / 2  # batched, not one pass each
    for got, want in zip(results, expected, strict=True):
        assert got is not None
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


def test_a_failing_batch_fails_each_request(district):
    model = loader.active_model()
    batcher = MicroBatcher(model.scorer, wait_ms=1)
    bad = _arrays(1, 4, seed=0, model=model)
    bad.static_num = np.zeros((1, 9), dtype=np.float32)  # the wrong width
    with pytest.raises(ValueError, match="static numeric"):
        batcher.score(bad)
    assert len(batcher.score(_arrays(2, 4, seed=1, model=model))) == 2
    batcher.close()


def test_the_first_request_waits_at_most_the_deadline_and_a_full_batch_leaves_at_once(district):
    import time

    model = loader.active_model()
    one = _arrays(1, 4, seed=0, model=model)
    batcher = MicroBatcher(model.scorer, wait_ms=200)
    started = time.monotonic()
    batcher.score(one)  # alone: leaves when the deadline passes
    alone = time.monotonic() - started
    assert 0.19 <= alone < 2
    batcher.close()

    full = MicroBatcher(model.scorer, wait_ms=10_000, max_batch=4)
    started = time.monotonic()
    assert len(full.score(_arrays(4, 4, seed=1, model=model))) == 4
    assert time.monotonic() - started < 5  # not the 10 s deadline
    full.close()


def test_a_request_arriving_late_does_not_extend_the_deadline(district):
    import time

    model = loader.active_model()
    batcher = MicroBatcher(model.scorer, wait_ms=300)
    first_done: list[float] = []
    started = time.monotonic()

    def first() -> None:
        batcher.score(_arrays(1, 4, seed=0, model=model))
        first_done.append(time.monotonic() - started)

    thread = threading.Thread(target=first)
    thread.start()
    time.sleep(0.2)
    batcher.score(_arrays(1, 4, seed=1, model=model))  # joins the first one's batch
    thread.join(timeout=10)
    batcher.close()
    assert (
        first_done and first_done[0] < 1.5
    )  # 0.3 s and a forward pass, with room for a busy machine
    assert batcher.batch_sizes == [2]
