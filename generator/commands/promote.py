"""`mlgen promote ENV`: promote the canary challenger or roll it back, from live metrics."""
from __future__ import annotations

import json

import click

from ..project import project_dir


@click.command("promote")
@click.argument("environment")
@click.option("--champion", "champion_url", envvar="MLGEN_PROMOTE_CHAMPION", required=True,
              metavar="URL", help="The champion's /metrics URL, e.g. through `kubectl "
              "port-forward deployment/NAME` (env MLGEN_PROMOTE_CHAMPION).")
@click.option("--challenger", "challenger_url", envvar="MLGEN_PROMOTE_CHALLENGER",
              required=True, metavar="URL", help="The challenger's /metrics URL "
              "(env MLGEN_PROMOTE_CHALLENGER).")
@click.option("--apply", "do_apply", is_flag=True,
              help="Carry the decision out with kubectl (KUBECONFIG from the environment).")
@click.option("--dry-run", is_flag=True, help="Print the kubectl steps without running them.")
@click.option("--json", "as_json", is_flag=True, help="Print the checks and the plan as JSON.")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=10.0, show_default=True,
              help="Seconds to wait for each /metrics answer.")
@click.pass_context
def command(ctx: click.Context, environment: str, champion_url: str, challenger_url: str,
            do_apply: bool, dry_run: bool, as_json: bool, timeout: float) -> int:
    """Compare the challenger's metrics with the thresholds and decide.

    Reads both servers' /metrics, checks the challenger's error rate, p95 latency and the PSI
    between the two prediction distributions against kubernetes.challenger.thresholds.
    Exit 0 promote, 1 roll back, 2 unusable input (no challenger, unreachable server, too few
    requests).
    """
    from ..integrations import k8s_promote
    from ..promote import evaluate

    result = evaluate(project_dir(ctx), environment, champion_url, challenger_url, timeout)
    steps = k8s_promote.plan(result.namespace, result.name, result.challenger_image,
                             result.decision.promote)
    if as_json:
        doc = {**result.decision.as_dict(), "environment": environment,
               "plan": [s.shown() for s in steps], "applied": do_apply and not dry_run}
        click.echo(json.dumps(doc, indent=2, sort_keys=True))
    else:
        from ..promote import table

        click.echo(table(result.decision))
        if dry_run or not do_apply:
            click.echo("plan" + (" (--apply runs it)" if not do_apply else "") + ":")
            for step in steps:
                click.echo(f"  {step.shown()}  # {step.why}")
    if do_apply and not dry_run:
        k8s_promote.apply(steps, lambda line: click.echo(line, err=True))
        if result.decision.promote:
            click.echo(f"promoted: set version to {result.challenger_tag} and remove "
                       "kubernetes.challenger in mlgen.yaml, or the next deploy brings the "
                       "old champion back", err=True)
    return 0 if result.decision.promote else 1
