"""`mlgen status [ENV]`: the image digest, model version, replicas and last rollout per
environment, read from the cluster. Logic: `mlgen.deliver.status`."""
from __future__ import annotations

import json

import click

from ..errors import EXIT_OK, UsageError
from ..project import project_dir


@click.command("status")
@click.argument("environment", required=False)
@click.option("--context", "kube_context", default=None, help="kubeconfig context to use.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list, one object per env.")
@click.pass_context
def command(ctx: click.Context, environment: str | None, kube_context: str | None,
            as_json: bool) -> int:
    """Show what runs in ENVIRONMENT (default: every environment in mlgen.yaml)."""
    from ..deliver.status import environment_status, table
    from ..integrations.kubernetes import Cluster
    from ..project import load_project

    spec = load_project(project_dir(ctx))
    names = spec.kubernetes.environments
    if environment is not None and environment not in names:
        raise UsageError(f"unknown environment {environment!r}; mlgen.yaml "
                         f"kubernetes.environments lists: {', '.join(names)}")
    cluster = Cluster(context=kube_context)
    rows = [environment_status(cluster, env, spec.namespace, spec.name)
            for env in ([environment] if environment else names)]
    if as_json:
        click.echo(json.dumps([r.as_json() for r in rows], indent=2))
    else:
        click.echo(table(rows))
    return EXIT_OK
