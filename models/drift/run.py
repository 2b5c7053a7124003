"""One drift run: load the profile, stream the window, evaluate, and decide the exit code.

Exit codes: 0 no dataset drift, 1 dataset drift, 2 nothing could be computed (no profile, no
readable row, no feature that could be evaluated). Everything short of that is a problem listed
in the report, not a failure.
"""
from __future__ import annotations

import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
from mlgen.models.drift.accumulate import Accumulator, CategoricalAccumulator, NumericAccumulator
from mlgen.models.drift.detect import (
    DriftSettings,
    FeatureResult,
    evaluate_categorical,
    evaluate_numeric,
)
from mlgen.models.drift.readers import Problem, ReadLog, read_chunks
from mlgen.models.profile import NumericProfile, Profile, ProfileError, load_profile

REPORT_SCHEMA = "mlgen.drift-report/v1"
EXIT_NO_DRIFT, EXIT_DRIFT, EXIT_ERROR = 0, 1, 2


@dataclass(frozen=True)
class DriftReport:
    generated_at: str
    reference: Mapping[str, Any]
    current: Mapping[str, Any]
    settings: DriftSettings
    features: tuple[FeatureResult, ...]
    problems: tuple[Problem, ...]
    elapsed_seconds: float
    model: str | None = None
    error: str | None = None  # set when nothing could be computed
    actions: tuple[Mapping[str, Any], ...] = field(default=())

    @property
    def evaluated(self) -> tuple[FeatureResult, ...]:
        return tuple(f for f in self.features if f.evaluated)

    @property
    def drifted(self) -> tuple[FeatureResult, ...]:
        return tuple(f for f in self.evaluated if f.drifted)

    @property
    def share(self) -> float:
        n = len(self.evaluated)
        return len(self.drifted) / n if n else 0.0

    @property
    def too_few_rows(self) -> bool:
        """A window shorter than drift.min_rows: reported as such, never a drift verdict."""
        rows = int(self.current.get("rows") or 0)
        return self.error is None and 0 < rows < self.settings.min_rows

    @property
    def dataset_drift(self) -> bool:
        if self.too_few_rows:
            return False
        return bool(self.evaluated) and self.share >= self.settings.thresholds.share

    @property
    def exit_code(self) -> int:
        if self.error:
            return EXIT_ERROR
        if self.too_few_rows:
            return EXIT_NO_DRIFT  # a quiet night is not a failed job
        if not self.evaluated:
            return EXIT_ERROR
        return EXIT_DRIFT if self.dataset_drift else EXIT_NO_DRIFT

    def as_dict(self) -> dict[str, Any]:
        s = self.settings
        return {
            "schema": REPORT_SCHEMA,
            "generated_at": self.generated_at,
            "model": self.model,
            "exit_code": self.exit_code,
            "error": self.error,
            "dataset": {
                "drift": self.dataset_drift,
                "too_few_rows": self.too_few_rows,
                "drifted_features": [f.name for f in self.drifted],
                "evaluated": len(self.evaluated),
                "drifted": len(self.drifted),
                "share": self.share,
                "share_threshold": s.thresholds.share,
            },
            "reference": dict(self.reference),
            "current": dict(self.current),
            "settings": {
                "methods": {"numeric": s.numeric_method, "categorical": s.categorical_method,
                            "numeric_used": s.method_for("numeric"),
                            "categorical_used": s.method_for("categorical")},
                "thresholds": dict(s.thresholds.__dict__),
                "min_rows": s.min_rows,
                "chunk_rows": s.chunk_rows,
            },
            "features": [f.as_dict() for f in self.features],
            "problems": [p.as_dict() for p in self.problems],
            "actions": [dict(a) for a in self.actions],
            "elapsed_seconds": self.elapsed_seconds,
        }


def parse_window(text: str | None) -> timedelta | None:
    """'24h', '90m', '7d', '3600s' -> timedelta; None, '' or 'all' -> no time filter."""
    if text is None or str(text).strip().lower() in {"", "all", "none"}:
        return None
    t = str(text).strip().lower()
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    if t[-1] in units and t[:-1].replace(".", "", 1).isdigit():
        return timedelta(seconds=float(t[:-1]) * units[t[-1]])
    raise ValueError(
        f"window {text!r}: use a number and a unit (s, m, h, d, w), e.g. 24h, or 'all'"
    )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def run_drift(
    reference: Path,
    current: Path,
    settings: DriftSettings,
    *,
    window: timedelta | None = None,
    now: datetime | None = None,
    model: str | None = None,
) -> DriftReport:
    started = time.perf_counter()
    try:
        profile = load_profile(reference)
    except ProfileError as exc:
        return DriftReport(_now(), {"path": str(reference)}, {"path": str(current)}, settings, (),
                           (Problem("bad_profile", str(exc)),), time.perf_counter() - started,
                           model=model, error=str(exc))
    since = (now or datetime.now(UTC)) - window if window else None
    log = ReadLog()
    own = model or profile.model  # rows of other models in a shared log are not this one's
    accs = scan(profile, current, settings, since=since, log=log, model=own)
    results = tuple(
        evaluate_numeric(a, settings) if isinstance(a, NumericAccumulator)
        else evaluate_categorical(a, settings)
        for a in accs.values()
    )
    problems = list(log.problems)
    if log.other_models:
        seen = ", ".join(f"{name!r} ({rows})" for name, rows in sorted(log.other_models.items()))
        problems.append(Problem("other_models", f"{log.rows_other_models} rows of other models "
                                f"dropped (model field not {own!r}): {seen}",
                                count=log.rows_other_models))
    error = None
    if log.rows_in_window == 0:
        what = ("no rows in the window" if log.rows_read > log.rows_other_models
                else f"no rows of model {own!r}" if log.rows_read else "no rows could be read")
        problems.append(Problem("empty_window", f"{current}: {what}"
                                + (f" (since {since.isoformat()})" if since else "")))
        error = f"{current}: {what}; nothing to compare"
    for r in results:
        if r.status == "missing_column":
            problems.append(Problem("missing_column", f"feature {r.name!r} is in the reference "
                                    "profile but not in the current window", feature=r.name))
        elif r.status == "all_missing":
            problems.append(Problem("all_missing", f"feature {r.name!r} has no value in the "
                                    "current window", feature=r.name))
    if error is None and 0 < log.rows_in_window < settings.min_rows:
        problems.append(Problem("too_few_rows", f"{log.rows_in_window} rows in the window, fewer "
                                f"than drift.min_rows ({settings.min_rows}): too few to judge, "
                                "so no drift verdict", count=log.rows_in_window))
    elif error is None and not any(r.evaluated for r in results):
        error = "no feature could be evaluated (see problems)"
    ref_info = {"path": str(reference), "created_at": profile.created_at, "rows": profile.rows,
                "model": profile.model, "features": len(profile.features)}
    cur_info = {"path": str(current), "format": log.format, "files": log.files,
                "rows_read": log.rows_read, "rows_other_models": log.rows_other_models,
                "other_models": dict(sorted(log.other_models.items())),
                "rows": log.rows_in_window, "chunks": log.chunks,
                "window_start": since.isoformat() if since else None}
    return DriftReport(_now(), ref_info, cur_info, settings, results, tuple(problems),
                       time.perf_counter() - started, model=model or profile.model, error=error)


def scan(profile: Profile, current: Path, settings: DriftSettings, *, since: datetime | None,
         log: ReadLog, model: str | None = None) -> dict[str, Accumulator]:
    """Stream the window once, updating one accumulator per profiled feature."""
    accs: dict[str, Accumulator] = {
        name: NumericAccumulator(f) if isinstance(f, NumericProfile) else CategoricalAccumulator(f)
        for name, f in profile.features.items()
    }
    kinds = {name: f.kind for name, f in profile.features.items()}

    def update(item: tuple[Accumulator, pa.Array | None, int]) -> None:
        acc, arr, rows = item
        acc.add(arr, rows)

    # numpy's sort and pyarrow release the GIL: two threads use both cores of a small node.
    with ThreadPoolExecutor(max_workers=2) as pool:
        for chunk, rows in read_chunks(current, kinds, chunk_rows=settings.chunk_rows,
                                       since=since, log=log, model=model):
            list(pool.map(update, [(acc, chunk.get(name), rows) for name, acc in accs.items()]))
    return accs
