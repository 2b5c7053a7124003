"""`mlgen render`: write every generated file from mlgen.yaml, all or none.

What is current is decided once, in `mlgen.sync.check`, for this command and `mlgen check`: a
file check calls up to date (a hand edit a sync recorded included) is left alone, so a render
right after a sync changes nothing and `--diff` shows nothing.
"""
from __future__ import annotations

import json
from pathlib import Path

import click

from ..monorepo import repository_root
from ..project import project_dir

_VERBS = {"create": "created", "update": "updated", "delete": "deleted",
          "orphan": "unmanaged", "unchanged": "unchanged"}
_DRY_VERBS = {"create": "would create", "update": "would update", "delete": "would delete",
              "orphan": "would unmanage", "unchanged": "unchanged"}


@click.command("render")
@click.option("--dry-run", is_flag=True, help="List what would change; write nothing.")
@click.option(
    "--diff", "show_diff", is_flag=True, help="Show a unified diff against disk; write nothing."
)
@click.option(
    "--only",
    "only",
    multiple=True,
    metavar="TARGET",
    help="Render only this target (jenkins, github-actions, docker, kubernetes, "
         "azure-pipelines); repeatable.",
)
@click.option("--templates", "templates", multiple=True, type=click.Path(path_type=Path),
              metavar="DIR", help="A folder of template overrides, layered over the built-ins.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--force", is_flag=True,
              help="Overwrite files edited by hand (their edits are lost; `mlgen sync` merges "
                   "them instead) and bring back opted-out files.")
@click.pass_context
def command(ctx: click.Context, dry_run: bool, show_diff: bool, only: tuple[str, ...],
            templates: tuple[Path, ...], as_json: bool, force: bool) -> int:
    """Render every pipeline file from mlgen.yaml and write them (all or none).

    Files `mlgen check` calls up to date are left alone, hand edits recorded by `mlgen sync`
    included. Refuses (exit 1, nothing written) to overwrite an edit sync has not recorded
    or would have to merge; files deleted outside sync are written again; files no longer
    generated are deleted when unedited.
    """
    from ..errors import MlgenError
    from ..sync.check import plan_render, scoped_lock
    from ..sync.local import disk_reader, render_project
    from ..sync.lock import LOCK_PATH, read_lock
    from ..sync.plan import plan_sync
    from ..sync.writer import FileWrite, write_files

    root = repository_root(project_dir(ctx))
    rendered = render_project(root, templates, only)
    # `--only`: the other targets' files are neither judged nor touched.
    lock, others = scoped_lock(read_lock(root), only)
    read, mode = disk_reader(root)
    plan = plan_render(
        plan_sync(rendered.artifacts, lock, read, read_mode=mode, templates=rendered.templates,
                  spec_sha256=rendered.spec_sha256),
        rendered.artifacts, force, others)
    if plan.refused:
        paths = [c.path for c in plan.refused]
        raise MlgenError(
            f"{root}: refusing to overwrite {len(paths)} file(s) edited since mlgen last "
            f"generated them: {', '.join(paths)}; nothing was written. Run `mlgen sync` to "
            "merge your edits with the new render, or `mlgen render --force` to discard them.")
    writes = plan.file_writes()
    # When every file is current the lock is left as it is too (only a sync, which records,
    # rewrites it then): a render after a sync is a true no-op.
    acted = any(c.action != "unchanged" for c in plan.changes)  # an orphan changes the lock only
    if acted or not (root / LOCK_PATH).is_file():
        writes.append(FileWrite(LOCK_PATH, plan.lock.to_json()))
    write = not (dry_run or show_diff) and bool(writes)
    if write:
        write_files(root, writes)
    changes = plan.changes
    if as_json:
        click.echo(json.dumps({"written": write,
                               "files": [{"path": c.path, "action": c.action, "status": c.status}
                                         for c in changes]}, indent=2))
    elif show_diff:
        from ..textdiff import unified_diff

        for c in changes:
            if c.action != "unchanged":
                click.echo(unified_diff(c.path, _text(c.old), _text(c.new)), nl=False)
    else:
        dry = dry_run or show_diff
        verbs = _DRY_VERBS if dry else _VERBS
        for c in changes:
            click.echo(f"{verbs[c.action]:>14}  {c.path}")
        count = {a: sum(1 for c in changes if c.action == a) for a in _VERBS}
        click.echo(f"{count['create']} new, {count['update']} changed, "
                   + (f"{count['delete']} deleted, " if count["delete"] else "")
                   + f"{count['unchanged']} unchanged" + (" (nothing written)" if dry else ""),
                   err=True)
    return 0


def _text(data: bytes | None) -> str | None:
    return None if data is None else data.decode("utf-8", errors="replace")
