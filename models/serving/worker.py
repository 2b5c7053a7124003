"""One worker process: an event loop serving the app on the inherited socket until SIGTERM."""
from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

from .config import ServeConfig

log = logging.getLogger("mlgen.serve")
REQUEST_LOG_FLUSH_S = 1.0
SWEEP_S = 5.0


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # uvloop is optional (not on Windows): plain asyncio still works
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def run_worker(config: ServeConfig, sock: socket.socket, slot: int, metrics_dir: Path,
               preloaded: tuple[Any, Any]) -> int:
    """Serve until SIGTERM. `preloaded` is the supervisor's (model, file signature): the worker
    starts with that model, so it is never without one."""
    # One thread of BLAS per worker: the workers already use every core between them.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    from mlgen.errors import require_extra

    require_extra("httptools", "runtime", "mlgen serve")
    require_extra("sklearn", "runtime", "mlgen serve")
    from . import metrics as prom
    from .accept import BalancedAcceptor
    from .app import App
    from .protocol import HttpConnection
    from .reqlog import RequestLogger

    # The loop thread and the model thread share the GIL: a shorter switch interval (default
    # 5 ms) lets the loop answer between slices of a model call, which shortens the tail.
    sys.setswitchinterval(float(os.environ.get("MLGEN_SERVE_SWITCH_INTERVAL", "0.001")))
    loop = _new_loop()
    asyncio.set_event_loop(loop)
    reqlog = None
    if config.request_log is not None and config.request_log.sample_rate > 0:
        try:
            reqlog = RequestLogger(config.request_log, config.name)
        except OSError as exc:  # logging is for drift checks; serving matters more
            log.error("request log disabled: cannot use %s: %s", config.request_log.path, exc)
    app = App(config, loop, metrics_dir, slot, reqlog)
    # The supervisor's model first; then, still before accepting, the file is checked again:
    # a worker restarted after a crash picks up a model swapped in since the start, and keeps
    # the inherited one if what is there now is missing or broken.
    model, signature = preloaded
    _installed(app, prom, model, None, signature)
    _check_model(app, prom)
    acceptor = BalancedAcceptor(loop, sock, lambda: HttpConnection(app),
                                lambda: len(app.connections), app.metrics, config.workers)
    acceptor.start()
    stop: asyncio.Future[str] = loop.create_future()

    def request_stop(reason: str) -> None:
        if not stop.done():
            stop.set_result(reason)

    loop.add_signal_handler(signal.SIGTERM, request_stop, "SIGTERM")
    loop.add_signal_handler(signal.SIGINT, request_stop, "SIGINT")

    async def watch_model() -> None:
        holder = app.holder
        while True:
            await asyncio.sleep(config.poll_interval_s)
            if holder.changed():
                signature = holder.signature()
                model, reason = await loop.run_in_executor(None, holder.load)
                _installed(app, prom, model, reason, signature)

    async def housekeeping() -> None:
        parent = os.getppid()
        ticks = 0
        while True:
            await asyncio.sleep(REQUEST_LOG_FLUSH_S)
            ticks += 1
            if reqlog is not None:
                reqlog.flush()
            app.shadow.flush()
            app.metrics.set(prom.LAYOUT.inflight, float(max(app.inflight, 0)))
            if ticks % int(SWEEP_S / REQUEST_LOG_FLUSH_S) == 0:
                app.sweep_idle()
            if os.getppid() != parent:
                request_stop("supervisor gone")

    tasks = [loop.create_task(watch_model()), loop.create_task(housekeeping())]
    # Everything allocated so far (modules, the model) lives as long as the process: freezing
    # it keeps the cyclic GC's full passes, which stall every request, short.
    gc.collect()
    gc.freeze()
    log.info("worker %d ready to accept connections", slot)
    reason = loop.run_until_complete(stop)

    # Graceful shutdown: no new connections, readiness 503, answer what is in flight, leave.
    acceptor.close()
    drained = app.begin_drain()
    log.info("worker %d: %s, draining %d in-flight request(s)", slot, reason, app.inflight)
    try:
        loop.run_until_complete(asyncio.wait_for(drained, config.graceful_timeout_s))
    except TimeoutError:
        log.error("worker %d: %d request(s) still in flight after %.0f s; closing anyway",
                  slot, app.inflight, config.graceful_timeout_s)
    for conn in list(app.connections):
        conn.close()
    for task in tasks:
        task.cancel()
    app.shadow.close()  # copies still queued for the shadow are dropped with the worker
    app.model_thread.shutdown(wait=False, cancel_futures=True)
    loop.run_until_complete(asyncio.sleep(0.05))  # let transports flush and close
    if reqlog is not None:
        reqlog.close()
    app.metrics.close()
    loop.close()
    log.info("worker %d stopped", slot)
    return 0


def _check_model(app: Any, prom: Any) -> None:
    holder = app.holder
    if holder.changed():
        signature = holder.signature()
        model, reason = holder.load()
        _installed(app, prom, model, reason, signature)


def _installed(app: Any, prom: Any, model: Any, reason: str | None, signature: Any) -> None:
    app.holder.install(model, reason, signature)
    app.metrics.add(prom.LAYOUT.loads if model else prom.LAYOUT.load_failures)
    app.metrics.set(prom.LAYOUT.ready, 1.0 if app.ready else 0.0)
