"""One monitor run: join labels to the window's predictions, compute metrics, decide.

Exit codes: 0 no real drop (or too few labels to tell), 1 a real drop, 2 bad input. A drop is
real when the metric moved past the allowed drop (`max_drop`, absolute, or `max_relative_drop`
times the training value) from the training-time value AND the 95 % interval's best end is
still worse than the training value, or when the interval's best end breaks a gate bound.
"""
from __future__ import annotations

import math
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from .data import MonitorInputError
from .join import Joined, how_many_parts, join
from .metrics import CLASSIFICATION, HIGHER_IS_BETTER, REGRESSION, Estimate, compute

REPORT_SCHEMA = "mlgen.monitor-report/v1"
EXIT_OK, EXIT_DROP, EXIT_ERROR = 0, 1, 2
BUCKETS = 12


@dataclass(frozen=True)
class Settings:
    task: str = "classification"
    metrics: tuple[str, ...] = ()
    window: timedelta | None = timedelta(days=7)
    label_delay: timedelta = timedelta(0)
    min_labels: int = 100
    max_drop: Mapping[str, float] = field(default_factory=dict)
    max_relative_drop: float | None = 0.05
    training: Mapping[str, float] = field(default_factory=dict)
    gate: Mapping[str, tuple[float | None, float | None]] = field(default_factory=dict)
    model: str | None = None
    now: datetime | None = None
    parts: int | None = None  # None: from the input's size (join.how_many_parts)
    spill_dir: Path | None = None  # where parts go when there are several (default: TMPDIR)


@dataclass(frozen=True)
class Drop:
    metric: str
    training: float
    live: float
    drop: float
    allowed: float | None
    reason: str


@dataclass(frozen=True)
class MonitorReport:
    generated_at: str
    window: Mapping[str, Any]
    counts: Mapping[str, int]
    metrics: Mapping[str, Estimate]
    training: Mapping[str, float]
    drops: tuple[Drop, ...]
    series: tuple[Mapping[str, Any], ...]
    elapsed_seconds: float
    model: str | None = None
    notes: tuple[str, ...] = ()
    error: str | None = None
    actions: tuple[Mapping[str, Any], ...] = ()
    # Newest labelled_at over every label read (not only the window's): the labels-stopped
    # alert compares it with the time, so it must move whenever any label arrives.
    last_label_at: float | None = None
    parts: int = 1  # how many parts the join took (join.how_many_parts)

    @property
    def too_few_labels(self) -> bool:
        return self.error is None and not self.metrics

    @property
    def exit_code(self) -> int:
        if self.error:
            return EXIT_ERROR
        return EXIT_DROP if self.drops else EXIT_OK

    @property
    def retrain_requested(self) -> bool:
        return self.exit_code == EXIT_DROP

    @property
    def reason(self) -> str:
        return "; ".join(d.reason for d in self.drops)

    @property
    def labelled_share(self) -> float:
        expected = self.counts.get("expected", 0)
        return self.counts.get("labelled", 0) / expected if expected else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "schema": REPORT_SCHEMA, "generated_at": self.generated_at, "model": self.model,
            "window": dict(self.window), "counts": dict(self.counts),
            "labelled_share": self.labelled_share,
            "metrics": {k: v.as_dict() for k, v in self.metrics.items()},
            "training": dict(self.training),
            "drops": [d.__dict__ for d in self.drops], "series": list(self.series),
            "notes": list(self.notes), "error": self.error, "exit_code": self.exit_code,
            "retrain_requested": self.retrain_requested, "reason": self.reason,
            "actions": list(self.actions), "elapsed_seconds": round(self.elapsed_seconds, 3),
            "last_label_at": (None if self.last_label_at is None else
                              _stamp(datetime.fromtimestamp(self.last_label_at, UTC))),
            "parts": self.parts,
        }


def _stamp(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _positive(classes: list[str]) -> str:
    try:
        return max(classes, key=float)
    except ValueError:
        return max(classes)


def run_monitor(predictions: Path, labels_path: Path, settings: Settings) -> MonitorReport:
    started = time.perf_counter()
    now = settings.now or datetime.now(UTC)
    window: dict[str, Any] = {"end": _stamp(now), "length": _human(settings.window),
                              "label_delay": _human(settings.label_delay)}
    if settings.window is not None:
        window["start"] = _stamp(now - settings.window)

    def fail(message: str) -> MonitorReport:
        return MonitorReport(_stamp(datetime.now(UTC)), window, {}, {}, dict(settings.training),
                             (), (), time.perf_counter() - started, settings.model,
                             error=message)

    numeric = settings.task == "regression"
    try:
        parts = settings.parts or how_many_parts(predictions, labels_path)
        joined = join(predictions, labels_path, model=settings.model, numeric=numeric,
                      start=None if settings.window is None else now - settings.window,
                      end=now, due_by=now - settings.label_delay, parts=parts,
                      spill_dir=settings.spill_dir)
    except MonitorInputError as exc:
        return fail(str(exc))
    newest = joined.newest_label
    last_label = newest.replace(tzinfo=UTC).timestamp() if newest is not None else None
    counts = joined.counts
    notes: list[str] = []
    names = settings.metrics or (REGRESSION if numeric else CLASSIFICATION)
    if joined.rows < settings.min_labels:
        notes.append(f"{joined.rows} labelled predictions in the window, fewer than "
                     f"min_labels {settings.min_labels}: no verdict")
        return MonitorReport(_stamp(datetime.now(UTC)), window, counts, {},
                             dict(settings.training), (), (), time.perf_counter() - started,
                             settings.model, tuple(notes), last_label_at=last_label,
                             parts=parts)
    arrays = _arrays(joined, numeric, notes)
    computable = names
    if not numeric and len(joined.classes) > 2:  # y is "correct" here: only accuracy means it
        computable = tuple(n for n in names if n == "accuracy")
    metrics = compute(computable, **arrays)
    missing = [n for n in names if n not in metrics]
    if missing:
        notes.append("not computed (needs scores in the log, a binary task, or is not a live "
                     "metric): " + ", ".join(missing))
    drops = tuple(_drops(metrics, settings, window))
    series = tuple(_series(joined.ts, arrays, names, metrics, settings, now))
    return MonitorReport(_stamp(datetime.now(UTC)), window, counts, metrics,
                         dict(settings.training), drops, series,
                         time.perf_counter() - started, settings.model, tuple(notes),
                         last_label_at=last_label, parts=parts)


def _arrays(joined: Joined, numeric: bool, notes: list[str]) -> dict[str, Any]:
    if numeric:
        return {"y": joined.label, "prediction": joined.prediction, "score": None}
    values = joined.classes  # every class among the labelled rows' labels and predictions
    if len(values) > 2:
        notes.append(f"{len(values)} classes: precision/recall/f1/roc_auc are binary metrics; "
                     "accuracy counts correct predictions")
        correct = (joined.label == joined.prediction) & (joined.prediction >= 0)
        return {"y": np.ones(len(correct), bool), "prediction": correct, "score": None}
    positive = values.index(_positive(values)) if values else -2
    return {"y": joined.label == positive, "prediction": joined.prediction == positive,
            "score": joined.score if joined.score_missing == 0 else None}


def _drops(metrics: Mapping[str, Estimate], s: Settings, window: Mapping[str, Any]):  # type: ignore[no-untyped-def]
    span = f"window {window.get('start', 'all')}..{window['end']}"
    for name, est in metrics.items():
        if not math.isfinite(est.value):
            continue
        better = HIGHER_IS_BETTER.get(name, True)
        best = (est.high if better else est.low)
        best = est.value if best is None else best
        train = s.training.get(name)
        if train is not None and math.isfinite(train):
            drop = (train - est.value) if better else (est.value - train)
            allowed = s.max_drop.get(name)
            if allowed is None and s.max_relative_drop is not None:
                allowed = s.max_relative_drop * abs(train)
            significant = best < train if better else best > train
            if allowed is not None and drop > allowed and significant:
                yield Drop(name, train, est.value, drop, allowed,
                           f"{name} dropped {drop:.4g} (training {train:.4g} -> live "
                           f"{est.value:.4g}, allowed {allowed:.4g}) over the {span}")
                continue
        low, high = s.gate.get(name, (None, None))
        if low is not None and best < low:
            yield Drop(name, train if train is not None else math.nan, est.value,
                       low - est.value, None,
                       f"{name} {est.value:.4g} is below the gate's min {low:.4g} over the {span}")
        elif high is not None and best > high:
            yield Drop(name, train if train is not None else math.nan, est.value,
                       est.value - high, None,
                       f"{name} {est.value:.4g} is above the gate's max {high:.4g} over the {span}")


def _series(ts: np.ndarray, arrays: Mapping[str, Any], names: tuple[str, ...],
            metrics: Mapping[str, Estimate], s: Settings,
            now: datetime) -> Iterator[dict[str, Any]]:
    """The first computed metric per time bucket, for the plot."""
    if not metrics:
        return
    name = next(n for n in names if n in metrics)
    lo = int(ts.min()) if s.window is None else int((now - s.window).timestamp())
    hi = int(now.timestamp())
    edges = np.linspace(lo, hi + 1, BUCKETS + 1)
    which = np.clip(np.searchsorted(edges, ts, side="right") - 1, 0, BUCKETS - 1)
    for b in range(BUCKETS):
        mask = which == b
        n = int(mask.sum())
        if n < 2:
            continue
        part = compute((name,), y=arrays["y"][mask], prediction=arrays["prediction"][mask],
                       score=None if arrays["score"] is None else arrays["score"][mask])
        if name in part:
            e = part[name]
            yield {"metric": name, "start": _stamp(datetime.fromtimestamp(edges[b], UTC)),
                   "labels": n, "value": e.value, "ci_low": e.low, "ci_high": e.high}


def _human(delta: timedelta | None) -> str:
    if delta is None:
        return "all"
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
