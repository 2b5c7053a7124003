"""monitor-report.{json,md,html} and the Prometheus textfile of a monitor run.

The HTML carries the metric over time as an inline SVG (no plotting library, no script).
"""
from __future__ import annotations

import html
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from mlgen.models.contract import MONITOR_TEXTFILE

from .run import MonitorReport

TEXTFILE = MONITOR_TEXTFILE


def to_json(report: MonitorReport) -> str:
    return json.dumps(_nan_to_none(report.as_dict()), indent=2, sort_keys=True, default=str)


def _nan_to_none(doc: Any) -> Any:
    if isinstance(doc, float) and not math.isfinite(doc):
        return None
    if isinstance(doc, dict):
        return {k: _nan_to_none(v) for k, v in doc.items()}
    if isinstance(doc, list | tuple):
        return [_nan_to_none(v) for v in doc]
    return doc


def _fmt(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.4f}"


def to_markdown(report: MonitorReport) -> str:
    w, c = report.window, report.counts
    lines = [f"# Model monitor: {report.model or 'model'}", "",
             (f"Window {w.get('start', 'all')} .. {w['end']} ({w['length']}, label delay "
             f"{w['label_delay']})"), ""]
    if report.error:
        return "\n".join([*lines, f"**Error:** {report.error}", ""])
    verdict = ("**PERFORMANCE DROP**: " + report.reason if report.drops else
               "no verdict: too few labels" if report.too_few_labels else "no real drop")
    lines += [f"Verdict: {verdict}", "",
              (f"Labelled: {c.get('labelled', 0)} of {c.get('expected', 0)} due predictions "
              f"({report.labelled_share:.1%}); unknown ids {c.get('unknown_ids', 0)}, duplicate "
              f"labels {c.get('duplicate_labels', 0)}, late labels (prediction outside the "
              f"window) {c.get('late_labels', 0)}"), ""]
    if report.metrics:
        lines += ["| metric | live | 95% CI | CI method | training | drop |",
                  "| --- | --- | --- | --- | --- | --- |"]
        dropped = {d.metric for d in report.drops}
        for name, e in report.metrics.items():
            train = report.training.get(name)
            lines.append(f"| {name} | {_fmt(e.value)} | {_fmt(e.low)} .. {_fmt(e.high)} | "
                         f"{e.method} | {_fmt(train)} | {'DROP' if name in dropped else ''} |")
        lines.append("")
    lines += [f"- {n}" for n in report.notes]
    lines += [f"- action {a.get('action')}: {a.get('status')} {a.get('detail', '')}"
              for a in report.actions]
    return "\n".join(lines) + "\n"


def svg_series(report: MonitorReport, width: int = 640, height: int = 220) -> str:
    points = [s for s in report.series if s.get("value") is not None
              and math.isfinite(s["value"])]
    if not points:
        return "<p>No labelled buckets to plot.</p>"
    name = points[0]["metric"]
    values = [p["value"] for p in points] + [v for p in points for v in
                                             (p.get("ci_low"), p.get("ci_high")) if v is not None]
    train = report.training.get(name)
    if train is not None and math.isfinite(train):
        values.append(train)
    lo, hi = float(min(values)), float(max(values))
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    pad = 30

    def x(i: int) -> float:
        return pad + (width - 2 * pad) * (i / max(1, len(points) - 1))

    def y(v: float) -> float:
        return height - pad - (height - 2 * pad) * (v - lo) / (hi - lo)

    parts = [(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'role="img" aria-label="{html.escape(name)} over time">'),
             f'<rect width="{width}" height="{height}" fill="white" stroke="#ccc"/>']
    band = [(x(i), y(p["ci_high"])) for i, p in enumerate(points) if p.get("ci_high") is not None]
    band += [(x(i), y(p["ci_low"])) for i, p in reversed(list(enumerate(points)))
             if p.get("ci_low") is not None]
    if band:
        parts.append('<polygon fill="#cfe2ff" points="'
                     + " ".join(f"{a:.1f},{b:.1f}" for a, b in band) + '"/>')
    if train is not None and math.isfinite(train):
        parts.append(f'<line x1="{pad}" x2="{width - pad}" y1="{y(train):.1f}" '
                     f'y2="{y(train):.1f}" stroke="#888" stroke-dasharray="4"/>'
                     f'<text x="{pad}" y="{y(train) - 4:.1f}" font-size="11">training '
                     f'{train:.3f}</text>')
    parts.append('<polyline fill="none" stroke="#0d6efd" stroke-width="2" points="'
                 + " ".join(f"{x(i):.1f},{y(p['value']):.1f}" for i, p in enumerate(points))
                 + '"/>')
    parts.append(f'<text x="{pad}" y="{height - 8}" font-size="11">'
                 f'{html.escape(points[0]["start"])}</text>'
                 f'<text x="{width - pad}" y="{height - 8}" font-size="11" text-anchor="end">'
                 f'{html.escape(points[-1]["start"])}</text>'
                 f'<text x="{pad}" y="16" font-size="12">{html.escape(name)} per bucket, '
                 f'95% CI shaded</text></svg>')
    return "".join(parts)


def to_html(report: MonitorReport) -> str:
    md = html.escape(to_markdown(report))
    return ("<!doctype html><html><head><meta charset=\"utf-8\"><title>mlgen monitor</title>"
            "</head><body>" + svg_series(report) + f"<pre>{md}</pre></body></html>\n")


def write_reports(report: MonitorReport, folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = {"json": folder / "monitor-report.json", "markdown": folder / "monitor-report.md",
           "html": folder / "monitor-report.html"}
    _atomic(out["json"], to_json(report) + "\n")
    _atomic(out["markdown"], to_markdown(report))
    _atomic(out["html"], to_html(report))
    return out


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def to_prometheus(report: MonitorReport) -> str:
    model = _label(report.model or "model")
    window = _label(str(report.window.get("length")))
    lines = ["# HELP mlgen_monitor_metric Live model metric over the window, from labels.",
             "# TYPE mlgen_monitor_metric gauge"]
    for name, e in report.metrics.items():
        for kind, value in (("value", e.value), ("ci_low", e.low), ("ci_high", e.high)):
            if value is not None and math.isfinite(value):
                lines.append(f'mlgen_monitor_metric{{model="{model}",metric="{_label(name)}",'
                             f'stat="{kind}",window="{window}"}} {value:.6g}')
    lines += ["# HELP mlgen_monitor_training_metric The metric at training time.",
              "# TYPE mlgen_monitor_training_metric gauge"]
    for name, value in report.training.items():
        if math.isfinite(value):
            lines.append(f'mlgen_monitor_training_metric{{model="{model}",'
                         f'metric="{_label(name)}"}} {value:.6g}')
    lines += ["# HELP mlgen_monitor_drop 1 when a metric dropped for real in the last run.",
              "# TYPE mlgen_monitor_drop gauge"]
    dropped = {d.metric for d in report.drops}
    for name in report.metrics:
        lines.append(f'mlgen_monitor_drop{{model="{model}",metric="{_label(name)}"}} '
                     f'{int(name in dropped)}')
    lines += ["# HELP mlgen_monitor_labels Label counts of the last run.",
              "# TYPE mlgen_monitor_labels gauge"]
    for kind, value in sorted(report.counts.items()):
        lines.append(f'mlgen_monitor_labels{{model="{model}",kind="{_label(kind)}"}} {value}')
    lines += ["# HELP mlgen_monitor_labelled_share Labelled share of the due predictions.",
              "# TYPE mlgen_monitor_labelled_share gauge",
              f'mlgen_monitor_labelled_share{{model="{model}"}} {report.labelled_share:.6g}',
              "# HELP mlgen_monitor_last_run_timestamp_seconds When the last run finished.",
              "# TYPE mlgen_monitor_last_run_timestamp_seconds gauge",
              (f'mlgen_monitor_last_run_timestamp_seconds{{model="{model}",'
              f'status="{"error" if report.error else "ok"}"}} {_now():.0f}')]
    if report.last_label_at is not None:
        lines += [("# HELP mlgen_monitor_last_label_timestamp_seconds When the newest label "
                   "was given (its labelled_at)."),
                  "# TYPE mlgen_monitor_last_label_timestamp_seconds gauge",
                  (f'mlgen_monitor_last_label_timestamp_seconds{{model="{model}"}} '
                   f'{report.last_label_at:.0f}')]
    return "\n".join(lines) + "\n"


def _now() -> float:
    import time

    return time.time()


def write_textfile(report: MonitorReport, folder: Path) -> Path:
    """node-exporter's textfile collector reads *.prom; write then rename, never half a file."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / TEXTFILE
    _atomic(path, to_prometheus(report))
    return path


def _atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
