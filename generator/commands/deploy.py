"""`mlgen deploy ENV`: apply an environment's overlay pinned to a pushed digest, wait, undo.

Parses options and calls `mlgen.deliver.deploy`; the logic lives there (see its docstrings).
"""
from __future__ import annotations

import json
from pathlib import Path

import click

from ..errors import EXIT_FAILURE, EXIT_OK
from ..project import project_dir


@click.command("deploy")
@click.argument("environment")
@click.option("--digest", metavar="sha256:...", help="The pushed image digest to run.")
@click.option("--digest-file", type=click.Path(dir_okay=False, path_type=Path),
              help="The JSON `mlgen push --digest-file` wrote.")
@click.option("--smoke-test", is_flag=True,
              help="After the rollout, GET the ready paths on a new pod through the API proxy.")
@click.option("--dry-run", type=click.Choice(["client", "server"]), is_flag=False,
              flag_value="client", default=None,
              help="client (the bare flag): print the pinned manifests; server: apply with "
                   "dryRun=All, store nothing, do not wait.")
@click.option("--diff", is_flag=True, help="Show what server-side apply would change vs live.")
@click.option("--force-conflicts", is_flag=True,
              help="Take over fields another field manager owns (server-side apply force).")
@click.option("--timeout", type=click.FloatRange(1, 7200), default=None,
              help="Seconds to wait for the rollout [default: the Deployment's "
                   "progressDeadlineSeconds, else 300; with an Argo Rollout its "
                   "progressDeadlineSeconds (600) + 30].")
@click.option("--request-timeout", type=click.FloatRange(0.1, 600), default=30.0,
              show_default=True, help="Seconds per API request before it is retried.")
@click.option("--poll-interval", type=click.FloatRange(0.01, 60), default=1.0, hidden=True)
@click.option("--context", "kube_context", default=None, help="kubeconfig context to use.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
@click.pass_context
def command(ctx: click.Context, environment: str, digest: str | None, digest_file: Path | None,
            smoke_test: bool, dry_run: str | None, diff: bool, force_conflicts: bool,
            timeout: float | None, request_timeout: float, poll_interval: float,
            kube_context: str | None, as_json: bool) -> int:
    """Deploy ENVIRONMENT's overlay with the image pinned to its digest, wait, roll back on failure.

    With an Argo Rollout in the overlay it waits for the Rollout: Healthy, or Paused at its
    canary step with the canary's pods ready (a new challenger); a failure aborts the canary.

    Exit codes: 0 rolled out (or dry run), 1 the rollout failed (rolled back when a previous
    revision exists) or the API refused, 2 usage error.
    """
    from ..deliver.deploy import default_timeout, deploy, pinned_objects
    from ..deliver.target import render_pinned, resolve_target
    from ..integrations.kubectl import Kubectl
    from ..integrations.kubernetes import Cluster, RetryPolicy

    target = resolve_target(project_dir(ctx), environment, digest, digest_file)
    if dry_run == "client":
        click.echo(render_pinned(Kubectl(context=kube_context), target), nl=False)
        return EXIT_OK
    objects = pinned_objects(target, kube_context)
    cluster = Cluster(context=kube_context, retry=RetryPolicy(request_timeout=request_timeout))
    result = deploy(target, cluster, objects,
                    timeout=timeout or default_timeout(objects, target.deployment),
                    force=force_conflicts, dry_run=dry_run == "server", diff=diff,
                    smoke=smoke_test, poll=poll_interval,
                    echo=lambda line: click.echo(line, err=not diff))
    if as_json:
        click.echo(json.dumps(result.as_json(), indent=2))
    elif result.result == "succeeded" and result.rollout.get("state") == "canary-paused":
        click.echo(f"deployed {result.image} to {environment} (namespace {target.namespace}): "
                   f"Rollout {result.rollout['name']} paused at its canary step, canary "
                   f"{result.rollout['weight']}%; `mlgen promote {environment}` decides")
    elif result.result == "succeeded":
        click.echo(f"deployed {result.image} to {environment} (namespace {target.namespace}, "
                   f"revision {result.revision})")
    elif result.result != "dry-run":
        click.echo(f"rollout of {result.image} to {environment} {result.result}"
                   + (f" (back on revision {result.previous_revision})"
                      if result.previous_revision else "") + f":\n{result.reason}", err=True)
    return EXIT_OK if result.result in ("succeeded", "dry-run") else EXIT_FAILURE
