"""Adaptive micro-batching: concurrent requests of one worker share one model call.

The model runs on the event loop's thread (it is CPU-bound, a thread would only add GIL
contention), so while it runs new requests pile up in the socket buffers and the next flush
takes them all: batches grow with load by themselves. On top of that a flush may linger, at
most `max_wait`, when more rows are very likely to come: the previous batch was bigger than
what is queued and some keep-alive connections of this worker are idle (their clients are
usually about to send). A lone client never waits: with no idle connection the flush runs on
the next loop iteration. A batch never exceeds `max_batch_size` rows unless one request alone
is bigger (requests are not split).
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("mlgen.serve")
Result = Any  # whatever the run function returns for one request
Callback = Callable[[Result | None, BaseException | None], None]
RunBatch = Callable[[dict[str, list[Any]], int, list[int]], list[Result]]


class MicroBatcher:
    def __init__(self, loop: asyncio.AbstractEventLoop, run: RunBatch, max_batch_size: int,
                 max_wait_s: float, idle_connections: Callable[[], int]) -> None:
        self._loop = loop
        self._run = run
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_s
        self._idle_connections = idle_connections
        self._queue: list[tuple[dict[str, list[Any]], int, Callback]] = []
        self._rows = 0
        self._first = 0.0
        self._handle: asyncio.Handle | asyncio.TimerHandle | None = None
        self._lingering = False
        self._last_batch_rows = 0

    def submit(self, columns: dict[str, list[Any]], rows: int, callback: Callback) -> None:
        self._queue.append((columns, rows, callback))
        self._rows += rows
        if self._handle is None:
            self._first = time.perf_counter()
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
        if not self._queue:
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
        if self._queue:  # the rest goes in the next loop iteration, after pending I/O
            self._first = time.perf_counter()
            self._handle = self._loop.call_soon(self._flush)
        if len(batch) == 1:
            merged = batch[0][0]
        else:
            merged = {name: [] for name in batch[0][0]}
            for columns, _, _ in batch:
                for name, values in columns.items():
                    merged[name].extend(values)
        sizes = [n for _, n, _ in batch]
        try:
            results = self._run(merged, rows, sizes)
        except Exception as exc:  # noqa: BLE001 - every waiting request gets the error
            for _, _, callback in batch:
                callback(None, exc)
            return
        for (_, _, callback), result in zip(batch, results):
            try:
                callback(result, None)
            except Exception as exc:  # noqa: BLE001 - a bug answering one request: answer it 500
                log.exception("answering a batched request failed")
                callback(None, exc)

    def pending_rows(self) -> int:
        return self._rows
