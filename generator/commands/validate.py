"""`mlgen validate`: run the real linters and scanners over the generated pipeline files."""
from __future__ import annotations

import json
import re
from pathlib import Path

import click

from ..cli import project_dir
from ..errors import UsageError


@click.command("validate")
@click.option("--rendered", is_flag=True,
              help="Check freshly rendered files (in a temporary folder) instead of those on disk.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True, help="Report format.")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              metavar="FILE", help="Write the report to FILE (the table still goes to stdout).")
@click.option("--require-all", is_flag=True,
              help="Fail when a tool is not installed (CI uses this): a skip is never a pass.")
@click.option("--kubernetes-version", default=None, metavar="X.Y",
              help="Kubernetes version whose schemas manifests are validated against.")
@click.option("--tool", "tools", multiple=True, metavar="NAME",
              help="Run only this tool; repeatable.")
@click.pass_context
def command(ctx: click.Context, rendered: bool, fmt: str, output: Path | None,
            require_all: bool, kubernetes_version: str | None, tools: tuple[str, ...]) -> int:
    """Run yamllint, kustomize, kubernetes-validate, actionlint, zizmor, hadolint,
    npm-groovy-lint and checkov over the generated files.

    Exit 0 when clean, 1 on findings (or, with --require-all, a tool not installed).
    """
    from ..project import load_project, render_artifacts
    from ..validate.kubernetes import DEFAULT_VERSION
    from ..validate.runner import TOOL_NAMES, Layout, validate_artifacts, validate_paths

    version = kubernetes_version or DEFAULT_VERSION
    if not re.fullmatch(r"1\.[0-9]{1,2}", version):
        raise UsageError(f"--kubernetes-version {version!r} must look like 1.35")
    unknown = [t for t in tools if t not in TOOL_NAMES]
    if unknown:
        raise UsageError(f"unknown tool(s) {', '.join(unknown)}; known: {', '.join(TOOL_NAMES)}")
    root = project_dir(ctx)
    spec = load_project(root)
    artifacts = render_artifacts(spec, root)
    layout = Layout(jenkinsfile=spec.outputs.jenkinsfile, workflows=spec.outputs.workflows,
                    dockerfile=spec.outputs.dockerfile, kubernetes=spec.outputs.kubernetes)
    if rendered:
        report = validate_artifacts(artifacts, layout, version, tools)
    else:
        report = validate_paths(root, [a.path for a in artifacts], layout, version, tools)
    table = format_table(report, require_all)
    text = json.dumps(report.as_dict(require_all), indent=2) + "\n" if fmt == "json" else table
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
        click.echo(table, nl=False)
    else:
        click.echo(text, nl=False)
    return 0 if report.clean(require_all) else 1


def format_table(report: object, require_all: bool) -> str:
    from ..validate.model import Report

    assert isinstance(report, Report)
    lines: list[str] = []
    if report.findings:
        rows = [("FILE", "TOOL", "RULE", "LINE", "MESSAGE")]
        rows += [(f.file or "-", f.tool, f.rule, str(f.line) if f.line else "-", f.message)
                 for f in report.findings]
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        for row in rows:
            cells = [row[i].ljust(min(widths[i], 60)) for i in range(4)]
            lines.append("  ".join(cells) + "  " + " ".join(row[4].split()))
        lines.append("")
    for note in report.notes:
        lines.append(f"note: {note.file}: {note.tool}: {note.message}")
    for run in report.tools:
        if run.status == "skipped":
            word = "FAILED (--require-all)" if require_all else "SKIPPED"
            lines.append(f"{word}: {run.tool} not run: {run.reason}; install: {run.install}")
    ran = [r.tool for r in report.tools if r.status == "ran"]
    verdict = "clean" if report.clean(require_all) else "NOT clean"
    lines.append(f"{len(report.findings)} finding(s), {len(report.skipped)} tool(s) skipped, "
                 f"ran: {', '.join(ran) or 'none'}: {verdict}")
    return "\n".join(lines) + "\n"
