"""Accepting connections so that pre-forked workers share them evenly.

All workers accept on one inherited listening socket. Left to the kernel, whichever worker
happens to be waiting takes a burst of new connections, so with a few long-lived keep-alive
clients (a load balancer, a benchmark) one worker can end up with most of them: its clients
wait on a busier model thread while the sibling idles, which shows up as a long p99. Each
worker publishes its open-connection count in its metrics file; before accepting, a worker that
already holds more connections than the least loaded live sibling steps back for a couple of
milliseconds so the sibling (woken for the same connection) takes it. If nobody else does
within `MAX_DEFER_S`, it accepts anyway: balance never costs availability.
"""
from __future__ import annotations

import asyncio
import errno
import logging
import socket
import time
from collections.abc import Callable

from .metrics import WorkerMetrics

log = logging.getLogger("mlgen.serve")
DEFER_S = 0.002
MAX_DEFER_S = 0.02
BURST = 64  # accepts per wake-up, so a flood of connects does not starve requests


class BalancedAcceptor:
    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket,
                 factory: Callable[[], asyncio.Protocol], open_connections: Callable[[], int],
                 metrics: WorkerMetrics, workers: int) -> None:
        self._loop = loop
        self._sock = sock
        self._factory = factory
        self._open_connections = open_connections
        self._metrics = metrics
        self._workers = workers
        self._setting_up = 0
        self._deferred_since: float | None = None
        self._reading = False
        self._closed = False

    def start(self) -> None:
        self._sock.setblocking(False)
        self._resume()

    def close(self) -> None:
        self._closed = True
        self._pause()

    def _resume(self) -> None:
        if not self._closed and not self._reading:
            self._loop.add_reader(self._sock.fileno(), self._on_readable)
            self._reading = True

    def _pause(self) -> None:
        if self._reading:
            self._loop.remove_reader(self._sock.fileno())
            self._reading = False

    def _step_back(self) -> bool:
        if self._workers < 2:
            return False
        siblings = self._metrics.sibling_connections()
        if not siblings or self._open_connections() + self._setting_up <= min(siblings):
            return False
        now = time.monotonic()
        if self._deferred_since is None:
            self._deferred_since = now
        return now - self._deferred_since < MAX_DEFER_S

    def _on_readable(self) -> None:
        for _ in range(BURST):
            if self._step_back():
                self._pause()
                self._loop.call_later(DEFER_S, self._resume)
                return
            try:
                conn, _ = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                return  # a sibling took it
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    log.error("cannot accept connections: %s; retrying in 100 ms", exc)
                    self._pause()
                    self._loop.call_later(0.1, self._resume)
                    return
                continue  # ECONNABORTED and friends: that client is gone
            self._deferred_since = None
            conn.setblocking(False)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._setting_up += 1
            task = self._loop.create_task(self._loop.connect_accepted_socket(self._factory, conn))
            task.add_done_callback(self._set_up)

    def _set_up(self, task: asyncio.Task[object]) -> None:
        self._setting_up -= 1
        if not task.cancelled() and task.exception() is not None:
            log.warning("could not set up an accepted connection: %s", task.exception())
