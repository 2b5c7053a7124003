"""Shadow traffic: a champion mirrors its prediction requests to a shadow challenger.

Champion side (`config.shadow_url` set, from MLGEN_SHADOW_URL): after a /predict or infer
request has been answered, a copy of its body goes into a bounded queue; a few sender tasks on
the worker's own event loop post the copies to the shadow over keep-alive connections, each
with a short deadline. Nothing here can slow down or fail the champion's answer: the copy is
queued after the response is written, a full queue drops it (and counts the drop), and a
slow, failing or absent shadow only costs failed sends. The shadow's answer is compared with
the champion's predictions row by row (disagreements on /metrics) and then thrown away.

Shadow side: a request that carries `x-mlgen-shadow: 1` is a mirrored one. It is answered as
usual (the answer goes back to the champion, which discards it), logged under the request
log's `shadow/` folder (the drift job reads only the folder's own files, so the copies do not
count twice) with `"shadow": true`, and never mirrored again.

The outcome counters live in the worker's shared-memory metrics (metrics.py), so /metrics
reports them summed over workers, and `mlgen promote` reads them beside the shadow's own.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import urllib.parse
from dataclasses import dataclass, replace
from typing import Any

from mlgen.models import contract as c

from . import metrics as prom
from .config import ServeConfig
from .reqlog import RequestLogger

log = logging.getLogger("mlgen.serve")
QUEUE_REQUESTS = 256  # copies waiting per worker; more are dropped
QUEUE_BYTES = 8 * 1024 * 1024  # and at most this much body in the queue
SENDERS = 4  # concurrent keep-alive connections per worker to the shadow
TIMEOUT_S = 1.0  # connect, send and read one answer; a slower shadow counts as failed
MAX_ANSWER_BYTES = 4 * 1024 * 1024
# Regression: a shadow value further than this (relative to the champion's) disagrees.
REGRESSION_TOLERANCE = 0.05


class ShadowUrlError(ValueError):
    pass


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    prefix: str  # a path before the server's routes, without the trailing slash

    @classmethod
    def parse(cls, url: str) -> Target:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ShadowUrlError(f"shadow URL {url!r} must be http://HOST[:PORT] (in-cluster, "
                                 "plain HTTP)")
        try:
            port = parts.port or 80
        except ValueError as exc:
            raise ShadowUrlError(f"shadow URL {url!r}: {exc}") from None
        return cls(parts.hostname, port, parts.path.rstrip("/"))


@dataclass(frozen=True)
class Copy:
    path: str
    body: bytes
    request_id: str
    predictions: list[Any]
    classifier: bool


def is_shadow(raw: bytes | None) -> bool:
    return raw is not None and raw.strip() == b"1"


class Shadow:
    """Both roles of one worker: mirroring (with a shadow URL) and logging mirrored requests."""

    def __init__(self, config: ServeConfig, loop: asyncio.AbstractEventLoop,
                 metrics: prom.WorkerMetrics, reqlog: RequestLogger | None) -> None:
        self.loop = loop
        self.metrics = metrics
        self.target = Target.parse(config.shadow_url) if config.shadow_url else None
        self._infer = c.infer_path(config.name)  # versioned infer paths name the champion's
        self._queue: asyncio.Queue[Copy] = asyncio.Queue(QUEUE_REQUESTS)
        self._queued_bytes = 0
        self._senders: list[asyncio.Task[None]] = []
        self._reqlog = reqlog
        self._name = config.name
        self._log: RequestLogger | None = None

    @property
    def log(self) -> RequestLogger | None:
        """The log of mirrored requests: the request log's settings, in a folder of its own,
        created with the first mirrored request (a champion never has one)."""
        if self._log is None and self._reqlog is not None:
            folder = self._reqlog.config.path / c.SHADOW_LOG_DIR
            try:
                self._log = RequestLogger(replace(self._reqlog.config, path=folder),
                                          self._name, shadow=True)
            except OSError as exc:  # as for the main log: serving matters more
                log.error("shadow request log disabled: cannot use %s: %s", folder, exc)
                self._reqlog = None
        return self._log

    def mirror(self, path: str, body: bytes, request_id: str, predictions: list[Any],
               classifier: bool) -> None:
        """Queue a copy of an answered request (never raises, never waits)."""
        if self.target is None:
            return
        m = prom.LAYOUT
        if self._queue.full() or self._queued_bytes + len(body) > QUEUE_BYTES:
            self.metrics.add(m.shadow_dropped)
            return
        route = path if path == c.PREDICT_PATH else self._infer
        self._queue.put_nowait(Copy(route, body, request_id, predictions, classifier))
        self._queued_bytes += len(body)
        if not self._senders:
            self._senders = [self.loop.create_task(self._send_loop()) for _ in range(SENDERS)]

    async def _send_loop(self) -> None:
        streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        while True:
            copy = await self._queue.get()
            self._queued_bytes -= len(copy.body)
            for attempt in (1, 2):
                reused = streams is not None
                try:
                    if streams is None:
                        streams = await asyncio.wait_for(self._connect(), TIMEOUT_S)
                    status, answer, keep = await asyncio.wait_for(
                        self._exchange(streams, copy), TIMEOUT_S)
                except Exception as exc:  # noqa: BLE001 (refused, reset, timeout, garbled)
                    _close(streams)
                    streams = None
                    # A kept-alive connection the shadow closed meanwhile (its idle timeout,
                    # a replaced pod) fails before any answer: one more try on a fresh one.
                    if attempt == 1 and reused and isinstance(exc, EOFError | ConnectionError):
                        continue
                    self.metrics.add(prom.LAYOUT.shadow_failed)
                    log.debug("shadow: %s to %s failed: %r", copy.path, self.target, exc)
                    break
                self.metrics.add(prom.LAYOUT.shadow_sent)
                if not keep:
                    _close(streams)
                    streams = None
                if status == 200:
                    self._compare(copy, answer)
                break

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.target is None:
            raise OSError("no shadow")
        return await asyncio.open_connection(self.target.host, self.target.port,
                                             limit=64 * 1024)

    async def _exchange(self, streams: tuple[asyncio.StreamReader, asyncio.StreamWriter],
                        copy: Copy) -> tuple[int, bytes, bool]:
        reader, writer = streams
        target = self.target
        if target is None:
            raise OSError("no shadow")
        head = (f"POST {target.prefix}{copy.path} HTTP/1.1\r\nhost: {target.host}:{target.port}"
                f"\r\ncontent-type: application/json\r\ncontent-length: {len(copy.body)}\r\n"
                f"{c.SHADOW_HEADER}: 1\r\nx-request-id: {copy.request_id}\r\n\r\n")
        writer.write(head.encode("latin-1") + copy.body)
        await writer.drain()
        status_line = await reader.readuntil(b"\r\n")
        parts = status_line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
            raise ValueError(f"not an HTTP answer: {status_line[:80]!r}")
        status, length, keep = int(parts[1]), -1, True
        while True:
            line = await reader.readuntil(b"\r\n")
            if line == b"\r\n":
                break
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                keep = False
        if not 0 <= length <= MAX_ANSWER_BYTES:
            raise ValueError(f"answer without a usable content-length ({length})")
        return status, await reader.readexactly(length), keep

    def _compare(self, copy: Copy, answer: bytes) -> None:
        try:
            theirs = _predictions(json.loads(answer))
        except (ValueError, TypeError, KeyError):
            return
        ours = copy.predictions
        if theirs is None or len(theirs) != len(ours):
            return
        m = prom.LAYOUT
        disagree, spread = 0, 0.0
        for a, b in zip(ours, theirs):
            if copy.classifier:
                disagree += str(a) != str(b)
                continue
            try:
                diff = abs(float(b) - float(a))
            except (TypeError, ValueError):
                disagree += 1
                continue
            if math.isnan(diff):
                disagree += 1
                continue
            spread += diff
            disagree += diff > REGRESSION_TOLERANCE * abs(float(a))
        self.metrics.add(m.shadow_compared_rows, len(ours))
        self.metrics.add(m.shadow_disagreeing_rows, disagree)
        if spread:
            self.metrics.add(m.shadow_abs_difference, spread)

    def flush(self) -> None:
        if self._log is not None:
            self._log.flush()

    def close(self) -> None:
        for task in self._senders:
            task.cancel()
        if self._log is not None:
            self._log.close()


def _predictions(doc: Any) -> list[Any] | None:
    """The predicted values of a /predict or V2 infer answer."""
    if "predictions" in doc:
        return list(doc["predictions"])
    for output in doc.get("outputs", ()):
        if output.get("name") == "predict":
            return list(output["data"])
    return None


def _close(streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None) -> None:
    if streams is not None:
        with contextlib.suppress(Exception):
            streams[1].close()
