"""The drift report in three forms: JSON (machines), Markdown (PR bot, issues), HTML (people).

The HTML report is one self-contained file: inline SVG histograms of the reference (baseline)
against the current window for every drifted feature, no JavaScript, no CDN, so it opens from a
CI artifact or an air-gapped cluster the same way.
"""
from __future__ import annotations

import html
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from mlgen.models.drift.run import DriftReport

REF_COLOUR, CUR_COLOUR = "#7f8c9a", "#d9534f"


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    if isinstance(v, float):
        return (
            f"{v:.{digits}g}"
            if abs(v) < 1e-3 and v != 0
            else f"{v:.{digits}f}".rstrip("0").rstrip(".")
        )
    return str(v)


def to_json(report: DriftReport) -> str:
    return json.dumps(report.as_dict(), indent=2, allow_nan=False, default=_jsonable)


def _jsonable(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return str(v)


def _verdict(report: DriftReport) -> str:
    if report.exit_code == 2:
        return f"ERROR: {report.error}"
    if report.too_few_rows:
        return (f"too few rows: {report.current.get('rows')} in the window (< drift.min_rows "
                f"{report.settings.min_rows}); no drift verdict")
    n, d = len(report.evaluated), len(report.drifted)
    word = "DRIFT" if report.dataset_drift else "no dataset drift"
    return (f"{word}: {d} of {n} features drifted ({report.share:.0%}; dataset threshold "
            f"{report.settings.thresholds.share:.0%})")


def to_markdown(report: DriftReport) -> str:
    name = report.model or "model"
    lines = [f"## Drift report: {name}", "", f"**{_verdict(report)}**", "",
             (f"Reference: `{report.reference.get('path')}` ({report.reference.get('rows', '?')} "
              f"rows); current: `{report.current.get('path')}` ({report.current.get('rows', 0)} "
              f"rows in the window, format {report.current.get('format') or '?'})"
              + (f"; {report.current['rows_other_models']} rows of other models dropped."
                 if report.current.get("rows_other_models") else ".")), ""]
    if report.features:
        lines += [
            ("| feature | type | method | score | threshold | missing (ref -> cur) | status "
            "| drift |"),
            "| --- | --- | --- | ---: | ---: | --- | --- | :---: |",
        ]
        ordered = sorted(report.features, key=lambda f: (not f.drifted, f.name))
        for f in ordered:
            miss = f"{f.missing['reference']:.1%} -> {f.missing['current']:.1%}"
            lines.append(
                f"| `{f.name}` | {f.kind} | {f.method} | {_fmt(f.score)} | "
                f"{_fmt(f.threshold)} | {miss} | {f.status} | {'**yes**' if f.drifted else 'no'} |"
            )
        lines.append("")
    notes = [(f.name, n) for f in report.features for n in f.notes]
    if notes:
        lines += ["Notes:", ""] + [f"- `{n}`: {text}" for n, text in notes] + [""]
    if report.problems:
        lines += ["Problems with the data:", ""]
        lines += [f"- {p.kind}: {p.message}" for p in report.problems[:50]]
        lines.append("")
    for a in report.actions:
        lines.append(
            f"- action `{a.get('action')}`: {a.get('status')} {a.get('detail', '')}".rstrip()
        )
    return "\n".join(lines).rstrip() + "\n"


def _svg_histogram(hist: dict[str, Any]) -> str:
    ref, cur = hist["reference"], hist["current"]
    if hist["kind"] == "numeric":
        e = hist["edges"]
        labels = [f"< {_fmt(e[1], 3)}" if i == 0 else f">= {_fmt(e[i], 3)}" if i == len(ref) - 1
                  else f"{_fmt(e[i], 3)}..{_fmt(e[i + 1], 3)}" for i in range(len(ref))]
    else:
        labels = [str(x) for x in hist["labels"]]
    width, height, pad, bottom = 640, 220, 36, 70
    n = max(len(ref), 1)
    group = (width - 2 * pad) / n
    top = max(max(ref, default=0), max(cur, default=0), 1e-9)
    scale = (height - bottom - 10) / top
    parts = [(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
              'role="img" aria-label="reference vs current histogram">'),
             (f'<line x1="{pad}" y1="{height - bottom}" x2="{width - pad}" y2="{height - bottom}" '
              'stroke="#333"/>')]
    for i, (r, c) in enumerate(zip(ref, cur, strict=True)):
        x = pad + i * group
        bw = group * 0.4
        for j, (v, colour, who) in enumerate(
            ((r, REF_COLOUR, "reference"), (c, CUR_COLOUR, "current"))
        ):
            h = v * scale
            parts.append(f'<rect x="{x + group * 0.1 + j * bw:.1f}" y="{height - bottom - h:.1f}" '
                         f'width="{bw:.1f}" height="{h:.1f}" fill="{colour}">'
                         f'<title>{html.escape(labels[i])}: {who} {v:.1%}</title></rect>')
        lx, ly = x + group / 2, height - bottom + 8
        parts.append(
            f'<text x="{lx:.1f}" y="{ly:.1f}" font-size="9" text-anchor="end" '
            f'transform="rotate(-40 {lx:.1f} {ly:.1f})">{html.escape(labels[i][:18])}</text>'
        )
    parts.append(
        f'<text x="{pad}" y="12" font-size="11" fill="{REF_COLOUR}">&#9632; reference</text>'
        f'<text x="{pad + 90}" y="12" font-size="11" fill="{CUR_COLOUR}">&#9632; current</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def to_html(report: DriftReport) -> str:
    esc = html.escape
    name = esc(report.model or "model")
    rows = []
    for f in sorted(report.features, key=lambda f: (not f.drifted, f.name)):
        cls = ' class="drift"' if f.drifted else ""
        rows.append(f"<tr{cls}><td><code>{esc(f.name)}</code></td><td>{f.kind}</td><td>{f.method}</td>"
                    f"<td>{_fmt(f.score)}</td><td>{_fmt(f.threshold)}</td>"
                    f"<td>{f.missing['reference']:.1%} &rarr; {f.missing['current']:.1%}</td>"
                    f"<td>{esc(f.status)}</td><td>{'yes' if f.drifted else 'no'}</td></tr>")
    charts = []
    for f in report.drifted:
        if f.histogram:
            notes = "".join(f"<li>{esc(n)}</li>" for n in f.notes)
            charts.append(
                f"<section><h3><code>{esc(f.name)}</code> ({f.method} {_fmt(f.score)})</h3>"
                f"{_svg_histogram(dict(f.histogram))}<ul>{notes}</ul></section>"
            )
        else:
            charts.append(f"<section><h3><code>{esc(f.name)}</code></h3><p>"
                          f"{esc('; '.join(f.notes))}</p></section>")
    problems = "".join(f"<li><b>{esc(p.kind)}</b>: {esc(p.message)}</li>" for p in report.problems)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Drift report: {name}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:2em;color:#222}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:left}} tr.drift{{background:#fbe9e9}}
.verdict{{font-size:1.2em;font-weight:bold}} section{{margin:1.5em 0}}
</style></head><body>
<h1>Drift report: {name}</h1>
<p class="verdict">{esc(_verdict(report))}</p>
<p>Reference <code>{esc(str(report.reference.get("path")))}</code>; current
<code>{esc(str(report.current.get("path")))}</code>, {report.current.get("rows", 0)} rows
in the window.
Generated {esc(report.generated_at)}.</p>
<table><tr><th>feature</th><th>type</th><th>method</th><th>score</th><th>threshold</th>
<th>missing (ref &rarr; cur)</th><th>status</th><th>drift</th></tr>
{"".join(rows)}</table>
<h2>Drifted features: reference vs current</h2>
{"".join(charts) or "<p>None.</p>"}
<h2>Problems with the data</h2>
<ul>{problems or "<li>None.</li>"}</ul>
</body></html>
"""


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


def write_reports(report: DriftReport, out_dir: Path) -> dict[str, Path]:
    """drift-report.json, drift-report.md and drift-report.html in `out_dir`."""
    paths = {"json": out_dir / "drift-report.json", "markdown": out_dir / "drift-report.md",
             "html": out_dir / "drift-report.html"}
    _atomic_write(paths["json"], to_json(report) + "\n")
    _atomic_write(paths["markdown"], to_markdown(report))
    _atomic_write(paths["html"], to_html(report))
    return paths
