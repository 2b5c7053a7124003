"""`mlgen drift`: compare the current window against the reference profile.

Options win over mlgen.yaml's `drift:` section (read from the -C folder when there is one);
with `--reference` and `--current` it runs without a spec. Exit codes: 0 no drift, 1 drift,
2 error (nothing could be computed, or a usage error).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import click
from mlgen.models.contract import SPEC_FILENAME

from ..errors import MlgenError, UsageError, require_extra
from ..project import Project, project_dir

_SPEC_THRESHOLDS = {"ks_pvalue": "ks", "chi2_pvalue": "chi2"}


@click.command("drift")
@click.option("--reference", type=click.Path(dir_okay=False, path_type=Path),
              help="Reference profile JSON [spec: drift.reference].")
@click.option("--current", type=click.Path(path_type=Path),
              help="Current window: a request-log folder, .jsonl, .csv or .parquet file, or a "
                   "folder of them [spec: drift.current, else serve.request_log.path].")
@click.option("--window", help="Only rows whose ts is this recent, e.g. 24h; 'all' for every "
              "row [spec: drift.window].")
@click.option("--numeric-method", help="auto|wasserstein|psi|jensenshannon|ks [spec].")
@click.option("--categorical-method", help="auto|jensenshannon|psi|chi2 [spec].")
@click.option("--threshold", "thresholds", multiple=True, metavar="NAME=VALUE",
              help="Override a threshold: wasserstein, psi, jensenshannon, ks (ks_pvalue), chi2 "
                   "(chi2_pvalue), missing_rate, share (repeatable) [spec: drift.thresholds].")
@click.option("--min-rows", type=int, help="Fewer rows than this: reported as too few, never "
              "drift [spec: drift.min_rows; 100].")
@click.option("--chunk-rows", type=int, help="Rows per streamed chunk (bounds memory) [50000].")
@click.option("-o", "--report-dir", "--output-dir", "output_dir",
              type=click.Path(file_okay=False, path_type=Path),
              help="Where drift-report.{json,md,html} go [spec: drift.report_dir]. The generated "
                   "CronJob passes --report-dir.")
@click.option("--json", "as_json", is_flag=True, help="Print the JSON report on stdout.")
@click.option("--pushgateway", help="Pushgateway URL [spec: drift.pushgateway].")
@click.option("--textfile-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for node-exporter's textfile collector [spec: drift.textfile_dir].")
@click.option("--no-actions", is_flag=True, help="Do not run drift.on_drift (alert, retrain).")
@click.option("--model", "model_name", help="Model name in metrics and reports; rows whose "
              "`model` field names another model are dropped and counted [spec: name; without a "
              "spec: the reference profile's model].")
@click.pass_context
def command(ctx: click.Context, /, **opts: Any) -> int:
    """Detect data drift of the current window against the reference profile.

    The window defaults to drift.current, else the folder the server logs requests to
    (serve.request_log.path). A log shared by several models is fine: other models' rows are
    dropped and reported (current.rows_other_models in --json, a problem line in the text).

    Exit codes: 0 no drift, 1 drift (dataset share of drifted features >= threshold),
    2 error: nothing could be computed.
    """
    require_extra("pyarrow", "runtime", "mlgen drift")
    from mlgen.models.drift.actions import run_actions
    from mlgen.models.drift.detect import DriftSettings, Thresholds, with_methods
    from mlgen.models.drift.metrics import push, write_textfile
    from mlgen.models.drift.report import to_json, to_markdown, write_reports
    from mlgen.models.drift.run import parse_window, run_drift

    root = project_dir(ctx)
    spec = _load_spec_if_any(root, need=not (opts["reference"] and opts["current"]))
    d = spec.drift if spec is not None else None

    def from_spec(key: str, default: Any = None) -> Any:
        return getattr(d, key, default) if d is not None else default

    reference = opts["reference"] or root / from_spec("reference")
    current = opts["current"] or _default_current(root, spec)
    th: dict[str, float] = {}
    if d is not None:
        for key, value in d.thresholds.model_dump().items():
            th[_SPEC_THRESHOLDS.get(key, key)] = float(value)
    for item in opts["thresholds"]:
        key, sep, value = item.partition("=")
        key = _SPEC_THRESHOLDS.get(key.strip(), key.strip())
        if not sep or key not in {f.name for f in dataclasses.fields(Thresholds)}:
            raise UsageError(f"--threshold {item!r}: use NAME=VALUE with NAME one of "
                             + ", ".join(f.name for f in dataclasses.fields(Thresholds)))
        try:
            th[key] = float(value)
        except ValueError as exc:
            raise UsageError(f"--threshold {item!r}: {value!r} is not a number") from exc
    settings = DriftSettings(thresholds=Thresholds(**th))
    min_rows = opts["min_rows"] if opts["min_rows"] is not None else from_spec("min_rows")
    if min_rows is not None:
        settings = dataclasses.replace(settings, min_rows=max(1, int(min_rows)))
    if opts["chunk_rows"] is not None:
        if opts["chunk_rows"] < 1:
            raise UsageError("--chunk-rows must be at least 1")
        settings = dataclasses.replace(settings, chunk_rows=opts["chunk_rows"])
    methods = getattr(d, "methods", None)
    try:
        settings = with_methods(
            settings,
            opts["numeric_method"] or getattr(methods, "numeric", None),
            opts["categorical_method"] or getattr(methods, "categorical", None),
        )
        window = parse_window(opts["window"] if opts["window"] is not None
                              else from_spec("window", None))
    except ValueError as exc:
        raise UsageError(str(exc)) from exc

    model = opts["model_name"] or (spec.name if spec is not None else None)
    report = run_drift(reference, current, settings, window=window, model=model)
    if not opts["no_actions"] and spec is not None:
        actions = run_actions(report, from_spec("on_drift", ()),
                              hook=from_spec("retrain_hook", "none"),
                              trigger=_retrain_trigger(spec, root),
                              echo=lambda t: click.echo(t, err=True))
        report = dataclasses.replace(report, actions=tuple(actions))

    out_dir = opts["output_dir"] or (root / from_spec("report_dir") if d is not None else None)
    if out_dir is not None:
        paths = write_reports(report, out_dir)
        click.echo(f"reports: {paths['json']}, {paths['markdown'].name}, {paths['html'].name}",
                   err=True)
    textfile = opts["textfile_dir"] or (root / from_spec("textfile_dir")
                                        if from_spec("textfile_dir") else None)
    _publish_metrics(report, opts["pushgateway"] or from_spec("pushgateway"), textfile, push,
                     write_textfile)
    if opts["as_json"]:
        click.echo(to_json(report))
    else:
        click.echo(to_markdown(report), nl=False)
    if report.exit_code == 2:
        click.echo(f"error: {report.error}", err=True)
    return report.exit_code


def _publish_metrics(
    report: Any, gateway: str | None, textfile: Any, push: Any, write: Any
) -> None:
    try:
        if gateway:
            click.echo(f"metrics pushed to {push(report, gateway)}", err=True)
        elif textfile:
            click.echo(f"metrics written to {write(report, Path(textfile))}", err=True)
    except OSError as exc:
        # Metrics are a side channel: the verdict and exit code still stand.
        click.echo(f"warning: {exc}", err=True)


def _retrain_trigger(spec: Any, root: Path) -> Any:
    """Drift's retrain decision, carried out: the spec's retrain hook, run from the -C folder."""
    from mlgen.models.drift.actions import ActionFailed, RetrainRequest

    def trigger(request: RetrainRequest) -> str:
        from ..publish.retrain import RetrainError, start_retrain

        try:
            return start_retrain(request.hook, spec, request.reason, request.details,
                                 project_dir=root)
        except RetrainError as exc:
            raise ActionFailed(str(exc)) from exc

    return trigger


def _load_spec_if_any(root: Path, *, need: bool) -> Any:
    project = Project(root)
    if need and not project.has_spec():
        raise UsageError(f"{project.spec_path} not found: give --reference and --current, or run "
                         f"in (or -C) a model repository with {SPEC_FILENAME}")
    return project.load_optional()


def _default_current(root: Path, spec: Any) -> Path:
    if spec is None:  # unreachable: _load_spec_if_any insists on a spec without --current
        raise MlgenError("no current window given")
    if spec.drift.current:
        return root / str(spec.drift.current)
    return Path(spec.serve.request_log.path)

