"""Process model of `mlgen serve`: a small supervisor that pre-forks workers on one socket.

The supervisor binds the listening socket once and forks `workers` processes that all accept
on it (the kernel hands each connection to one of them), so no port juggling and no
SO_REUSEPORT hashing imbalance with few long-lived client connections. Before any socket
exists it loads the model once (a missing or broken artifact ends the process with exit 2 and
one line naming the file) and the workers inherit it through the fork. It restarts a
worker that dies (with a back-off so a broken install does not spin), and on SIGTERM/SIGINT
forwards SIGTERM to the workers, which stop accepting, answer what is in flight, and exit;
stragglers are killed after the graceful timeout. Metrics live in a shared folder of
memory-mapped files (see metrics.py), so any worker can answer /metrics for all of them.
"""
from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from types import FrameType
from typing import Any

from mlgen.errors import UsageError

from .config import ServeConfig

log = logging.getLogger("mlgen.serve")


def _setup_logging() -> None:
    level = os.environ.get("LOG_LEVEL", "info").upper()
    logging.basicConfig(
        stream=sys.stderr, level=getattr(logging, level, logging.INFO),
        format="%(asctime)s %(levelname)s mlgen.serve[%(process)d] %(message)s", force=True,
    )


def bind_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


class ModelLoadError(UsageError):
    """The model artifact cannot be served at start-up (exit 2): missing, corrupt or unusable."""

    def __init__(self, reason: str) -> None:
        # One line whatever the unpickler said: this is what `kubectl logs` shows for the crash.
        super().__init__(" ".join(f"{reason}; the server did not start (the model path comes "
                                  "from --model or model.artifact in mlgen.yaml)".split()))


def load_startup_model(config: ServeConfig) -> tuple[Any, tuple[int, int, int] | None]:
    """Load (and warm up) the model once in the supervisor, before any socket exists.

    Fail-fast rather than serve 503 forever: the workers then inherit this model through
    fork (one load instead of one per worker, pages shared). The warm-up prediction runs with
    native thread pools limited to one thread, so no OpenMP/BLAS worker threads exist at fork
    time (libgomp's pool does not survive a fork).
    """
    if not config.model_path.exists():  # before the heavy imports: a typo fails in a blink
        raise ModelLoadError(f"model artifact {config.model_path} does not exist")
    _preload()
    from .model import ModelHolder

    holder = ModelHolder(config.model_path, config.numeric, config.categorical, config.task)
    signature = holder.signature()
    with _one_native_thread():
        model, reason = holder.load()
    if model is None:
        raise ModelLoadError(reason or f"model artifact {config.model_path} did not load")
    return model, signature


def _one_native_thread() -> AbstractContextManager[Any]:
    try:
        from threadpoolctl import threadpool_limits  # a scikit-learn dependency
    except ImportError:
        return nullcontext()
    limits: AbstractContextManager[Any] = threadpool_limits(limits=1)
    return limits


def serve(config: ServeConfig) -> int:
    """Run the server until SIGTERM/SIGINT; returns the process exit code."""
    _setup_logging()
    preloaded = load_startup_model(config)
    sock = bind_socket(config.host, config.port)
    port = sock.getsockname()[1]
    own_metrics_dir = config.metrics_dir is None
    metrics_dir = Path(tempfile.mkdtemp(prefix="mlgen-serve-metrics-")) if own_metrics_dir \
        else config.metrics_dir
    if metrics_dir is None:
        raise RuntimeError("no metrics folder")
    metrics_dir.mkdir(parents=True, exist_ok=True)
    for stale in metrics_dir.glob("worker-*.bin"):  # counters start at zero with the server
        stale.unlink()
    bound = config.host or "0.0.0.0"
    local = "127.0.0.1" if bound in ("0.0.0.0", "::") else bound
    log.info("listening on %s:%d (http://%s:%d) with %d worker(s); model %r from %s; "
             "metrics in %s", bound, port, local, port, config.workers, config.name,
             config.model_path, metrics_dir)
    supervisor = _Supervisor(config, sock, metrics_dir, preloaded)
    try:
        return supervisor.run()
    finally:
        sock.close()
        if own_metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)


class _Supervisor:
    def __init__(self, config: ServeConfig, sock: socket.socket, metrics_dir: Path,
                 preloaded: tuple[Any, tuple[int, int, int] | None]) -> None:
        self.config = config
        self.preloaded = preloaded  # (model, file signature): every worker starts with it
        self.sock = sock
        self.metrics_dir = metrics_dir
        self.children: dict[int, int] = {}  # pid -> slot
        self.started: dict[int, float] = {}  # slot -> start time
        self.failures: dict[int, int] = {}  # slot -> quick deaths in a row
        self.stopping = False

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGALRM, self._on_deadline)
        for slot in range(self.config.workers):
            self._spawn(slot)
        while self.children:
            try:
                pid, status = os.waitpid(-1, 0)
            except ChildProcessError:
                break
            if pid not in self.children:
                continue
            slot = self.children.pop(pid)
            code = os.waitstatus_to_exitcode(status)
            if self.stopping:
                log.info("worker %d (pid %d) stopped (exit %d)", slot, pid, code)
                continue
            quick = time.monotonic() - self.started.get(slot, 0.0) < 5.0
            self.failures[slot] = self.failures.get(slot, 0) + 1 if quick else 0
            delay = min(30.0, 0.5 * 2 ** self.failures[slot]) if quick else 0.0
            log.error("worker %d (pid %d) died (exit %d); restarting it in %.1f s",
                      slot, pid, code, delay)
            if delay:
                time.sleep(delay)
            if not self.stopping:
                self._spawn(slot)
        signal.alarm(0)
        log.info("stopped")
        return 0

    def _spawn(self, slot: int) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the worker: never return into the supervisor's code
            code = 1
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                signal.signal(signal.SIGALRM, signal.SIG_DFL)
                _die_with_parent()
                from .worker import run_worker
                code = run_worker(self.config, self.sock, slot, self.metrics_dir,
                                  self.preloaded)
            except BaseException:
                logging.getLogger("mlgen.serve").exception("worker %d crashed", slot)
            finally:
                logging.shutdown()
                os._exit(code)
        self.children[pid] = slot
        self.started[slot] = time.monotonic()

    def _on_stop(self, signum: int, frame: FrameType | None) -> None:
        if self.stopping:
            return
        self.stopping = True
        log.info("%s: draining in-flight requests (at most %.0f s)",
                 signal.Signals(signum).name, self.config.graceful_timeout_s)
        for pid in list(self.children):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        signal.alarm(int(self.config.graceful_timeout_s) + 5)

    def _on_deadline(self, signum: int, frame: FrameType | None) -> None:
        for pid in list(self.children):
            log.error("worker pid %d did not stop in time; killing it", pid)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _preload() -> None:
    """Import the heavy runtime once, before forking: workers start faster (on 2 cores, two
    workers importing scikit-learn at once take twice as long) and share those pages.

    BLAS is limited to one thread first, so no thread pool exists at fork time (forking a
    process with running threads is what makes preloading unsafe elsewhere).
    """
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    import importlib

    from . import app, model  # noqa: F401  (numpy, pandas, scikit-learn, joblib, httptools)

    # What a scaffolded pipeline unpickles; anything else loads in the worker as usual.
    for name in ("uvloop", "sklearn.pipeline", "sklearn.compose", "sklearn.impute",
                 "sklearn.preprocessing", "sklearn.linear_model"):
        try:
            importlib.import_module(name)
        except ImportError:
            pass


def _die_with_parent() -> None:
    """Linux: the kernel sends the worker SIGTERM if the supervisor dies (no orphans)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass

