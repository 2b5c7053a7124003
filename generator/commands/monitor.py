"""`mlgen monitor`: live model performance from returned labels; a real drop exits 1.

Options win over mlgen.yaml's `monitor:` section. The computation is mlgen.models.monitor
(it decides whether a retrain is asked for); this command runs the `monitor.on_drop` actions,
the retrain one through the hook named by drift.retrain_hook (mlgen.publish.retrain).
Exit codes: 0 no real drop (or too few labels), 1 a real drop, 2 bad input.
"""
from __future__ import annotations

import dataclasses
import os
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click

from ..errors import UsageError, require_extra
from ..project import load_project, project_dir


def _duration(text: str | None, what: str) -> timedelta | None:
    from mlgen.models.drift.run import parse_window

    if text is not None and text.strip() == "0":
        return timedelta(0)
    try:
        return parse_window(text)
    except ValueError as exc:
        raise UsageError(f"{what}: {exc}") from None


def lean_allocator() -> None:
    """Arrow's jemalloc for this process on Linux (where pyarrow's wheels carry it), when
    pyarrow is not loaded yet (a `mlgen monitor` process): it hands freed blocks back to the
    system within a second, where mimalloc (the default) keeps them, which cuts the peak RSS
    of a big window by a fifth at the same speed (docs/benchmarks.md). Arrow reads the pool
    from the environment when it loads; a value the user set wins."""
    if "pyarrow" not in sys.modules and sys.platform.startswith("linux"):
        os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "jemalloc")


def parse_now(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        now = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--now {text!r}: not an RFC 3339 time") from None
    return now if now.tzinfo else now.replace(tzinfo=UTC)


@click.command("monitor")
@click.option("--predictions", type=click.Path(path_type=Path),
              help="The request log folder or a requests.jsonl [spec: monitor.predictions, "
                   "else serve.request_log.path].")
@click.option("--labels", type=click.Path(path_type=Path),
              help="labels.jsonl, a CSV/Parquet file (id,label[,labelled_at]) or a folder "
                   "[spec: monitor.labels, else labels.jsonl beside the request log].")
@click.option("--window", help="Predictions this recent, e.g. 7d; 'all' [spec: monitor.window].")
@click.option("--label-delay", help="Outcomes take this long, e.g. 3d [spec].")
@click.option("--now", "now_text", metavar="RFC3339",
              help="Evaluate as of this time instead of now (a re-run of a past window).")
@click.option("--min-labels", type=int, help="Fewer labels: no verdict [spec: monitor.min_labels].")
@click.option("--metrics-file", type=click.Path(dir_okay=False, path_type=Path),
              help="Training-time metrics JSON [spec: model.metrics_file].")
@click.option("--max-drop", "max_drops", multiple=True, metavar="METRIC=VALUE",
              help="Allowed absolute drop of a metric (repeatable) [spec: monitor.max_drop].")
@click.option("-o", "--report-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where monitor-report.{json,md,html} go [spec: monitor.report_dir].")
@click.option("--textfile-dir", type=click.Path(file_okay=False, path_type=Path),
              help="node-exporter textfile collector folder [spec: monitor.textfile_dir].")
@click.option("--parts", type=click.IntRange(1, 4096),
              help="Join in this many parts by request id, one in memory at a time "
                   "[default: one per 48 MB of input].")
@click.option("--spill-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Scratch folder for a big window's parts, about 30 bytes + the id per "
                   "prediction and label, deleted after the run [default: $TMPDIR].")
@click.option("--json", "as_json", is_flag=True, help="Print the JSON report on stdout.")
@click.option("--dry-run", is_flag=True, help="Say what on_drop would do; trigger nothing.")
@click.pass_context
def command(ctx: click.Context, /, **opts: Any) -> int:
    """Join labels to logged predictions over the window and compare with training.

    Exit codes: 0 no real drop (or fewer labels than min_labels), 1 a real drop (the metric,
    the drop and the window are named), 2 bad input.
    """
    lean_allocator()
    require_extra("pyarrow", "runtime", "mlgen monitor")
    from mlgen.models.gate import GateInputError, read_metrics
    from mlgen.models.monitor.report import to_json, to_markdown, write_reports, write_textfile
    from mlgen.models.monitor.run import Settings, run_monitor

    root = project_dir(ctx)
    spec = load_project(root)
    m = spec.monitor
    log_dir = Path(spec.serve.request_log.path)
    predictions = opts["predictions"] or (root / m.predictions if m.predictions else log_dir)
    labels = opts["labels"] or (root / m.labels if m.labels else
                                (predictions if predictions.is_dir() else predictions.parent))
    metrics_file = opts["metrics_file"] or root / spec.model.metrics_file
    try:
        training = {k: float(v) for k, v in read_metrics(metrics_file).items()
                    if isinstance(v, int | float)}
    except GateInputError as exc:
        click.echo(f"warning: no training metrics to compare with: {exc}", err=True)
        training = {}
    max_drop: dict[str, float] = {str(k): v for k, v in m.max_drop.items()}
    for item in opts["max_drops"]:
        key, sep, value = item.partition("=")
        try:
            max_drop[key.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise UsageError(f"--max-drop {item!r}: use METRIC=NUMBER, e.g. roc_auc=0.03")
    now = parse_now(opts["now_text"])
    settings = Settings(
        task=spec.model.task, metrics=tuple(m.metrics),
        window=_duration(opts["window"] or m.window, "--window"),
        label_delay=_duration(opts["label_delay"] or m.label_delay, "--label-delay")
        or timedelta(0),
        min_labels=opts["min_labels"] if opts["min_labels"] is not None else m.min_labels,
        max_drop=max_drop, max_relative_drop=m.max_relative_drop, training=training,
        gate={k: (t.min, t.max) for k, t in spec.model.gate.metrics.items()},
        model=spec.name, now=now, parts=opts["parts"], spill_dir=opts["spill_dir"])
    report = run_monitor(predictions, labels, settings)
    if report.parts > 1:
        click.echo(f"joined in {report.parts} parts by request id (scratch files under "
                   f"{opts['spill_dir'] or tempfile.gettempdir()}, removed)", err=True)
    actions = _actions(report, m.on_drop, spec, root, opts["dry_run"])
    report = dataclasses.replace(report, actions=tuple(actions))

    out_dir = opts["report_dir"] or root / m.report_dir
    paths = write_reports(report, out_dir)
    click.echo(f"reports: {paths['json']}, {paths['markdown'].name}, {paths['html'].name}",
               err=True)
    textfile = opts["textfile_dir"] or (root / m.textfile_dir if m.textfile_dir else None)
    if textfile:
        try:
            click.echo(f"metrics written to {write_textfile(report, Path(textfile))}", err=True)
        except OSError as exc:  # a side channel: the verdict stands
            click.echo(f"warning: {exc}", err=True)
    if opts["as_json"]:
        click.echo(to_json(report))
    else:
        click.echo(to_markdown(report), nl=False)
    if report.error:
        click.echo(f"error: {report.error}", err=True)
    elif report.drops:
        click.echo(f"PERFORMANCE DROP [{spec.name}]: {report.reason}", err=True)
    return report.exit_code


def _actions(report: Any, on_drop: tuple[str, ...], spec: Any, root: Path,
             dry_run: bool) -> list[dict[str, Any]]:
    done: list[dict[str, Any]] = []
    if not report.retrain_requested:
        return done
    for action in on_drop:
        if action == "alert":
            done.append({"action": "alert", "status": "sent", "detail": report.reason})
            continue
        hook = spec.drift.retrain_hook
        if hook in ("", "none"):
            done.append({"action": "retrain", "status": "skipped",
                         "detail": "drift.retrain_hook is 'none'"})
            continue
        if dry_run:
            done.append({"action": "retrain", "status": "dry-run", "hook": hook,
                         "detail": f"would start {hook}: {report.reason}"})
            click.echo(f"dry run: would start a retraining via {hook}", err=True)
            continue
        from ..publish.retrain import RetrainError, start_retrain

        details = {"model": report.model, "window": dict(report.window),
                   "drops": [d.metric for d in report.drops],
                   "labelled": report.counts.get("labelled")}
        try:
            ref = start_retrain(hook, spec, f"performance drop: {report.reason}", details,
                                project_dir=root)
        except RetrainError as exc:
            click.echo(f"retrain hook {hook!r} failed: {exc}", err=True)
            done.append({"action": "retrain", "status": "failed", "hook": hook,
                         "detail": str(exc)})
            continue
        click.echo(f"retrain started via {hook}: {ref}", err=True)
        done.append({"action": "retrain", "status": "triggered", "hook": hook, "detail": ref})
    return done
