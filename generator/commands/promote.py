"""`mlgen promote ENV`: promote the challenger (canary or shadow) or roll it back, from live
metrics.

Parses options and calls `mlgen.promote` (the decision) and `mlgen.deliver.canary` (carrying
it out through the `kubernetes` client); the logic lives there.
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from ..errors import EXIT_FAILURE, EXIT_OK, UsageError
from ..project import project_dir

if TYPE_CHECKING:
    from ..promote import Setup


@click.command("promote")
@click.argument("environment")
@click.option("--champion", "champion_url", envvar="MLGEN_PROMOTE_CHAMPION", metavar="URL",
              help="The champion's /metrics URL, e.g. through `kubectl port-forward "
              "deployment/NAME` (env MLGEN_PROMOTE_CHAMPION).")
@click.option("--challenger", "challenger_url", envvar="MLGEN_PROMOTE_CHALLENGER",
              metavar="URL", help="The challenger's /metrics URL "
              "(env MLGEN_PROMOTE_CHALLENGER).")
@click.option("--from-cluster", is_flag=True,
              help="Read both Deployments' pods' /metrics through the API server's pod "
                   "proxy instead of --champion/--challenger URLs.")
@click.option("--apply", "do_apply", is_flag=True,
              help="Carry the decision out on the cluster (server-side apply as mlgen, "
                   "KUBECONFIG from the environment).")
@click.option("--dry-run", is_flag=True, help="Print the plan without changing anything.")
@click.option("--json", "as_json", is_flag=True, help="Print the checks and the plan as JSON.")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=10.0, show_default=True,
              help="Seconds to wait for each /metrics answer.")
@click.option("--rollout-timeout", type=click.FloatRange(1, 7200), default=600.0,
              show_default=True, help="Seconds to wait for the champion's rollout.")
@click.option("--context", "kube_context", default=None, help="kubeconfig context to use.")
@click.option("--poll-interval", type=click.FloatRange(0.01, 60), default=1.0, hidden=True)
@click.pass_context
def command(ctx: click.Context, environment: str, champion_url: str | None,
            challenger_url: str | None, from_cluster: bool, do_apply: bool, dry_run: bool,
            as_json: bool, timeout: float, rollout_timeout: float, kube_context: str | None,
            poll_interval: float) -> int:
    """Compare the challenger's metrics with the thresholds and decide.

    Reads both servers' /metrics, checks the challenger's error rate, p95 latency and the PSI
    between the two prediction distributions against kubernetes.challenger.thresholds; for a
    shadow challenger also the champion's failed mirror copies (against max_error_rate) and
    the share of rows the shadow predicted differently (reported).
    With --apply, promote gives the champion the challenger's image (rolled back by itself
    when the rollout fails) and scales the challenger to 0; roll back scales it to 0. With
    kubernetes.challenger.engine argo-rollouts, --apply promotes the paused Rollout (as
    `kubectl argo rollouts promote`, waiting for it to be Healthy) or aborts it.
    Exit 0 promoted, 1 rolled back (or the promote rollout failed), 2 unusable input (no
    challenger, unreachable server, too few requests).
    """
    from ..deliver import canary as apply_canary
    from ..promote import evaluate, scrape, setup

    urls = champion_url is not None or challenger_url is not None
    if from_cluster == urls or (urls and not (champion_url and challenger_url)):
        raise UsageError("give --from-cluster, or both --champion URL and --challenger URL")
    found = setup(project_dir(ctx), environment)
    if found.engine == "argo-rollouts":
        return _argo(found, champion_url, challenger_url, from_cluster, do_apply and not dry_run,
                     do_apply, as_json, timeout, rollout_timeout, kube_context, poll_interval)
    canary = apply_canary.Canary(found.namespace, found.name)
    cluster = None
    if from_cluster or do_apply:
        from ..integrations.kubernetes import Cluster, RetryPolicy

        cluster = Cluster(context=kube_context, retry=RetryPolicy(request_timeout=timeout))
    if cluster is not None and from_cluster:
        from mlgen.models.contract import METRICS_PATH

        texts = [apply_canary.cluster_metrics(cluster, found.namespace, name, found.port,
                                              METRICS_PATH)
                 for name in (canary.champion, canary.challenger)]
    else:
        texts = [scrape(str(url), timeout) for url in (champion_url, challenger_url)]
    decision = evaluate(found.limits, texts[0], texts[1], found.mode)
    image = found.challenger_image
    if cluster is not None and decision.promote:
        image = apply_canary.live_challenger_image(cluster, canary)
    steps = apply_canary.plan(canary, decision.promote, image)
    applying = do_apply and not dry_run
    if not as_json:
        _show(decision, steps, applying, do_apply)
    doc: dict[str, Any] = {**decision.as_dict(), "environment": environment,
                           "plan": [s.action for s in steps], "applied": applying}
    code = EXIT_OK if decision.promote else EXIT_FAILURE
    if applying and cluster is not None:
        def echo(line: str) -> None:
            click.echo(line, err=True)

        if decision.promote:
            rollout = apply_canary.promote(cluster, canary, environment, image,
                                           timeout=rollout_timeout, poll=poll_interval,
                                           echo=echo)
            doc["rollout"] = rollout.as_json()
            if rollout.result != "succeeded":
                code = EXIT_FAILURE
                echo(f"promote rollout {rollout.result}: the champion is back on its previous "
                     f"image, the challenger still runs:\n{rollout.reason}")
            else:
                echo(f"promoted: set version to {found.challenger_tag} and remove "
                     "kubernetes.challenger in mlgen.yaml, or the next deploy brings the "
                     "old champion back")
        else:
            apply_canary.scale_to_zero(cluster, canary, echo)
    if as_json:
        click.echo(json.dumps(doc, indent=2, sort_keys=True))
    return code


def _argo(found: Setup, champion_url: str | None, challenger_url: str | None, from_cluster: bool,
          applying: bool, do_apply: bool, as_json: bool, timeout: float,
          rollout_timeout: float, kube_context: str | None, poll_interval: float) -> int:
    """The same decision for an Argo Rollouts canary; --apply promotes or aborts the Rollout."""
    from ..deliver import argo
    from ..promote import evaluate, scrape

    canary = argo.Canary(found.namespace, found.name)
    cluster = None
    if from_cluster or do_apply:
        from ..integrations.kubernetes import Cluster, RetryPolicy

        cluster = Cluster(context=kube_context, retry=RetryPolicy(request_timeout=timeout))
    if cluster is not None and from_cluster:
        from mlgen.models.contract import METRICS_PATH

        texts = [argo.cluster_metrics(cluster, canary, track, found.port, METRICS_PATH)
                 for track in ("champion", "challenger")]
    else:
        texts = [scrape(str(url), timeout) for url in (champion_url, challenger_url)]
    decision = evaluate(found.limits, *texts)
    steps = argo.plan(canary, decision.promote)
    if not as_json:
        _show(decision, steps, applying, do_apply)
    doc: dict[str, Any] = {**decision.as_dict(), "environment": found.environment,
                           "engine": found.engine, "plan": [s.action for s in steps],
                           "applied": applying}
    code = EXIT_OK if decision.promote else EXIT_FAILURE
    if applying and cluster is not None:
        def echo(line: str) -> None:
            click.echo(line, err=True)

        if decision.promote:
            outcome = argo.promote(cluster, canary, timeout=rollout_timeout,
                                   poll=poll_interval, echo=echo)
            doc["rollout"] = outcome.as_json()
            if outcome.result != "succeeded":
                code = EXIT_FAILURE
                echo(f"promote {outcome.result}: {outcome.reason}")
            else:
                echo(f"promoted: set version to {found.challenger_tag} in mlgen.yaml and keep "
                     "kubernetes.challenger: its image_tag is what the Rollout runs")
        else:
            argo.abort(cluster, canary, echo)
            echo("set kubernetes.challenger.image_tag back to the stable version (or to the "
                 "next candidate): the Rollout stays Degraded until its template changes")
    if as_json:
        click.echo(json.dumps(doc, indent=2, sort_keys=True))
    return code


def _show(decision: Any, steps: Any, applying: bool, do_apply: bool) -> None:
    """The decision's table, and the plan unless --apply carries it out now."""
    from ..promote import table

    click.echo(table(decision))
    if not applying:
        click.echo("plan" + ("" if do_apply else " (--apply carries it out)") + ":")
        for step in steps:
            click.echo(f"  {step.action}  # {step.why}")
