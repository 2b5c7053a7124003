"""`mlgen check`: fail (exit 1, with a diff) when generated files drifted from the spec."""
from __future__ import annotations

import json
from pathlib import Path

import click

from ..errors import EXIT_FAILURE, EXIT_OK
from ..monorepo import repository_root
from ..project import project_dir


@click.command("check")
@click.option("--templates", "templates", multiple=True, type=click.Path(path_type=Path),
              metavar="DIR", help="A folder of template overrides, layered over the built-ins.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="No diffs; only the list of files.")
@click.argument("files", nargs=-1, required=False)
@click.pass_context
def command(ctx: click.Context, templates: tuple[Path, ...], as_json: bool, quiet: bool,
            files: tuple[str, ...]) -> int:
    """Exit 1 when generated files are out of date with mlgen.yaml and the templates, or were
    edited or deleted outside `mlgen sync`; 0 when all are current. Writes nothing.

    FILES (ignored) lets pre-commit pass the staged file names; the whole project is checked.
    """
    from ..sync.check import CHECK_STATUSES, check_plan
    from ..sync.local import plan_project

    root = repository_root(project_dir(ctx))
    plan = plan_project(root, templates)
    items = check_plan(plan)
    bad = [i for i in items if i.status != "ok"]
    previous = plan.previous
    if as_json:
        click.echo(json.dumps({
            "in_sync": not bad,
            "spec_changed": previous is None or previous.spec_sha256 != plan.lock.spec_sha256,
            "templates_changed": previous is None
            or previous.templates.hash != plan.lock.templates.hash,
            "files": [{"path": i.path, "status": i.status, "sync_action": i.sync_action,
                       **({"diff": i.diff} if i.diff else {})} for i in items]}, indent=2))
        return EXIT_FAILURE if bad else EXIT_OK
    for item in bad:
        if not quiet and item.diff:
            click.echo(item.diff, nl=False)
    for item in bad:
        click.echo(f"{item.status:>9}  {item.path}: {CHECK_STATUSES[item.status]}", err=True)
    if previous is None:
        click.echo("no .mlgen/lock.json yet: run `mlgen sync` once to record the generated "
                   "files", err=True)
    click.echo(f"{len(items) - len(bad)} of {len(items)} generated file(s) up to date"
               + (f"; {len(bad)} need `mlgen sync`" if bad else ""), err=True)
    return EXIT_FAILURE if bad else EXIT_OK
