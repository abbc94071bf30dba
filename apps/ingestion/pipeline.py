"""Loading beside validation: chunks go into the job's transaction as they pass.

The caller opens one transaction for the whole job and hands every validated
chunk to a Loader. On PostgreSQL a thread does the database side on the
job's own psycopg connection while the caller validates the next chunk:
psycopg serialises the two threads' statements on the connection and
releases the GIL while the server works, so the server writes chunk n while
Python checks chunk n+1. Nothing is visible before COMMIT; a failure, or an
error under all-or-nothing, rolls back whatever was written (services._run).

Attendance (a table whose stored row is exactly the staged row) goes in
chunk by chunk; duplicates are removed before a chunk is handed over
(Duplicates), so chunks never share keys:

* a chunk none of whose keys can be stored yet (a first load, a new month)
  is COPYed straight into the table (loading.copy_new);
* any other chunk (a re-import, a corrected file) is compared with the
  stored rows of its own students and dates, and only the rows that differ
  are staged (loading.stage_changed); loading.upsert() writes them once the
  file is done.

Every chunk of the other kinds is COPYed into the staging table, and
loading.upsert() compares and writes the staged rows once the file is done
(a roster's exits must be ordered before its openings across the file).

SQLite (the embedded default) runs the same steps inline, one after the other.
"""

from __future__ import annotations

import datetime as dt
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from django.db import connection

from apps.ingestion.loading import (
    TARGETS,
    Chunk,
    Stage,
    TargetResult,
    chunk_for,
    copy_new,
    stage_changed,
    upsert,
)


class Loader:
    """Stages and loads validated chunks inside the caller's transaction."""

    def __init__(
        self,
        *,
        stage: Stage,
        kind: str,
        present: set[str],
        now: dt.datetime,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self.stage = stage
        self.targets = TARGETS[kind]
        # The one table that new chunks are COPYed into as they come, if any.
        self.direct = (
            self.targets[0]
            if len(self.targets) == 1
            and self.targets[0].copies_directly
            and connection.vendor == "postgresql"
            else None
        )
        self.present = present
        self.now = now
        self.progress = progress
        self.results = {target.name: TargetResult() for target in self.targets}
        # Where a chunk of `direct`'s kind is compared before it is staged.
        self._scratch = Stage(kind, stage.job_id, suffix="_chunk") if self.direct else None
        self._scratch_made = False
        self.seconds = 0.0  # time spent loading (it overlaps validation)
        self.error: BaseException | None = None
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._queue: queue.Queue[Chunk | None] = queue.Queue(maxsize=1)
        self._cursor: Any = None
        if connection.vendor == "postgresql":
            connection.ensure_connection()
            # The psycopg connection under Django's: the thread must not use
            # `django.db.connection`, which would be a new connection (and a
            # new transaction) in that thread.
            self._cursor = connection.connection.cursor()
            self._thread = threading.Thread(
                target=self._work, name=f"ingest-{stage.name}", daemon=True
            )
            self._thread.start()

    def put(self, frame: pd.DataFrame) -> None:
        """Hand over one validated chunk (it may wait while the previous one loads)."""
        self._raise()
        if frame.empty:
            return
        # The Python work of loading (facts, COPY blocks) happens on this side.
        chunk = chunk_for(self.direct, self.stage, frame)
        if self._thread is None:
            with connection.cursor() as cursor:
                self._load(cursor, chunk)
        else:
            self._queue.put(chunk)

    def finish(self) -> dict[str, TargetResult]:
        """Wait for the chunks handed over, write the staged rows; the tables' counts."""
        self._join()
        self._raise()
        started = time.perf_counter()
        if self._cursor is not None:
            self._upsert_staged(self._cursor)
        else:
            with connection.cursor() as cursor:
                self._upsert_staged(cursor)
        self.seconds += time.perf_counter() - started
        return self.results

    def abandon(self) -> None:
        """Stop loading (the caller's rollback undoes what was written); safe to repeat."""
        self._stopping = True
        self._join()
        if self._cursor is not None:
            self._cursor.close()
            self._cursor = None

    # -- the loading side ----------------------------------------------

    def _work(self) -> None:
        while (chunk := self._queue.get()) is not None:
            if self.error is not None or self._stopping:
                continue  # keep taking chunks so that put() never blocks for ever
            try:
                self._load(self._cursor, chunk)
            except BaseException as error:  # noqa: BLE001 - re-raised in the caller's thread
                self.error = error

    def _load(self, cursor: Any, chunk: Chunk) -> None:
        started = time.perf_counter()
        if self.direct is None or self._scratch is None:
            self.stage.write(cursor, chunk.frame, chunk.blocks)
        else:
            result = copy_new(cursor, self.stage, self.direct, chunk)
            if result is None:  # some keys may be stored: compare now, write at the end
                if not self._scratch_made:
                    self._scratch.create(cursor, on_commit_drop=True)
                    self._scratch_made = True
                unchanged = stage_changed(cursor, self.stage, self._scratch, self.direct, chunk)
                result = TargetResult(unchanged=unchanged)
            _add(self.results[self.direct.name], result)
            if self.progress is not None:
                self.progress(int(chunk.frame["_line"].iloc[-1]))
        self.seconds += time.perf_counter() - started

    def _upsert_staged(self, cursor: Any) -> None:
        if not self.stage.rows:
            return
        self.stage.analyze(cursor)
        for target in self.targets:
            _add(
                self.results[target.name],
                upsert(
                    cursor,
                    self.stage,
                    target,
                    present=self.present,
                    now=self.now,
                    progress=self.progress,
                    # Only the rows of chunks that may hold stored keys, and
                    # that differ from them, were staged.
                    stored=True if target is self.direct else None,
                    compared=target is self.direct,
                ),
            )

    def _join(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def _raise(self) -> None:
        if self.error is not None:
            raise self.error


def _add(total: TargetResult, part: TargetResult) -> None:
    total.inserted += part.inserted
    total.updated += part.updated
    total.unchanged += part.unchanged
    total.student_ids += part.student_ids
    if part.since is not None:
        total.since = part.since if total.since is None else min(total.since, part.since)
    if part.until is not None:
        total.until = part.until if total.until is None else max(total.until, part.until)


class Duplicates:
    """The natural keys of a file seen so far, to find repeats chunk by chunk.

    The first line with a key is kept; every later line with it (in the same
    chunk or a later one) repeats it. Seen keys are kept as sorted runs, a run
    merged into the one before it once it is as long, so a lookup is a few
    binary searches and no chunk re-sorts everything seen before it.
    """

    def __init__(self) -> None:
        self._runs: list[tuple[np.ndarray, np.ndarray]] = []

    def find(self, keys: np.ndarray, lines: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(repeats, first line of each row's key) for one chunk; lines ascend."""
        n = len(keys)
        first = np.full(n, -1, dtype=np.int64)
        for run_keys, run_lines in self._runs:
            at = np.minimum(np.searchsorted(run_keys, keys), len(run_keys) - 1)
            hit = (run_keys[at] == keys) & (first < 0)
            first[hit] = run_lines[at[hit]]
        seen = first >= 0
        order = np.argsort(keys, kind="stable")  # equal keys keep their line order
        ordered = keys[order]
        starts = np.ones(n, dtype=bool)
        starts[1:] = ordered[1:] != ordered[:-1]
        run_start = np.maximum.accumulate(np.where(starts, np.arange(n), 0))
        repeat = np.empty(n, dtype=bool)
        repeat[order] = ~starts
        first_here = np.empty(n, dtype=np.int64)
        first_here[order] = lines[order][run_start]
        new = ~seen & ~repeat
        self._remember(keys[new], lines[new])
        return seen | repeat, np.where(seen, first, first_here)

    def _remember(self, keys: np.ndarray, lines: np.ndarray) -> None:
        if not len(keys):
            return
        order = np.argsort(keys)
        self._runs.append((keys[order], lines[order].astype(np.int64)))
        while len(self._runs) > 1 and len(self._runs[-2][0]) <= len(self._runs[-1][0]):
            (k1, l1), (k2, l2) = self._runs.pop(-2), self._runs.pop()
            merged_keys = np.concatenate([k1, k2])
            order = np.argsort(merged_keys, kind="stable")
            self._runs.append((merged_keys[order], np.concatenate([l1, l2])[order]))
