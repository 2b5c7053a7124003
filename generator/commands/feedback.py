"""`mlgen feedback --labels FILE`: store ground-truth labels for logged predictions.

Exit codes: 0 stored (unknown, duplicate and late ids are counted and reported, never
dropped), 2 bad input (the file and the row are named).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ..errors import UsageError, require_extra
from ..project import load_project, project_dir
from .monitor import _duration, parse_now


@click.command("feedback")
@click.option("--labels", "labels_file", required=True,
              type=click.Path(dir_okay=False, path_type=Path),
              help="CSV, Parquet or JSONL with columns id,label and optionally labelled_at.")
@click.option("--store", type=click.Path(file_okay=False, path_type=Path),
              help="Folder of labels.jsonl [spec: monitor.labels, else the request log folder].")
@click.option("--predictions", type=click.Path(path_type=Path),
              help="Request log to count unknown/late ids against [spec: serve.request_log.path].")
@click.option("--now", "now_text", metavar="RFC3339",
              help="Count late labels as of this time instead of now.")
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
@click.option("--dry-run", is_flag=True, help="Validate and count; write nothing.")
@click.pass_context
def command(ctx: click.Context, labels_file: Path, store: Path | None,
            predictions: Path | None, now_text: str | None, as_json: bool,
            dry_run: bool) -> int:
    """Validate a labels file, append it to the labels store and report the counts."""
    require_extra("pyarrow", "runtime", "mlgen feedback")
    from mlgen.models.monitor.data import MonitorInputError
    from mlgen.models.monitor.store import ingest

    root = project_dir(ctx)
    spec = load_project(root)
    log_dir = Path(spec.serve.request_log.path)
    preds = predictions or log_dir
    folder = store or (root / spec.monitor.labels if spec.monitor.labels else
                       (preds if preds.is_dir() or not preds.suffix else preds.parent))
    try:
        counts: dict[str, Any] = ingest(
            labels_file, folder, preds, numeric=spec.model.task == "regression",
            window=_duration(spec.monitor.window, "monitor.window"), model=spec.name,
            now=parse_now(now_text), dry_run=dry_run)
    except MonitorInputError as exc:
        raise UsageError(str(exc)) from None
    if as_json:
        click.echo(json.dumps(counts, sort_keys=True))
    else:
        verb = "would write" if dry_run else "wrote"
        click.echo(
            f"{counts['rows']} labels: {verb} {counts['rows'] if dry_run else counts['written']}"
            f" to {counts['store']}; unknown ids {counts['unknown_ids']}, duplicates "
            f"{counts['duplicates']}, late (prediction outside monitor.window) "
            f"{counts['late']}"
        )
    return 0
