"""`mlgen jenkins plan|apply|prune|trigger`: register model jobs on a Jenkins controller.

Options are parsed here; the work happens in `mlgen.publish.jenkins.jobs`
(plan/apply/prune/trigger),
`mlgen.targets.jenkins_job` (what the jobs look like) and `mlgen.integrations.jenkins` (the client).
Progress goes to stderr; results (tables, diffs, JSON) go to stdout.
"""
from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..errors import UsageError
from ..project import project_dir

if TYPE_CHECKING:
    from ..integrations.jenkins import JenkinsClient
    from ..publish.jenkins.fleet import Fleet
    from ..publish.jenkins.jobs import HashCache, Plan


def connection_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--url", envvar="JENKINS_URL", help="Controller URL [env JENKINS_URL; "
                     "default: ci.jenkins.url]."),
        click.option("--user", envvar="JENKINS_USER", help="User name [env JENKINS_USER]."),
        click.option("--token-file", type=click.Path(dir_okay=False, path_type=Path),
                     help="Read the API token from FILE [default: env JENKINS_API_TOKEN]."),
        click.option("--ca-bundle", type=click.Path(exists=True, dir_okay=False),
                     envvar="JENKINS_CA_BUNDLE", help="CA certificates to verify TLS with."),
        click.option("--timeout", type=click.FloatRange(min=1), default=30.0, show_default=True,
                     help="Seconds per request."),
        click.option("--retries", type=click.IntRange(0, 10), default=3, show_default=True,
                     help="Retries on connection errors and 5xx answers (with backoff)."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def fleet_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")(fn)
    fn = click.option("--workers", type=click.IntRange(1, 64), default=None,
                      help="Requests in flight at once [default: the fleet's concurrency, 8].")(fn)
    return click.option("--fleet", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                        help="YAML file listing many repositories' mlgen.yaml.")(fn)


def _client(fleet: Fleet, url: str | None, user: str | None, token_file: Path | None,
            ca_bundle: str | None, timeout: float, retries: int) -> JenkinsClient:
    from ..integrations.jenkins import JenkinsClient, connection_from

    token = None
    if token_file is not None:
        try:
            token = token_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise UsageError(f"{token_file}: cannot read the token file ({exc.strerror})") from exc
    conn = connection_from(url=url, user=user, token=token, spec_url=fleet.spec_url(),
                           ca_bundle=ca_bundle, timeout=timeout, retries=retries)
    return JenkinsClient(conn)


def _fleet(ctx: click.Context, fleet_file: Path | None) -> Fleet:
    from ..publish.jenkins.fleet import load_fleet, single

    return load_fleet(fleet_file) if fleet_file else single(project_dir(ctx))


@contextmanager
def _progress(label: str, total: int) -> Iterator[Callable[[], None]]:
    """A progress bar on stderr that worker threads may advance."""
    lock = threading.Lock()
    with click.progressbar(length=total, label=label, file=sys.stderr) as bar:
        def step() -> None:
            with lock:
                bar.update(1)
        yield step


def _cache(client: JenkinsClient, use_cache: bool) -> HashCache | None:
    from ..publish.jenkins.jobs import HashCache

    return HashCache.load(HashCache.location(client.conn.url)) if use_cache else None


def _print_plan(the_plan: Plan, show_unchanged: bool) -> None:
    symbols = {"create": "+", "update": "~", "unchanged": "=", "conflict": "!"}
    for folder in the_plan.folders:
        click.echo(f"+ folder {folder}")
    for change in the_plan.changes:
        if change.action == "unchanged" and not show_unchanged:
            continue
        note = f"  ({change.note})" if change.note else ""
        cached = "  (cached)" if change.cached else ""
        click.echo(f"{symbols[change.action]} {change.action:9} {change.name}{note}{cached}")
        if change.diff:
            click.echo(change.diff)
    edited = [c.name for c in the_plan.changes if c.edited_on_server]
    for name in edited:
        click.echo(f"warning: job {name} was changed on Jenkins since mlgen applied it; "
                   "apply overwrites that edit (put it in mlgen.yaml or a template override)",
                   err=True)


def _summary_table(rows: list[tuple[str, str, str]]) -> None:
    headers = ("job", "repository", "result")
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    for row in (headers, *rows):
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())


def _plan_json(the_plan: Plan, requests: int) -> dict[str, Any]:
    return {
        "folders": list(the_plan.folders), "counts": the_plan.counts(), "requests": requests,
        "jobs": [{"name": c.name, "repository": c.desired.job.source, "action": c.action,
                  "edited_on_server": c.edited_on_server, "note": c.note, "cached": c.cached,
                  "diff": c.diff} for c in the_plan.changes],
    }


def _run_plan(ctx: click.Context, fleet_file: Path | None, workers: int | None, use_cache: bool,
              refresh: bool, conn_args: dict[str, Any]) -> tuple[Fleet, JenkinsClient, Plan,
                                                                  HashCache | None]:
    from ..publish.jenkins.jobs import plan

    fleet = _fleet(ctx, fleet_file)
    client = _client(fleet, **conn_args)
    cache = _cache(client, use_cache)
    desired = fleet.desired()
    with _progress("reading Jenkins", len(desired)) as step:
        the_plan = plan(client, desired, cache=cache, refresh=refresh,
                        workers=workers or fleet.concurrency, progress=step)
    return fleet, client, the_plan, cache


@click.group("jenkins")
def command() -> None:
    """Register model jobs on Jenkins: plan, apply, prune, trigger.

    Connection: --url / JENKINS_URL (else ci.jenkins.url), --user / JENKINS_USER, and the API
    token from JENKINS_API_TOKEN or --token-file. The token is never printed.
    """


@command.command("plan")
@fleet_options
@click.option("--cache", "use_cache", is_flag=True, help="Skip reading jobs whose desired "
              "config matches the local hash cache.")
@click.option(
    "--refresh", is_flag=True, help="Read every job from Jenkins, whatever the cache says."
)
@click.option("--all", "show_all", is_flag=True, help="List unchanged jobs too.")
@connection_options
@click.pass_context
def plan_command(ctx: click.Context, /, fleet: Path | None, workers: int | None, as_json: bool,
                 use_cache: bool, refresh: bool, show_all: bool, **conn_args: Any) -> int:
    """Show what apply would create, reconfigure or leave alone, with XML diffs. Changes nothing."""
    _, client, the_plan, _ = _run_plan(ctx, fleet, workers, use_cache, refresh, conn_args)
    if as_json:
        click.echo(json.dumps(_plan_json(the_plan, client.requests_made), indent=2))
    else:
        _print_plan(the_plan, show_all)
        counts = the_plan.counts()
        click.echo(f"plan: {counts['folders']} folder(s) to create, {counts['create']} job(s) to "
                   f"create, {counts['update']} to reconfigure, {counts['unchanged']} unchanged, "
                   f"{counts['conflict']} conflict(s); {client.requests_made} request(s)")
    return 1 if the_plan.counts()["conflict"] else 0


@command.command("apply")
@fleet_options
@click.option("--cache", "use_cache", is_flag=True, help="Use and update the local hash cache.")
@click.option(
    "--refresh", is_flag=True, help="Read every job from Jenkins, whatever the cache says."
)
@click.option("--adopt", is_flag=True, help="Take over jobs that exist without mlgen's marker.")
@connection_options
@click.pass_context
def apply_command(ctx: click.Context, /, fleet: Path | None, workers: int | None, as_json: bool,
                  use_cache: bool, refresh: bool, adopt: bool, **conn_args: Any) -> int:
    """Create missing folders and jobs; reconfigure only jobs whose config differs."""
    from ..publish.jenkins.jobs import apply

    the_fleet, client, the_plan, cache = _run_plan(ctx, fleet, workers, use_cache, refresh,
                                                   conn_args)
    if not as_json:
        _print_plan(the_plan, show_unchanged=False)
    todo = len(the_plan.folders) + sum(1 for c in the_plan.changes if c.action != "unchanged")
    with _progress("applying", todo) as step:
        result = apply(client, the_plan, cache=cache, adopt=adopt,
                       workers=workers or the_fleet.concurrency, progress=step)
    outcome = {name: "created" for name in result.created}
    outcome.update({name: "reconfigured" for name in result.updated})
    if as_json:
        data = _plan_json(the_plan, client.requests_made)
        data["applied"] = outcome
        click.echo(json.dumps(data, indent=2))
        return 0
    rows = [(c.name, c.desired.job.source, outcome.get(c.name, "unchanged"))
            for c in the_plan.changes]
    rows += [(f, "", "folder created") for f in result.folders]
    _summary_table(rows)
    click.echo(f"apply: {len(result.folders)} folder(s) and {len(result.created)} job(s) created, "
               f"{len(result.updated)} reconfigured; {client.requests_made} request(s)")
    return 0


@command.command("prune")
@click.option("--fleet", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Prune across the whole fleet: every marked job no listed spec describes.")
@click.option("--yes", is_flag=True, help="Delete for real (default: only list what would go).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@connection_options
@click.pass_context
def prune_command(ctx: click.Context, /, fleet: Path | None, yes: bool, as_json: bool,
                  **conn_args: Any) -> int:
    """Delete jobs that carry mlgen's marker but that no spec describes any more.

    Without --fleet, only jobs marked as coming from this repository are considered.
    """
    from ..publish.jenkins.jobs import HashCache, plan_prune, prune

    the_fleet = _fleet(ctx, fleet)
    client = _client(the_fleet, **conn_args)
    keep = [job.full_name for m in the_fleet.members for job in m.jobs]
    doomed = plan_prune(client, keep, None if fleet else the_fleet.sources)
    if yes and doomed:
        prune(client, doomed, cache=HashCache.load(HashCache.location(client.conn.url)))
    verb = "deleted" if yes else "would delete"
    if as_json:
        click.echo(json.dumps({"dry_run": not yes, "jobs": doomed}, indent=2))
    else:
        for name in doomed:
            click.echo(f"- {verb} {name}")
        hint = "" if yes or not doomed else " (dry run: pass --yes to delete)"
        click.echo(f"prune: {len(doomed)} job(s) {verb}{hint}")
    return 0


@command.command("trigger")
@click.option("--job", "job_name", help="Job to build [default: this repository's job; for a "
              "multibranch job, its default branch].")
@click.option("--branch", help="Branch of the multibranch job to build.")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE",
              help="Build parameter (repeatable).")
@click.option("--reason", help="Shortcut for --param RETRAIN_REASON=TEXT (the parameter the "
              "generated Jenkinsfile declares).")
@click.option("--timeout", "wait_timeout", type=click.FloatRange(min=1), default=1800.0,
              show_default=True, help="Seconds to wait for the queue and the build.")
@click.option("--poll", type=click.FloatRange(min=0.01), default=2.0, show_default=True,
              help="Seconds between status checks.")
@click.option("--scan-timeout", type=click.FloatRange(min=0), default=300.0, show_default=True,
              help="Seconds to wait for Jenkins to index a branch that has no job yet (a new "
              "multibranch job is scanned first).")
@click.option("--no-wait", is_flag=True, help="Return once the build has a number.")
@click.option("--console", is_flag=True, help="Print the build's console text at the end.")
@click.option("--url", envvar="JENKINS_URL", help="Controller URL [env JENKINS_URL].")
@click.option("--user", envvar="JENKINS_USER", help="User name [env JENKINS_USER].")
@click.option("--token-file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--ca-bundle", type=click.Path(exists=True, dir_okay=False), envvar="JENKINS_CA_BUNDLE"
)
@click.option("--retries", type=click.IntRange(0, 10), default=3, show_default=True)
@click.pass_context
def trigger_command(ctx: click.Context, /, job_name: str | None, branch: str | None,
                    params: tuple[str, ...], reason: str | None, wait_timeout: float, poll: float,
                    scan_timeout: float, no_wait: bool, console: bool, **conn_args: Any) -> int:
    """Start a build with parameters and follow it to its result (exit 0 only on SUCCESS).

    When the branch has no job yet on a multibranch project (Jenkins has not indexed it, as
    right after the first apply), the project is scanned and the branch job awaited first.
    """
    from ..publish.jenkins.jobs import trigger
    from ..publish.jenkins.retrain import REASON_PARAMETER

    parameters: dict[str, str] = {}
    for item in params:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--param {item!r}: expected KEY=VALUE")
        parameters[key] = value
    if reason is not None:
        parameters[REASON_PARAMETER] = reason
    the_fleet = _fleet(ctx, None) if job_name is None or conn_args["url"] is None else None
    if job_name is None:
        if the_fleet is None:
            raise RuntimeError("no fleet to pick the job from")
        job = the_fleet.members[0].job
        job_name = f"{job.full_name}/{branch}" if branch and job.kind == "multibranch" \
            else job.build_target
    elif branch:
        job_name = f"{job_name}/{branch}"
    from ..publish.jenkins.fleet import Fleet

    client = _client(the_fleet or Fleet(()), timeout=30.0, **conn_args)
    outcome = trigger(client, job_name, parameters, timeout=wait_timeout, poll=poll,
                      wait=not no_wait, scan_timeout=scan_timeout,
                      on_progress=lambda msg: click.echo(msg, err=True))
    if console and outcome.number is not None:
        click.echo(client.console_text(job_name, outcome.number), nl=False)
    click.echo(f"job {outcome.job}: build #{outcome.number} {outcome.result or 'started'}"
               f"{' ' + outcome.url if outcome.url else ''}")
    if no_wait:
        return 0
    return 0 if outcome.result == "SUCCESS" else 1
