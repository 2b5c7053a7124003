"""A minimal HTTP/1.1 server protocol on httptools (the parser uvicorn uses), no framework.

One instance per connection. It parses, enforces the body limit as early as possible (from
Content-Length, before reading the body; answers `Expect: 100-continue`), hands complete
requests to the app, and writes responses in request order even when a client pipelines.
"""
from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import TYPE_CHECKING

import httptools

if TYPE_CHECKING:
    from .app import App

REASONS = {100: "Continue", 200: "OK", 400: "Bad Request", 404: "Not Found",
           405: "Method Not Allowed", 408: "Request Timeout", 413: "Content Too Large",
           422: "Unprocessable Content", 500: "Internal Server Error", 503: "Service Unavailable"}
MAX_PIPELINED = 32  # stop reading from a client that queues more than this


class Request:
    __slots__ = ("body", "keep_alive", "method", "out", "path", "request_id", "route", "shadow",
                 "start", "status")

    def __init__(self, method: str, path: str, body: bytes, start: float, keep_alive: bool) -> None:
        self.method = method
        self.path = path
        self.body = body
        self.start = start
        self.keep_alive = keep_alive
        self.route = "other"
        self.out: bytes | None = None
        self.status = 0
        self.request_id: bytes | None = None  # the raw X-Request-ID header, checked by the app
        self.shadow: bytes | None = None  # the raw x-mlgen-shadow header (a mirrored request)


class HttpConnection(asyncio.Protocol):
    def __init__(self, app: App) -> None:
        self.app = app
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.pending: deque[Request] = deque()
        self.closing = False
        self.paused = False
        self.last_active = time.monotonic()
        self._url = b""
        self._body: list[bytes] = []
        self._size = 0
        self._start = 0.0
        self._expect_continue = False
        self._content_length = -1
        self._request_id: bytes | None = None
        self._shadow: bytes | None = None
        self._parsing = False
        self._stopped = False  # after a 413 or a parse error: read nothing more
        self._busy = False  # as last reported to the app (which counts idle connections)

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.app.connection_opened(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.app.connection_closed(self)

    def data_received(self, data: bytes) -> None:
        if self.closing or self._stopped:
            return
        self.last_active = time.monotonic()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(400, "protocol upgrades are not supported")
        except httptools.HttpParserError as exc:
            self._fail(400, f"malformed HTTP request: {exc}")

    # httptools callbacks
    def on_message_begin(self) -> None:
        self._url = b""
        self._body = []
        self._size = 0
        self._start = time.perf_counter()
        self._expect_continue = False
        self._content_length = -1
        self._request_id = None
        self._shadow = None
        self._parsing = True
        if not self._busy:  # pipelined requests do not count twice
            self._busy = True
            self.app.connection_busy(self, True)

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        lname = name.lower()
        if lname == b"content-length":
            try:
                self._content_length = int(value)
            except ValueError:
                self._content_length = -1
        elif lname == b"x-request-id":
            self._request_id = value[:256]
        elif lname == b"x-mlgen-shadow":
            self._shadow = value[:8]
        elif lname == b"expect" and value.lower() == b"100-continue":
            self._expect_continue = True

    def on_headers_complete(self) -> None:
        if self._content_length > self.app.max_body_bytes:
            self._too_large()
        elif self._expect_continue and self.transport is not None:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        if self._stopped:
            return
        self._size += len(body)
        if self._size > self.app.max_body_bytes:  # chunked bodies have no Content-Length
            self._too_large()
            return
        self._body.append(body)

    def on_message_complete(self) -> None:
        if self._stopped:
            return
        self._parsing = False
        url = self._url
        q = url.find(b"?")
        path = (url[:q] if q >= 0 else url).decode("latin-1")
        request = Request(self.parser.get_method().decode("latin-1"), path, b"".join(self._body),
                          self._start, self.parser.should_keep_alive())
        request.request_id = self._request_id
        request.shadow = self._shadow
        self.pending.append(request)
        if len(self.pending) > MAX_PIPELINED and self.transport is not None and not self.paused:
            self.paused = True
            self.transport.pause_reading()
        self.app.dispatch(self, request)

    # responses
    def respond(self, request: Request, status: int, body: bytes,
                content_type: bytes = b"application/json", extra: bytes = b"") -> None:
        request.status = status
        keep = request.keep_alive and not self.app.draining
        if not keep:
            request.keep_alive = False
        request.out = b"".join((
            b"HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %d\r\n"
            % (status, REASONS.get(status, "Unknown").encode(), content_type, len(body)),
            extra,
            b"" if keep else b"connection: close\r\n",
            b"\r\n", body,
        ))
        self.app.request_done(request)
        self._write_ready()

    def _write_ready(self) -> None:
        transport = self.transport
        while self.pending and self.pending[0].out is not None:
            request = self.pending.popleft()
            if transport is None or self.closing:
                continue
            transport.write(request.out)  # type: ignore[arg-type]
            if not request.keep_alive:
                self.closing = True
                transport.close()
        self.last_active = time.monotonic()
        if self.paused and len(self.pending) <= MAX_PIPELINED // 2 and transport is not None:
            self.paused = False
            transport.resume_reading()
        if not self.pending and not self._parsing and self._busy:
            self._busy = False
            self.app.connection_busy(self, False)

    def _too_large(self) -> None:
        """Answer 413 at once and close: reading a huge body only to refuse it wastes the worker."""
        self._parsing = False
        self._stopped = True
        url = self._url.split(b"?", 1)[0].decode("latin-1")
        request = Request("", url, b"", self._start, False)
        self.pending.append(request)
        self.app.refuse_too_large(self, request)

    def _fail(self, status: int, message: str) -> None:
        self._parsing = False
        self._stopped = True
        request = Request("", "", b"", self._start or time.perf_counter(), False)
        self.pending.append(request)
        self.app.error(self, request, status, message)

    @property
    def idle(self) -> bool:
        return not self._busy

    def close(self) -> None:
        if self.transport is not None and not self.closing:
            self.closing = True
            self.transport.close()
