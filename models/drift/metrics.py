"""Prometheus metrics of a drift run: pushed to a Pushgateway, or written for the textfile
collector.

Metric names (the PrometheusRule alerts on these; keep them stable):
  mlgen_drift_feature_score{model,feature,method}      the deciding score of each feature
  mlgen_drift_feature_drifted{model,feature}           1 when the feature drifted
  mlgen_drift_feature_missing_rate{model,feature}      share of missing values in the window
  mlgen_drift_share{model}                             share of evaluated features that drifted
  mlgen_drift_detected{model}                          1 on dataset drift (the alert)
  mlgen_drift_rows{model}                              rows in the evaluated window
  mlgen_drift_run_status{model}                        the exit code: 0 ok, 1 drift, 2 error
  mlgen_drift_last_run_timestamp_seconds{model}        every run, even a failed one
  mlgen_drift_last_success_timestamp_seconds{model}    runs that computed a verdict (exit 0 or 1);
                                                       a stale-job alert watches this one
A failed run (exit 2) pushes only the run status and last-run time, so the last verdict and the
last success time stay as they were.
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from mlgen.models.drift.run import DriftReport

JOB = "mlgen_drift"

_HELP = {
    "mlgen_drift_feature_score":
        "Deciding drift score per feature (distance, or p-value for ks/chi2).",
    "mlgen_drift_feature_drifted": "1 when the feature drifted in the last run.",
    "mlgen_drift_feature_missing_rate": "Share of missing values of the feature in the window.",
    "mlgen_drift_share": "Share of evaluated features that drifted.",
    "mlgen_drift_detected": "1 when the dataset drifted (share >= threshold).",
    "mlgen_drift_rows": "Rows in the evaluated window.",
    "mlgen_drift_run_status": "Exit code of the last run: 0 no drift, 1 drift, 2 error.",
    "mlgen_drift_last_run_timestamp_seconds": "Unix time of the last run.",
    "mlgen_drift_last_success_timestamp_seconds":
        "Unix time of the last run that computed a verdict.",
}


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _line(name: str, labels: dict[str, str], value: float) -> str:
    inner = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
    return f"{name}{{{inner}}} {value!r}" if inner else f"{name} {value!r}"


def render_metrics(report: DriftReport, *, now: float | None = None, failed_only: bool = False,
                   last_success: float | None = None) -> str:
    """Prometheus text exposition format (0.0.4)."""
    ts = time.time() if now is None else now
    model = report.model or "model"
    m = {"model": model}
    series: dict[str, list[str]] = {k: [] for k in _HELP}
    series["mlgen_drift_run_status"].append(
        _line("mlgen_drift_run_status", m, float(report.exit_code))
    )
    series["mlgen_drift_last_run_timestamp_seconds"].append(
        _line("mlgen_drift_last_run_timestamp_seconds", m, float(ts)))
    if not failed_only:
        for f in report.features:
            fl = {"model": model, "feature": f.name}
            if f.score is not None and f.evaluated:
                series["mlgen_drift_feature_score"].append(
                    _line("mlgen_drift_feature_score", {**fl, "method": f.method}, float(f.score)))
            series["mlgen_drift_feature_drifted"].append(
                _line("mlgen_drift_feature_drifted", fl, 1.0 if f.drifted else 0.0))
            series["mlgen_drift_feature_missing_rate"].append(
                _line("mlgen_drift_feature_missing_rate", fl, float(f.missing["current"])))
        series["mlgen_drift_share"].append(_line("mlgen_drift_share", m, float(report.share)))
        series["mlgen_drift_detected"].append(
            _line("mlgen_drift_detected", m, 1.0 if report.dataset_drift else 0.0))
        series["mlgen_drift_rows"].append(
            _line("mlgen_drift_rows", m, float(report.current.get("rows", 0)))
        )
        series["mlgen_drift_last_success_timestamp_seconds"].append(
            _line("mlgen_drift_last_success_timestamp_seconds", m, float(ts)))
    elif last_success is not None:
        series["mlgen_drift_last_success_timestamp_seconds"].append(
            _line("mlgen_drift_last_success_timestamp_seconds", m, float(last_success)))
    out: list[str] = []
    for name, lines in series.items():
        if lines:
            out += [f"# HELP {name} {_HELP[name]}", f"# TYPE {name} gauge", *lines]
    return "\n".join(out) + "\n"


def push(report: DriftReport, url: str, *, timeout: float = 10.0) -> str:
    """Push to a Pushgateway under job=mlgen_drift, model=<name>; returns the group URL.

    PUT replaces the whole group after a successful run; a failed run POSTs (replacing only the
    metrics it sends), so the last verdict and last-success time survive it.
    """
    import urllib.error  # only with a Pushgateway: the textfile path needs no HTTP client
    import urllib.parse
    import urllib.request

    failed = report.exit_code == 2
    body = render_metrics(report, failed_only=failed).encode()
    model = urllib.parse.quote(report.model or "model", safe="")
    target = f"{url.rstrip('/')}/metrics/job/{JOB}/model/{model}"
    req = urllib.request.Request(target, data=body, method="POST" if failed else "PUT",
                                 headers={"Content-Type": "text/plain; version=0.0.4"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            resp.read()
    except (urllib.error.URLError, OSError) as exc:
        raise OSError(f"push to the Pushgateway at {url} failed: {exc}") from exc
    return target


def _previous_success(path: Path) -> float | None:
    try:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("mlgen_drift_last_success_timestamp_seconds"):
                return float(line.rsplit(" ", 1)[1])
    except (OSError, ValueError):
        return None
    return None


def write_textfile(report: DriftReport, directory: Path) -> Path:
    """mlgen_drift_<model>.prom for node-exporter's textfile collector, replaced atomically."""
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in (report.model or "model"))
    path = directory / f"mlgen_drift_{safe}.prom"
    failed = report.exit_code == 2
    text = render_metrics(report, failed_only=failed,
                          last_success=_previous_success(path) if failed else None)
    directory.mkdir(parents=True, exist_ok=True)
    # The collector must never read half a file: write beside it, then rename over it.
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".mlgen_drift.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)
    return path
