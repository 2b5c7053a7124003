"""Prometheus metrics that stay correct with several worker processes.

Each worker owns one small file in a shared folder (`worker-<slot>.bin`), memory-mapped and
viewed as an array of float64 slots at fixed offsets (the same layout in every worker). A
worker only ever writes its own file, one aligned 8-byte store per update, so there is no
lock on the hot path; whichever worker answers `/metrics` maps every file and sums them. A
restarted worker reopens its slot's file and keeps counting from where the old one stopped,
so counters never go backwards. Label values are fixed lists (routes, status codes, class
indexes) so that the layout never has to change while the server runs.
"""
from __future__ import annotations

import bisect
import math
import mmap
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mlgen.models import contract as c

ROUTES = (
    c.LIVE_PATH, c.READY_PATH, c.SERVER_METADATA_PATH, c.model_path("{name}"),
    c.model_ready_path("{name}"), c.infer_path("{name}"), c.feedback_path("{name}"), c.PREDICT_PATH,
    c.METRICS_PATH, "other",
)
STATUSES = (200, 400, 404, 405, 408, 413, 422, 500, 503)
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
SCORE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
# Regression outputs have no known scale: a symmetric log scale covers most targets usefully.
VALUE_BUCKETS = tuple(
    sorted({-(10.0 ** e) for e in range(-2, 7)} | {0.0} | {10.0 ** e for e in range(-2, 7)})
)
MAX_CLASSES = 64  # class index >= this is counted under "other"


class _Layout:
    """Offsets of every series inside a worker's array; identical in every process."""

    def __init__(self) -> None:
        self.size = 0
        self.requests = self._take(len(ROUTES) * len(STATUSES))
        self.latency = [
            self._take(len(LATENCY_BUCKETS) + 3) for _ in ROUTES
        ]  # buckets,+Inf,sum,count
        self.batch = self._take(len(BATCH_BUCKETS) + 3)
        self.score = self._take(len(SCORE_BUCKETS) + 3)
        self.value = self._take(len(VALUE_BUCKETS) + 3)
        self.classes = self._take(MAX_CLASSES + 1)
        self.rows = self._take(1)
        self.logged_rows = self._take(1)
        self.load_failures = self._take(1)
        self.loads = self._take(1)
        self.ready = self._take(1)
        self.inflight = self._take(1)
        self.alive = self._take(1)
        self.connections = self._take(1)
        # Shadow mirroring (shadow.py), counted by the champion that mirrors.
        self.shadow_sent = self._take(1)
        self.shadow_dropped = self._take(1)
        self.shadow_failed = self._take(1)
        self.shadow_compared_rows = self._take(1)
        self.shadow_disagreeing_rows = self._take(1)
        self.shadow_abs_difference = self._take(1)

    def _take(self, n: int) -> int:
        start = self.size
        self.size += n
        return start


LAYOUT = _Layout()
_ROUTE_INDEX = {r: i for i, r in enumerate(ROUTES)}
_STATUS_INDEX = {s: i for i, s in enumerate(STATUSES)}


def _open(path: Path) -> tuple[mmap.mmap, Any]:
    nbytes = LAYOUT.size * 8
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if os.fstat(fd).st_size != nbytes:
            os.ftruncate(fd, nbytes)
        mm = mmap.mmap(fd, nbytes)
    finally:
        os.close(fd)
    return mm, memoryview(mm).cast("d")


class WorkerMetrics:
    """The hot-path side: increments into this worker's own mapped file."""

    values: Any  # a float64 memoryview over the mapped file (typeshed types items as int)

    def __init__(self, folder: Path, slot: int, workers: int = 1) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self._mm, self.values = _open(folder / f"worker-{slot}.bin")
        self.values[LAYOUT.alive] = 1.0
        self.values[LAYOUT.connections] = 0.0
        self._folder = folder
        self._slot = slot
        self._workers = workers
        self._siblings: dict[Path, tuple[mmap.mmap, Any]] = {}

    def request(self, route: str, status: int, seconds: float) -> None:
        r = _ROUTE_INDEX.get(route, len(ROUTES) - 1)
        s = _STATUS_INDEX.get(status)
        v = self.values
        if s is not None:
            v[LAYOUT.requests + r * len(STATUSES) + s] += 1.0
        self._observe(LAYOUT.latency[r], LATENCY_BUCKETS, seconds)

    def batch(self, rows: int) -> None:
        self._observe(LAYOUT.batch, BATCH_BUCKETS, rows)
        self.values[LAYOUT.rows] += rows

    def predictions(self, class_indexes: Sequence[int] | None, scores: Sequence[float] | None,
                    values: Sequence[float] | None) -> None:
        v = self.values
        if class_indexes is not None:
            for c in class_indexes:
                v[LAYOUT.classes + min(c, MAX_CLASSES)] += 1.0
        for x in scores or ():
            self._observe(LAYOUT.score, SCORE_BUCKETS, x)
        for x in values or ():
            self._observe(LAYOUT.value, VALUE_BUCKETS, x)

    def add(self, offset: int, amount: float = 1.0) -> None:
        self.values[offset] += amount

    def set(self, offset: int, value: float) -> None:
        self.values[offset] = value

    def _observe(self, base: int, bounds: Sequence[float], x: float) -> None:
        v = self.values
        if not math.isnan(x):  # a NaN prediction would poison _sum forever
            v[base + bisect.bisect_left(bounds, x)] += 1.0
            v[base + len(bounds) + 1] += x
            v[base + len(bounds) + 2] += 1.0

    def sibling_connections(self) -> list[float]:
        """Open connections of the other live workers (for balancing accepts)."""
        out = []
        if len(self._siblings) < self._workers - 1:  # map the siblings' files once they exist
            for path in self._folder.glob("worker-*.bin"):
                if path.name != f"worker-{self._slot}.bin" and path not in self._siblings:
                    try:
                        if path.stat().st_size == LAYOUT.size * 8:
                            self._siblings[path] = _open(path)
                    except OSError:
                        continue
        for _, view in self._siblings.values():
            if view[LAYOUT.alive]:
                out.append(view[LAYOUT.connections])
        return out

    def close(self) -> None:
        for mm, view in self._siblings.values():
            view.release()
            mm.close()
        self._siblings.clear()
        self.values[LAYOUT.connections] = 0.0
        self.values[LAYOUT.alive] = 0.0
        self.values[LAYOUT.ready] = 0.0
        self.values[LAYOUT.inflight] = 0.0
        self.values.release()
        self._mm.close()


def read_totals(folder: Path) -> list[float]:
    """Sum of every worker's array (what /metrics reports)."""
    total = [0.0] * LAYOUT.size
    for path in sorted(folder.glob("worker-*.bin")):
        try:
            if path.stat().st_size != LAYOUT.size * 8:
                continue
            mm, view = _open(path)
        except OSError:
            continue
        try:
            values = view.tolist()
        finally:
            view.release()
            mm.close()
        for i, x in enumerate(values):
            total[i] += x
    return total


def _esc(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _fmt(x: float) -> str:
    return str(int(x)) if x == int(x) and abs(x) < 1e15 else repr(x)


def _histogram(out: list[str], name: str, labels: str, values: list[float], base: int,
               bounds: Sequence[float]) -> None:
    running = 0.0
    sep = "," if labels else ""
    for i, le in enumerate(bounds):
        running += values[base + i]
        out.append(f'{name}_bucket{{{labels}{sep}le="{float(le)!r}"}} {_fmt(running)}')
    running += values[base + len(bounds)]
    out.append(f'{name}_bucket{{{labels}{sep}le="+Inf"}} {_fmt(running)}')
    lab = f"{{{labels}}}" if labels else ""
    out.append(f"{name}_sum{lab} {values[base + len(bounds) + 1]!r}")
    out.append(f"{name}_count{lab} {_fmt(values[base + len(bounds) + 2])}")


def render(folder: Path, model_name: str, model_version: str | None, task: str | None,
           classes: Sequence[str] | None, workers: int) -> str:
    """The Prometheus text exposition (format 0.0.4) of all workers' sums."""
    v = read_totals(folder)
    out: list[str] = []
    out += ["# HELP mlgen_model_info The model this server answers for (value 1 once loaded).",
            "# TYPE mlgen_model_info gauge",
            (f'mlgen_model_info{{name="{_esc(model_name)}",version="{_esc(model_version or "")}",'
             f'task="{_esc(task or "")}"}} {1 if model_version else 0}')]
    out += [
        "# HELP mlgen_workers Worker processes configured.",
        "# TYPE mlgen_workers gauge",
        f"mlgen_workers {workers}",
        "# HELP mlgen_workers_ready Worker processes with the model loaded and not draining.",
        "# TYPE mlgen_workers_ready gauge",
        f"mlgen_workers_ready {_fmt(v[LAYOUT.ready])}",
        "# HELP mlgen_inflight_requests Requests received and not yet answered.",
        "# TYPE mlgen_inflight_requests gauge",
        f"mlgen_inflight_requests {_fmt(v[LAYOUT.inflight])}",
    ]
    out += ["# HELP mlgen_http_requests_total HTTP requests answered, by route and status code.",
            "# TYPE mlgen_http_requests_total counter"]
    for r, route in enumerate(ROUTES):
        for s, status in enumerate(STATUSES):
            n = v[LAYOUT.requests + r * len(STATUSES) + s]
            if n:
                out.append(
                    f'mlgen_http_requests_total{{route="{route}",status="{status}"}} {_fmt(n)}'
                )
    out += [
        ("# HELP mlgen_http_request_duration_seconds "
        "Time from the first byte of a request to its answer."),
        "# TYPE mlgen_http_request_duration_seconds histogram",
    ]
    for r, route in enumerate(ROUTES):
        base = LAYOUT.latency[r]
        if v[base + len(LATENCY_BUCKETS) + 2]:
            _histogram(out, "mlgen_http_request_duration_seconds", f'route="{route}"', v, base,
                       LATENCY_BUCKETS)
    out += [
        "# HELP mlgen_batch_size Rows per model call (micro-batching merges concurrent requests).",
        "# TYPE mlgen_batch_size histogram",
    ]
    _histogram(out, "mlgen_batch_size", "", v, LAYOUT.batch, BATCH_BUCKETS)
    out += [
        "# HELP mlgen_predicted_rows_total Rows predicted.",
        "# TYPE mlgen_predicted_rows_total counter",
        f"mlgen_predicted_rows_total {_fmt(v[LAYOUT.rows])}",
    ]
    if task != "regression":
        out += ["# HELP mlgen_predictions_total Predicted rows by predicted class.",
                "# TYPE mlgen_predictions_total counter"]
        for i in range(MAX_CLASSES + 1):
            n = v[LAYOUT.classes + i]
            if n:
                label = ("other" if i == MAX_CLASSES else
                         classes[i] if classes is not None and i < len(classes) else str(i))
                out.append(f'mlgen_predictions_total{{class="{_esc(str(label))}"}} {_fmt(n)}')
        out += [("# HELP mlgen_prediction_score Probability of the positive class (binary) or of "
                 "the predicted class (multiclass)."), "# TYPE mlgen_prediction_score histogram"]
        _histogram(out, "mlgen_prediction_score", "", v, LAYOUT.score, SCORE_BUCKETS)
    if task != "classification":
        out += ["# HELP mlgen_prediction_value Predicted values (regression).",
                "# TYPE mlgen_prediction_value histogram"]
        _histogram(out, "mlgen_prediction_value", "", v, LAYOUT.value, VALUE_BUCKETS)
    out += [
        "# HELP mlgen_request_log_rows_total Rows written to the sampled request log.",
        "# TYPE mlgen_request_log_rows_total counter",
        f"mlgen_request_log_rows_total {_fmt(v[LAYOUT.logged_rows])}",
        ("# HELP mlgen_shadow_requests_total Prediction requests mirrored to the shadow "
        "challenger, by outcome: sent (answered), failed (refused, timed out), dropped (the "
        "queue was full)."),
        "# TYPE mlgen_shadow_requests_total counter",
        *(f'mlgen_shadow_requests_total{{outcome="{name}"}} {_fmt(v[offset])}'
          for name, offset in (("sent", LAYOUT.shadow_sent), ("failed", LAYOUT.shadow_failed),
                               ("dropped", LAYOUT.shadow_dropped))),
        "# HELP mlgen_shadow_compared_rows_total Rows whose prediction the shadow answered too.",
        "# TYPE mlgen_shadow_compared_rows_total counter",
        f"mlgen_shadow_compared_rows_total {_fmt(v[LAYOUT.shadow_compared_rows])}",
        ("# HELP mlgen_shadow_disagreeing_rows_total Compared rows the shadow predicted "
        "differently (another class; for regression, more than 5% off)."),
        "# TYPE mlgen_shadow_disagreeing_rows_total counter",
        f"mlgen_shadow_disagreeing_rows_total {_fmt(v[LAYOUT.shadow_disagreeing_rows])}",
        ("# HELP mlgen_shadow_abs_difference_total Sum of |shadow - champion| over compared "
        "rows (regression)."),
        "# TYPE mlgen_shadow_abs_difference_total counter",
        f"mlgen_shadow_abs_difference_total {_fmt(v[LAYOUT.shadow_abs_difference])}",
        "# HELP mlgen_model_loads_total Successful model (re)loads, summed over workers.",
        "# TYPE mlgen_model_loads_total counter",
        f"mlgen_model_loads_total {_fmt(v[LAYOUT.loads])}",
        "# HELP mlgen_model_load_failures_total Failed model loads (missing file excluded).",
        "# TYPE mlgen_model_load_failures_total counter",
        f"mlgen_model_load_failures_total {_fmt(v[LAYOUT.load_failures])}",
    ]
    return "\n".join(out) + "\n"


MONITOR_TEXT_MAX = 256 * 1024
_MONITOR_PREFIXES = ("mlgen_monitor_", "# HELP mlgen_monitor_", "# TYPE mlgen_monitor_")


def monitor_text(log_dir: Path | None) -> str:
    """The monitor CronJob's textfile from the shared request-log volume, appended to /metrics
    so the ServiceMonitor that scrapes the server collects live performance too. The volume is
    writable by other jobs: only mlgen_monitor_* samples and their comments pass, size-bounded."""
    if log_dir is None:
        return ""
    path = log_dir / c.MONITOR_METRICS_DIR / c.MONITOR_TEXTFILE
    try:
        with open(path, "rb") as f:
            raw = f.read(MONITOR_TEXT_MAX)
    except OSError:
        return ""
    lines = [line for line in raw.decode("utf-8", "replace").splitlines()
             if line.startswith(_MONITOR_PREFIXES)]
    if len(raw) == MONITOR_TEXT_MAX and lines:
        lines.pop()  # may be cut mid-line
    return "".join(line + "\n" for line in lines)
