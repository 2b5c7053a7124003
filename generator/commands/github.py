"""`mlgen github ...`: direct GitHub actions (today: trigger a workflow_dispatch)."""
from __future__ import annotations

import click

from ..errors import UsageError
from ..project import Project, project_dir
from ._github_common import resolve_repository


@click.group("github")
def command() -> None:
    """GitHub actions mlgen drives: workflow dispatch."""


def parse_inputs(pairs: tuple[str, ...]) -> dict[str, str]:
    inputs: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"-f {pair!r}: expected key=value")
        inputs[key] = value
    if len(inputs) > 25:  # GitHub's limit for workflow_dispatch inputs
        raise UsageError(f"{len(inputs)} inputs given; GitHub accepts at most 25")
    return inputs


@command.command("dispatch")
@click.option("--workflow", required=True, metavar="FILE",
              help="Workflow file name (e.g. retrain.yml) or id.")
@click.option("--ref", default=None, help="Branch or tag to run on (default: the spec's "
              "ci.github.default_branch, else main).")
@click.option("-f", "--field", "fields", multiple=True, metavar="KEY=VALUE",
              help="A workflow input; repeat for more.")
@click.option("--repo", default=None, metavar="OWNER/NAME")
@click.pass_context
def dispatch(ctx: click.Context, workflow: str, ref: str | None, fields: tuple[str, ...],
             repo: str | None) -> int:
    """Trigger WORKFLOW with workflow_dispatch and inputs."""
    from ..integrations.github import client as gh

    folder = project_dir(ctx)
    repository = resolve_repository(repo, folder)
    if ref is None:
        spec = Project(folder).load_optional()
        ref = spec.ci.github.default_branch if spec is not None else "main"
    url = gh.dispatch_workflow(gh.connect(), repository, workflow, ref, parse_inputs(fields))
    click.echo(f"mlgen github dispatch: {workflow} on {repository}@{ref} triggered: {url}")
    return 0
