"""`mlgen gate`: check the trained model's metrics against mlgen.yaml's gate, write the reports."""
from __future__ import annotations

from pathlib import Path

import click

from ..errors import MlgenError
from ..project import project_dir


@click.command("gate")
@click.option("--metrics", "metrics_file", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Metrics JSON to check (default: model.metrics_file).")
@click.option("--champion", envvar="MLGEN_GATE_CHAMPION", default=None, metavar="FILE_OR_URL",
              help="The production model's metrics: a file or an http(s) URL "
                   "(env MLGEN_GATE_CHAMPION). A missing file or HTTP 404/410 is an error "
                   "unless --first-model is given.")
@click.option("--first-model", is_flag=True, envvar="MLGEN_GATE_FIRST_MODEL", default=False,
              help="There may be no production model yet: a --champion file that does not exist "
                   "(or an HTTP 404/410) passes the champion comparison with a note instead of "
                   "failing (env MLGEN_GATE_FIRST_MODEL=1). A champion that exists is still "
                   "compared.")
@click.option("--report-dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("reports/gate"), show_default=True,
              help="Where gate.json and gate.md (the PR comment) are written.")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=10.0, show_default=True,
              help="Seconds to wait for a champion URL.")
@click.pass_context
def command(ctx: click.Context, metrics_file: Path | None, champion: str | None,
            first_model: bool, report_dir: Path, timeout: float) -> int:
    """Check metrics against model.gate thresholds and the champion.

    Prints a table and writes REPORT_DIR/gate.json and gate.md. Exit 0 passed, 1 a check
    failed, 2 unusable input (no metrics file, a gated metric missing, champion unreachable,
    champion absent without --first-model).
    """
    return run_gate(project_dir(ctx), metrics_file, champion, report_dir, timeout, first_model)


def run_gate(folder: Path, metrics_file: Path | None, champion: str | None, report_dir: Path,
             timeout: float = 10.0, first_model: bool = False) -> int:
    from mlgen.models import gate

    from ..project import load_project

    spec = load_project(folder)
    rel = metrics_file if metrics_file is not None else Path(spec.model.metrics_file)
    reports = report_dir if report_dir.is_absolute() else folder / report_dir
    thresholds = {name: gate.Bound(t.min, t.max) for name, t in spec.model.gate.metrics.items()}
    c = spec.model.gate.champion
    rule = gate.ChampionRule(c.metric, c.min_delta, c.higher_is_better) if c else None
    try:
        metrics = gate.read_metrics(rel if rel.is_absolute() else folder / rel)
        info = gate.load_champion(champion, base=folder, timeout=timeout, first_model=first_model)
        result = gate.evaluate_gate(spec.name, str(rel), metrics, thresholds, rule, info)
    except MlgenError as exc:
        doc, markdown = gate.error_report(spec.name, str(exc))
        gate.write_reports(reports, doc, markdown)
        raise
    click.echo(gate.render_table(result))
    json_path, md_path = gate.write_reports(
        reports, gate.result_to_dict(result), gate.render_markdown(result)
    )
    click.echo(f"wrote {json_path} and {md_path}", err=True)
    return 0 if result.passed else 1
