"""`mlgen comment --pr N`: post (or update) the one mlgen report comment on a pull request."""
from __future__ import annotations

from pathlib import Path

import click

from ..project import Project, project_dir
from ..publish.github.report import ReportInputs, compose_report, report_marker
from ._github_common import resolve_repository


def _path(folder: Path, value: str | None) -> Path | None:
    if not value:
        return None
    p = Path(value)
    return p if p.is_absolute() else folder / p


@click.command("comment")
@click.option("--pr", "pr_number", type=int, required=True, help="Pull request number.")
@click.option("--repo", default=None, metavar="OWNER/NAME",
              help="Default: $GITHUB_REPOSITORY, then ci.github.repository in mlgen.yaml.")
@click.option("--sync-status", default="reports/sync.json", show_default=True,
              help="JSON from `mlgen check` (file or folder); omitted when missing.")
@click.option("--findings", default="reports/validation.json", show_default=True,
              help="Validation findings JSON; omitted when missing.")
@click.option("--gate", default="reports/gate", show_default=True,
              help="Gate report (.md or .json, or the folder holding it); omitted when missing.")
@click.option("--drift", default="reports/drift", show_default=True,
              help="Drift summary Markdown (or its folder); omitted when missing.")
@click.option("--dry-run", is_flag=True, help="Print the comment instead of posting it.")
@click.pass_context
def command(ctx: click.Context, pr_number: int, repo: str | None, sync_status: str,
            findings: str, gate: str, drift: str, dry_run: bool) -> int:
    """Compose one Markdown report from this build's files and upsert it on PR N.

    The comment is found again by a hidden marker AND by the token's own user, so each PR
    carries exactly one report and nobody else's comment can stand in for it.
    """
    from ..monorepo import monorepo_of

    folder = project_dir(ctx)
    inputs = ReportInputs(sync=_path(folder, sync_status), findings=_path(folder, findings),
                          gate=_path(folder, gate), drift=_path(folder, drift))
    # One model of a monorepo: its own report comment, named after it.
    model = Project(folder).load().name if monorepo_of(folder) else None
    marker = report_marker(model)
    body = compose_report(inputs, f"mlgen report: {model}" if model else "mlgen report", marker)
    if dry_run:
        click.echo(body, nl=False)
        return 0
    from ..integrations.github import client as gh

    repository = resolve_repository(repo, folder)
    client = gh.connect()
    action, comment_id = gh.upsert_comment(client, repository, pr_number, marker, body)
    click.echo(f"mlgen comment: {action} comment {comment_id} on {repository}#{pr_number}")
    return 0
