"""Adaptive micro-batching: concurrent requests of one worker share one model call.

One model call at a time per worker, on a dedicated thread, so the event loop keeps reading,
validating and queueing requests (and answering probes, and seeing SIGTERM) while the model
runs. Whatever queued up during a call becomes the next batch: batches grow with load by
themselves, and a lone client never waits. On top of that, when the model is free, a small
batch may linger, at most `max_wait`, if more rows are very likely to come: the previous batch
was bigger than what is queued and some keep-alive connections of this worker are idle (their
clients are usually about to send the next request). A batch never exceeds `max_batch_size`
rows unless one request alone is bigger (requests are not split).
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

log = logging.getLogger("mlgen.serve")
Result = Any  # whatever `finish` hands each request
Callback = Callable[[Result | None, BaseException | None], None]
Columns = dict[str, list[Any]]
Compute = Callable[[Columns, int], Any]  # runs on the model thread
Finish = Callable[[Columns, int, list[int], Any], list[Result]]  # runs on the loop


class MicroBatcher:
    def __init__(self, loop: asyncio.AbstractEventLoop, compute: Compute, finish: Finish,
                 max_batch_size: int, max_wait_s: float, idle_connections: Callable[[], int],
                 executor: ThreadPoolExecutor) -> None:
        self._loop = loop
        self._compute = compute
        self._finish = finish
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_s
        self._idle_connections = idle_connections
        self._executor = executor
        self._queue: list[tuple[Columns, int, Callback]] = []
        self._rows = 0
        self._first = 0.0
        self._handle: asyncio.Handle | asyncio.TimerHandle | None = None
        self._lingering = False
        self._busy = False
        self._last_batch_rows = 0

    def submit(self, columns: Columns, rows: int, callback: Callback) -> None:
        if not self._queue:
            self._first = time.perf_counter()
        self._queue.append((columns, rows, callback))
        self._rows += rows
        if self._busy:
            return  # picked up when the running call finishes
        if self._handle is None:
            self._handle = self._loop.call_soon(self._flush)
        elif self._lingering and not self._worth_waiting():
            self._handle.cancel()
            self._lingering = False
            self._handle = self._loop.call_soon(self._flush)

    def _worth_waiting(self) -> bool:
        return (self._rows < self.max_batch_size and self._rows < self._last_batch_rows
                and self._idle_connections() > 0)

    def _flush(self) -> None:
        self._handle = None
        self._lingering = False
        if not self._queue or self._busy:
            return
        if self.max_wait_s > 0 and self._worth_waiting():
            left = self.max_wait_s - (time.perf_counter() - self._first)
            if left > 0:
                self._lingering = True
                self._handle = self._loop.call_later(left, self._flush)
                return
        take, rows = 0, 0
        for _, n, _ in self._queue:
            if take and rows + n > self.max_batch_size:
                break
            take += 1
            rows += n
        batch, self._queue = self._queue[:take], self._queue[take:]
        self._rows -= rows
        self._last_batch_rows = rows
        if len(batch) == 1:
            merged = batch[0][0]
        else:
            merged = {name: [] for name in batch[0][0]}
            for columns, _, _ in batch:
                for name, values in columns.items():
                    merged[name].extend(values)
        sizes = [n for _, n, _ in batch]
        self._busy = True
        future = self._loop.run_in_executor(self._executor, self._compute, merged, rows)
        future.add_done_callback(lambda f: self._done(f, batch, merged, rows, sizes))

    def _done(self, future: asyncio.Future[Any], batch: list[tuple[Columns, int, Callback]],
              merged: Columns, rows: int, sizes: list[int]) -> None:
        self._busy = False
        if self._queue and self._handle is None:
            self._first = min(self._first, time.perf_counter())
            self._handle = self._loop.call_soon(self._flush)
        try:
            results = self._finish(merged, rows, sizes, future.result())
        except Exception as exc:  # noqa: BLE001 - every waiting request gets the error
            for _, _, callback in batch:
                callback(None, exc)
            return
        for (_, _, callback), result in zip(batch, results):
            try:
                callback(result, None)
            except Exception as exc:
                log.exception("answering a batched request failed")
                callback(None, exc)

    @property
    def busy(self) -> bool:
        return self._busy or bool(self._queue)
