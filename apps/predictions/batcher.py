"""Micro-batching of single predictions: requests that arrive together share one forward pass.

A forward pass over 1 student and over 64 costs nearly the same on a CPU, so
under concurrent load scoring them one by one wastes most of the time. Each
request thread puts its inputs on a queue and waits; one worker thread takes
the first request, collects whatever else arrives until `wait_ms` after it
(or until `max_batch` students, then at once), scores them all at once and
hands each its own rows back.
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ml.data import SequenceArrays
    from ml.inference import Scorer


@dataclass
class _Request:
    arrays: SequenceArrays
    future: Future[np.ndarray] = field(default_factory=Future)


def concat_arrays(parts: list[SequenceArrays]) -> SequenceArrays:
    """One batch from several; shorter sequences are padded (beyond their lengths)."""
    from ml.data import SequenceArrays

    t_max = max(a.seq.shape[1] for a in parts)
    seqs = [
        np.pad(a.seq, ((0, 0), (0, t_max - a.seq.shape[1]), (0, 0)), constant_values=np.nan)
        for a in parts
    ]
    return SequenceArrays(
        seq=np.concatenate(seqs),
        lengths=np.concatenate([a.lengths for a in parts]),
        static_num=np.concatenate([a.static_num for a in parts]),
        static_cat=np.concatenate([a.static_cat for a in parts]),
    )


class MicroBatcher:
    def __init__(self, scorer: Scorer, *, wait_ms: float = 5.0, max_batch: int = 256) -> None:
        self.scorer = scorer
        self.wait = wait_ms / 1000
        self.max_batch = max_batch
        self.batch_sizes: list[int] = []  # students per forward pass, for tests and metrics
        self._queue: queue.Queue[_Request | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="edupulse-batcher", daemon=True)
        self._thread.start()

    def score(self, arrays: SequenceArrays, timeout: float = 30.0) -> np.ndarray:
        """Calibrated probabilities for `arrays`, scored together with concurrent requests."""
        request = _Request(arrays)
        self._queue.put(request)
        return request.future.result(timeout=timeout)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=5)

    def _collect(self, first: _Request) -> list[_Request]:
        """The first request and whatever joins it before its deadline; a full batch leaves at once.

        The deadline is fixed when the first request is taken, so no request
        waits more than `wait_ms` for others (a timer that restarted on every
        arrival could hold the first one for as long as requests keep coming).
        """
        batch, rows = [first], len(first.arrays)
        deadline = time.monotonic() + self.wait
        while rows < self.max_batch:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                item = self._queue.get(timeout=remaining)
            except queue.Empty:
                break
            if item is None:
                self._queue.put(None)  # let _run see the stop after this batch
                break
            batch.append(item)
            rows += len(item.arrays)
        return batch

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = self._collect(first) if self.wait > 0 else [first]
            try:
                probs = self.scorer.score(concat_arrays([r.arrays for r in batch]))
            except Exception as error:  # noqa: BLE001 - every waiting request gets the error
                for request in batch:
                    request.future.set_exception(error)
                continue
            self.batch_sizes.append(len(probs))
            start = 0
            for request in batch:
                n = len(request.arrays)
                request.future.set_result(probs[start : start + n])
                start += n


_lock = threading.Lock()
_batchers: dict[int, MicroBatcher] = {}


def batcher_for(scorer: Scorer, *, wait_ms: float) -> MicroBatcher:
    """The process's batcher for this scorer (one per loaded model)."""
    key = id(scorer)
    with _lock:
        batcher = _batchers.get(key)
        if batcher is None:
            for old in _batchers.values():
                old.close()  # a promotion replaced the model: retire the old worker
            _batchers.clear()
            batcher = _batchers[key] = MicroBatcher(scorer, wait_ms=wait_ms)
        return batcher
