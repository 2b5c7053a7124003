"""`mlgen validate`: run the real linters and scanners over the generated pipeline files."""
from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path

import click

from ..errors import UsageError
from ..project import project_dir

# The values of CI that mean "running in CI" (the same set tests/conftest.py uses).
CI_TRUTHY = frozenset({"1", "true", "yes"})


def in_ci(environ: Mapping[str, str]) -> bool:
    return environ.get("CI", "").lower() in CI_TRUTHY


@click.command("validate")
@click.option("--rendered", is_flag=True,
              help="Check freshly rendered files (in a temporary folder) instead of those on disk.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True, help="Report format.")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              metavar="FILE", help="Write the report to FILE (the table still goes to stdout).")
@click.option("--require-all/--allow-skipped", "require_all", default=None,
              help="Fail (exit 1) when a tool is not installed; the default when CI is set "
                   "(CI=true). --allow-skipped only warns, even in CI.")
@click.option("--kubernetes-version", default=None, metavar="X.Y",
              help="Kubernetes version whose schemas manifests are validated against.")
@click.option("--tool", "tools", multiple=True, metavar="NAME",
              help="Run only this tool; repeatable.")
@click.pass_context
def command(ctx: click.Context, rendered: bool, fmt: str, output: Path | None,
            require_all: bool | None, kubernetes_version: str | None,
            tools: tuple[str, ...]) -> int:
    """Run yamllint, kustomize, kubernetes-validate, actionlint, zizmor, hadolint,
    npm-groovy-lint and checkov over the generated files.

    Each tool is reported on stderr as it starts and finishes. Exit 0 when clean, 1 on
    findings or, under --require-all (the default when CI is set), a tool not installed.
    A tool that was not installed is never a pass: the run ends "N tools skipped: ...".
    """
    from ..project import load_project, render_artifacts
    from ..validate.kubernetes import DEFAULT_VERSION
    from ..validate.progress import StderrProgress
    from ..validate.runner import TOOL_NAMES, Layout, validate_artifacts, validate_paths

    version = kubernetes_version or DEFAULT_VERSION
    if not re.fullmatch(r"1\.[0-9]{1,2}", version):
        raise UsageError(f"--kubernetes-version {version!r} must look like 1.35")
    unknown = [t for t in tools if t not in TOOL_NAMES]
    if unknown:
        raise UsageError(f"unknown tool(s) {', '.join(unknown)}; known: {', '.join(TOOL_NAMES)}")
    from ..monorepo import is_monorepo, repository_root, validation_jobs
    from ..validate.runner import merge_reports

    asked = project_dir(ctx)
    root = repository_root(asked)
    if is_monorepo(root):  # each model's files with its own layout; one report
        jobs = validation_jobs(root, asked)
    else:
        spec = load_project(root)
        jobs = [(render_artifacts(spec, root),
                 Layout(jenkinsfile=spec.outputs.jenkinsfile, workflows=spec.outputs.workflows,
                        dockerfile=spec.outputs.dockerfile, kubernetes=spec.outputs.kubernetes,
                        azure_pipelines=spec.ci.azure.path))]
    required_by = _required_by(require_all, os.environ)
    progress = StderrProgress(sys.stderr, live=sys.stderr.isatty())
    try:
        reports = [validate_artifacts(artifacts, layout, version, tools, progress) if rendered
                   else validate_paths(root, [a.path for a in artifacts], layout, version,
                                       tools, progress)
                   for artifacts, layout in jobs]
    finally:
        progress.close()
    report = merge_reports(reports)
    table = format_table(report, required_by)
    text = (json.dumps(report.as_dict(bool(required_by)), indent=2) + "\n" if fmt == "json"
            else table)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
        click.echo(table, nl=False)
    else:
        click.echo(text, nl=False)
        if fmt == "json":
            # stdout is the JSON alone; a person watching still sees the verdict.
            click.echo(table.splitlines()[-1], err=True)
    return 0 if report.passed(bool(required_by)) else 1


def _required_by(flag: bool | None, environ: Mapping[str, str]) -> str:
    """Why a skipped tool fails the run ("--require-all", "CI=true"), or "" when it only warns."""
    if flag is not None:
        return "--require-all" if flag else ""
    return f"CI={environ['CI']}" if in_ci(environ) else ""


def format_table(report: object, required_by: str) -> str:
    from ..validate.model import Report

    if not isinstance(report, Report):
        raise TypeError(f"validate returned {type(report).__name__}, not a Report")
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
    for run in report.skipped:
        lines.append(f"SKIPPED: {run.tool} not run: {run.reason}; install: {run.install}")
    ran = [r.tool for r in report.tools if r.status == "ran"]
    counts = f"{len(report.findings)} finding(s), ran: {', '.join(ran) or 'none'}"
    if not report.skipped:
        lines.append(f"{counts}: {'clean' if report.clean else 'NOT clean'}")
    else:
        # Never "clean" when a tool did not run: the last line names what was not checked.
        lines.append(counts + ("" if not report.findings else ": NOT clean"))
        names = ", ".join(r.tool for r in report.skipped)
        count = len(report.skipped)
        skipped = f"{count} tool{'' if count == 1 else 's'} skipped: {names}"
        lines.append(f"FAILED ({required_by}): {skipped}" if required_by else f"warning: {skipped}")
    return "\n".join(lines) + "\n"
