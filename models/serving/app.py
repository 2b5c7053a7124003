"""Routes of one worker: V2 (Open Inference Protocol), /predict, health, metrics.

Everything answers from plain callbacks (no task per request): validation runs as the
request completes, prediction runs in the micro-batcher, and the batcher's callback writes
the response.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from mlgen.models import contract as c

from . import metrics as prom
from .batcher import MicroBatcher
from .config import ServeConfig
from .feedback import LabelWriter, parse_feedback
from .ids import request_id, row_ids
from .model import LoadedModel, ModelHolder, Prediction, configure_sklearn
from .protocol import HttpConnection, Request
from .reqlog import RequestLogger
from .schema import InputError, model_metadata, parse_records, parse_v2, v2_datatype
from .shadow import Shadow, is_shadow

MODEL_ROUTE = c.model_path("{name}")  # the metrics label of every /v2/models/<name>/... route
INFER_ROUTE = c.infer_path("{name}")
log = logging.getLogger("mlgen.serve")
PROTOCOL_VERSION = "2"
_JSON = json.JSONEncoder(separators=(",", ":"))
_METRICS_TYPE = b"text/plain; version=0.0.4; charset=utf-8"


def _dumps(obj: Any) -> bytes:
    return _JSON.encode(obj).encode()


class App:
    def __init__(self, config: ServeConfig, loop: asyncio.AbstractEventLoop, metrics_dir: Path,
                 slot: int, reqlog: RequestLogger | None) -> None:
        self.config = config
        self.loop = loop
        self.metrics_dir = metrics_dir
        self.metrics = prom.WorkerMetrics(metrics_dir, slot, config.workers)
        self.holder = ModelHolder(config.model_path, config.numeric, config.categorical,
                                  config.task)
        self.reqlog = reqlog
        # Labels go beside the request log, which is where `mlgen monitor` looks for them.
        self.labels = LabelWriter(reqlog.folder) if reqlog is not None else None
        self.shadow = Shadow(config, loop, self.metrics, reqlog)  # mirrors, or logs mirrored
        self.max_body_bytes = config.max_body_bytes
        self.draining = False
        self.connections: set[HttpConnection] = set()
        self.inflight = 0
        self._idle = 0
        self._drained: asyncio.Future[None] | None = None
        # One thread for model calls (see batcher.py); sklearn's config is per thread.
        self.model_thread = ThreadPoolExecutor(1, thread_name_prefix="model",
                                               initializer=configure_sklearn)
        self.batcher = MicroBatcher(loop, self._compute, self._finish, config.max_batch_size,
                                    config.max_wait_ms / 1000.0, lambda: self._idle,
                                    self.model_thread)
        self._model_prefix = c.model_path(config.name)

    # --- connection bookkeeping (for lingering batches, keep-alive sweeps and draining)
    def connection_opened(self, conn: HttpConnection) -> None:
        self.connections.add(conn)
        self._idle += 1
        self.metrics.set(prom.LAYOUT.connections, len(self.connections))
        if self.draining:
            conn.close()

    def connection_closed(self, conn: HttpConnection) -> None:
        # Requests still in the batcher are answered into the void, which keeps `inflight` right.
        if conn in self.connections:
            self.connections.discard(conn)
            self.metrics.set(prom.LAYOUT.connections, len(self.connections))
            if conn.idle:
                self._idle -= 1

    def connection_busy(self, conn: HttpConnection, busy: bool) -> None:
        if conn not in self.connections:
            return
        self._idle += -1 if busy else 1
        if not busy and self.draining:
            conn.close()

    @property
    def ready(self) -> bool:
        return self.holder.model is not None and not self.draining

    # --- requests
    def dispatch(self, conn: HttpConnection, req: Request) -> None:
        self.inflight += 1
        path, method = req.path, req.method
        try:
            if path == c.PREDICT_PATH:
                req.route = c.PREDICT_PATH
                if method != "POST":
                    return self._not_allowed(conn, req, b"POST")
                return self._predict(conn, req)
            model_rest = path[len(self._model_prefix):]
            if path.startswith(self._model_prefix) and model_rest[:1] in ("", "/"):
                return self._model_route(conn, req, path[len(self._model_prefix):])
            if path == c.LIVE_PATH:
                req.route = path
                if method != "GET":
                    return self._not_allowed(conn, req, b"GET")
                return conn.respond(req, 200, b'{"live":true}')
            if path == c.READY_PATH:
                req.route = path
                if method != "GET":
                    return self._not_allowed(conn, req, b"GET")
                return self._readiness(conn, req, {})
            if path == c.METRICS_PATH:
                req.route = path
                if method != "GET":
                    return self._not_allowed(conn, req, b"GET")
                return self._metrics(conn, req)
            if path in (c.SERVER_METADATA_PATH, c.SERVER_METADATA_PATH + "/"):
                req.route = c.SERVER_METADATA_PATH
                return conn.respond(req, 200, _dumps(
                    {"name": "mlgen", "version": _version(), "extensions": []}))
            if path.startswith(c.model_path("")):
                req.route = c.model_path("{name}")
                name = path[len(c.model_path("")):].split("/", 1)[0]
                return self.error(conn, req, 404, f"model {name!r} not found; this server serves "
                                                  f"{self.config.name!r}")
            self.error(conn, req, 404, f"no route {path}")
        except Exception as exc:
            log.exception("internal error on %s %s", method, path)
            if req.out is None:
                self.error(conn, req, 500, f"internal error: {type(exc).__name__}")

    def _model_route(self, conn: HttpConnection, req: Request, rest: str) -> None:
        model = self.holder.model
        if rest.startswith("/versions/"):  # /versions/{v}[/ready|/infer]: only the loaded one
            version, _, tail = rest[len("/versions/"):].partition("/")
            if model is None or version != model.version:
                req.route = MODEL_ROUTE
                return self.error(conn, req, 404, f"version {version!r} is not loaded")
            rest = "/" + tail if tail else ""
        if rest in ("", "/"):
            req.route = MODEL_ROUTE
            if req.method != "GET":
                return self._not_allowed(conn, req, b"GET")
            return conn.respond(req, 200, _dumps(model_metadata(self.config, model)))
        if rest == "/ready":
            req.route = c.model_ready_path("{name}")
            if req.method != "GET":
                return self._not_allowed(conn, req, b"GET")
            return self._readiness(conn, req, {"name": self.config.name})
        if rest == "/infer":
            req.route = INFER_ROUTE
            if req.method != "POST":
                return self._not_allowed(conn, req, b"POST")
            return self._infer(conn, req)
        if rest == "/feedback":
            req.route = c.feedback_path("{name}")
            if req.method != "POST":
                return self._not_allowed(conn, req, b"POST")
            return self._feedback(conn, req)
        req.route = MODEL_ROUTE
        self.error(conn, req, 404, f"no route {req.path}")

    def _readiness(self, conn: HttpConnection, req: Request, extra: dict[str, Any]) -> None:
        if self.ready:
            return conn.respond(req, 200, _dumps({**extra, "ready": True}))
        reason = "shutting down" if self.draining else self.holder.reason
        conn.respond(req, 503, _dumps({**extra, "ready": False, "reason": reason}))

    def _body_json(self, req: Request) -> Any:
        try:
            return json.loads(req.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InputError(400, f"malformed JSON: {exc}") from None

    def _predict(self, conn: HttpConnection, req: Request) -> None:
        try:
            cols = parse_records(self._body_json(req), self.config.numeric, self.config.categorical)
        except InputError as exc:
            return conn.respond(req, exc.status, _dumps(exc.body()))
        if self.holder.model is None:
            return self.error(conn, req, 503, f"model not ready: {self.holder.reason}")

        def done(result: tuple[LoadedModel, Prediction] | None, exc: BaseException | None) -> None:
            if result is None:
                return self._predict_failed(conn, req, exc)
            model, p = result
            ids = self._log(req, cols.data, cols.rows, model, p, rid)
            out: dict[str, Any] = {"model_name": self.config.name, "model_version": model.version,
                                   "id": rid, "predictions": p.predictions}
            if cols.rows > 1:
                out["ids"] = ids
            if p.probabilities is not None:
                out["probabilities"] = p.probabilities
                out["classes"] = list(model.classes or ())
            conn.respond(req, 200, _dumps(out), extra=_id_header(rid))
            self._mirror(req, rid, model, p)

        rid = request_id(req.request_id)

        self.batcher.submit(cols.data, cols.rows, done)

    def _infer(self, conn: HttpConnection, req: Request) -> None:
        model = self.holder.model
        classifier = model.classifier if model else self.config.task != "regression"
        try:
            v2 = parse_v2(self._body_json(req), self.config.numeric, self.config.categorical,
                          classifier)
        except InputError as exc:
            return conn.respond(req, exc.status, _dumps(exc.body()))
        if model is None:
            return self.error(conn, req, 503, f"model not ready: {self.holder.reason}")

        def done(result: tuple[LoadedModel, Prediction] | None, exc: BaseException | None) -> None:
            if result is None:
                return self._predict_failed(conn, req, exc)
            model, p = result
            ids = self._log(req, v2.columns.data, v2.columns.rows, model, p, rid)
            wanted = v2.outputs or (("predict", "predict_proba") if p.probabilities is not None
                                    else ("predict",))
            outputs = []
            n = len(p.predictions)
            for name in wanted:
                if name == "predict":
                    outputs.append({"name": "predict", "datatype": v2_datatype(p.predictions),
                                    "shape": [n, 1], "parameters": {"content_type": "np"},
                                    "data": p.predictions})
                elif p.probabilities is not None:
                    width = len(p.probabilities[0]) if p.probabilities else 0
                    outputs.append({"name": "predict_proba", "datatype": "FP64",
                                    "shape": [n, width],
                                    "parameters": {"content_type": "np"},
                                    "data": [x for row in p.probabilities for x in row]})
            conn.respond(req, 200, _dumps({
                "model_name": self.config.name, "model_version": model.version,
                "id": rid, "parameters": {"ids": ids} if v2.columns.rows > 1 else {},
                "outputs": outputs}), extra=_id_header(rid))
            self._mirror(req, rid, model, p)

        rid = request_id(v2.request_id or req.request_id)  # the body's id wins, as V2 says
        self.batcher.submit(v2.columns.data, v2.columns.rows, done)

    def _compute(self, columns: dict[str, list[Any]], rows: int) -> tuple[LoadedModel, Prediction]:
        """On the model thread: only the model call, nothing that touches shared state."""
        model = self.holder.model
        if model is None:
            raise RuntimeError("model not ready")
        return model, ModelHolder.predict(model, columns, rows)

    def _finish(self, columns: dict[str, list[Any]], rows: int, sizes: list[int],
                computed: tuple[LoadedModel, Prediction]) -> list[tuple[LoadedModel, Prediction]]:
        """Back on the loop: metrics, the request log, and one result per request."""
        model, p = computed
        m = self.metrics
        m.batch(rows)
        m.predictions(p.class_indexes, p.scores if model.classifier else None,
                      None if model.classifier else p.scores)
        if len(sizes) == 1:
            return [(model, p)]
        out, start = [], 0
        for n in sizes:
            end = start + n
            out.append((model, Prediction(
                p.predictions[start:end],
                p.probabilities[start:end] if p.probabilities is not None else None,
                None, p.scores[start:end] if p.scores is not None else None)))
            start = end
        return out

    def _log(self, req: Request, columns: dict[str, list[Any]], rows: int, model: LoadedModel,
             p: Prediction, rid: str) -> list[str]:
        """Row ids of one request, and the sampled rows written to the request log (a mirrored
        request's to the shadow log, where no label joins them)."""
        ids = row_ids(rid, rows)
        mirrored = is_shadow(req.shadow)
        reqlog = self.shadow.log if mirrored else self.reqlog
        if reqlog is not None:
            binary = model.classifier and len(model.classes or ()) == 2
            logged = reqlog.sample(columns, rows, p.predictions, ids,
                                   p.scores if binary else None)
            if logged:
                self.metrics.add(prom.LAYOUT.logged_rows, len(logged))
                if self.labels is not None and not mirrored:
                    for one in logged:
                        self.labels.logged.add(one)
                if reqlog.needs_flush:
                    reqlog.flush()
        return ids

    def _mirror(self, req: Request, rid: str, model: LoadedModel, p: Prediction) -> None:
        """After the answer is written: a copy for the shadow, unless this is one already."""
        if not is_shadow(req.shadow):
            self.shadow.mirror(req.path, req.body, rid, p.predictions, model.classifier)

    def _feedback(self, conn: HttpConnection, req: Request) -> None:
        try:
            labels = parse_feedback(self._body_json(req))
        except InputError as exc:
            return conn.respond(req, exc.status, _dumps(exc.body()))
        if self.labels is None:
            return self.error(conn, req, 409, "the request log is off (serve.request_log."
                                              "sample_rate 0): labels have nothing to join")
        try:
            counts = self.labels.append(labels)
        except OSError as exc:
            return self.error(conn, req, 503, f"cannot write labels: {exc}")
        conn.respond(req, 200, _dumps(counts))

    def _predict_failed(self, conn: HttpConnection, req: Request,
                        exc: BaseException | None) -> None:
        log.error("prediction failed on %s: %s: %s", req.path, type(exc).__name__, exc)
        self.error(conn, req, 500, f"prediction failed: {type(exc).__name__}: {exc}")

    def _metrics(self, conn: HttpConnection, req: Request) -> None:
        model = self.holder.model
        task = (("classification" if model.classifier else "regression") if model
                else self.config.task)
        classes = [str(c) for c in model.classes] if model and model.classes else None
        text = prom.render(self.metrics_dir, self.config.name, model.version if model else None,
                           task, classes, self.config.workers)
        log = self.config.request_log
        text += prom.monitor_text(log.path if log else None)
        conn.respond(req, 200, text.encode(), _METRICS_TYPE)

    def _not_allowed(self, conn: HttpConnection, req: Request, allow: bytes) -> None:
        conn.respond(req, 405, _dumps({"error": f"method {req.method} not allowed on {req.path}"}),
                     extra=b"allow: " + allow + b"\r\n")

    def error(self, conn: HttpConnection, req: Request, status: int, message: str) -> None:
        if not req.method:  # a parse error or 413 before the request was complete
            self.inflight += 1
        conn.respond(req, status, _dumps({"error": message}))

    def refuse_too_large(self, conn: HttpConnection, req: Request) -> None:
        req.route = (c.PREDICT_PATH if req.path == c.PREDICT_PATH else
                     INFER_ROUTE if req.path.endswith("/infer") else "other")
        self.error(conn, req, 413, f"request body larger than {self.max_body_bytes} bytes "
                                   "(raise --max-body-bytes)")

    def request_done(self, req: Request) -> None:
        self.inflight -= 1
        self.metrics.request(req.route, req.status, time.perf_counter() - req.start)
        self._check_drained()

    # --- lifecycle
    def begin_drain(self) -> asyncio.Future[None]:
        self.draining = True
        self.metrics.set(prom.LAYOUT.ready, 0.0)
        for conn in list(self.connections):
            if conn.idle:
                conn.close()
        self._drained = self.loop.create_future()
        self._check_drained()
        return self._drained

    def _check_drained(self) -> None:
        if self._drained is not None and self.inflight <= 0 and not self._drained.done():
            self._drained.set_result(None)

    def sweep_idle(self) -> None:
        """Close keep-alive connections idle for longer than the keep-alive timeout."""
        limit = time.monotonic() - self.config.keepalive_timeout_s
        for conn in list(self.connections):
            if conn.idle and conn.last_active < limit:
                conn.close()


def _id_header(rid: str) -> bytes:
    return b"x-request-id: " + rid.encode("ascii") + b"\r\n"


def _version() -> str:
    try:
        from mlgen import __version__
        return __version__
    except ImportError:  # pragma: no cover
        return "unknown"
