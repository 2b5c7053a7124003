"""`mlgen sync`: re-render and bring every generated file up to date, keeping hand edits."""
from __future__ import annotations

import json
import signal
from pathlib import Path
from types import FrameType

import click

from ..errors import EXIT_FAILURE, EXIT_OK, UsageError
from ..monorepo import repository_root
from ..project import project_dir


@click.command("sync")
@click.option("--dry-run", is_flag=True, help="List what would change; write nothing.")
@click.option("--diff", "show_diff", is_flag=True,
              help="Show a unified diff of what would change; write nothing.")
@click.option("--conflict", "conflict", default="inline", show_default=True,
              type=click.Choice(["inline", "rej", "ours", "theirs"]),
              help="Overlapping edits: conflict markers in the file (inline), your version plus "
                   "a PATH.rej of the new hunks (rej), or take one side (ours, theirs).")
@click.option("--restore", "restore", multiple=True, metavar="PATH",
              help="Bring back a generated file you deleted (opted out); repeatable.")
@click.option("--restore-all", is_flag=True, help="Bring back every opted-out file.")
@click.option("--templates", "templates", multiple=True, type=click.Path(path_type=Path),
              metavar="DIR", help="A folder of template overrides, layered over the built-ins.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--rebuild-lock", is_flag=True,
              help="Recover from a damaged or lost .mlgen/lock.json: write a new lock from the "
                   "files as they are, changing no other file. Files that differ from the render "
                   "are kept and recorded as your edits (`mlgen check` lists them; the next "
                   "`mlgen sync` keeps them).")
@click.option("--pr", is_flag=True, help="Sync the GitHub repository instead of this folder: "
              "the same merge, as one commit on branch mlgen/sync and its pull request.")
@click.option("--repo", default=None, metavar="OWNER/NAME", help="With --pr: the repository "
              "(default: $GITHUB_REPOSITORY, else ci.github.repository in mlgen.yaml).")
@click.option("--base", default=None, metavar="BRANCH", help="With --pr: the branch to "
              "compare with and open the pull request into (default: the repository's default "
              "branch; a fleet entry's branch: wins).")
@click.option("--fleet", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              default=None, metavar="FILE", help="With --pr: every repository in FILE (a YAML "
              "or JSON list of OWNER/NAME, or org: and topic:).")
@click.option("--trust-templates", "trust_templates", multiple=True, metavar="OWNER/NAME",
              help="With --pr: render this repository's own template overrides (its "
                   "'templates:' folder, sandboxed); repeatable. Without it they are ignored, "
                   "and the output says so.")
@click.option("--concurrency", default=4, show_default=True, type=click.IntRange(1, 32),
              help="With --fleet: repositories synced at once.")
@click.option("--state", "state_path", type=click.Path(path_type=Path, dir_okay=False),
              default=None, help="With --fleet: resume file; a rerun skips what it records.")
@click.option("--report", "report_path", type=click.Path(path_type=Path, dir_okay=False),
              default=None, help="With --fleet: write the JSON report here.")
@click.pass_context
def command(ctx: click.Context, dry_run: bool, show_diff: bool, conflict: str,
            restore: tuple[str, ...], restore_all: bool, templates: tuple[Path, ...],
            as_json: bool, rebuild_lock: bool, pr: bool, repo: str | None, base: str | None,
            fleet: Path | None, trust_templates: tuple[str, ...], concurrency: int,
            state_path: Path | None, report_path: Path | None) -> int:
    """Re-render from mlgen.yaml and update the files, merging your edits three ways.

    Files you never edited are replaced; edited files get a three-way merge (base: what mlgen
    generated last, from .mlgen/lock.json); overlaps get conflict markers and exit 1. Files you
    deleted stay deleted. Writes all files or none. With --pr (and --fleet), the same happens
    on GitHub: one commit on branch mlgen/sync and one pull request per repository.
    """
    if rebuild_lock:
        remote = pr or fleet or repo or base or trust_templates
        clashing = [flag for flag, given in (("--pr", remote),
                                             ("--diff", show_diff),
                                             ("--restore", restore or restore_all),
                                             ("--conflict", conflict != "inline")) if given]
        if clashing:
            raise UsageError(f"--rebuild-lock writes only the local lock; it does not go with "
                             f"{', '.join(clashing)}")
        return _rebuild_lock(repository_root(project_dir(ctx)), templates, dry_run, as_json)
    if pr or fleet or repo or base or trust_templates:
        from ..publish.github.fleet import RemoteRequest, run_remote_sync
        from ._github_common import resolve_repository, trusted_repositories

        if not pr:
            raise UsageError("--repo, --base, --fleet and --trust-templates sync GitHub "
                             "repositories: add --pr")
        if show_diff:
            raise UsageError("--diff reads local files; with --pr use --dry-run --json")
        code, out, err = run_remote_sync(RemoteRequest(
            repository=None if fleet else resolve_repository(repo, project_dir(ctx)),
            fleet=fleet, base=base, dry_run=dry_run, conflict=conflict,
            restore=True if restore_all else tuple(restore), templates=templates,
            trusted_templates=trusted_repositories(trust_templates, "--trust-templates"),
            as_json=as_json, concurrency=concurrency, state_path=state_path,
            report_path=report_path))
        if out:
            click.echo(out)
        if err:
            click.echo(err, err=True)
        return code
    from ..sync.local import apply_sync, plan_project
    from ..sync.lock import LOCK_PATH
    from ..sync.plan import ACTIONS
    from ..textdiff import unified_diff

    root = repository_root(project_dir(ctx))
    plan = plan_project(root, templates, conflict, True if restore_all else set(restore))
    lock_path = root / LOCK_PATH
    lock_changed = not lock_path.is_file() or lock_path.read_bytes() != plan.lock.to_json()
    write = not (dry_run or show_diff) and (bool(plan.changed) or lock_changed)
    if write:
        signal.signal(signal.SIGTERM, _interrupt)  # so `kill` rolls back like Ctrl-C does
        apply_sync(root, plan)
    written = write
    if as_json:
        click.echo(json.dumps({
            "written": written, "conflicts": plan.conflicts,
            "files": [{"path": a.path, "action": a.action, "changed": a.changes_disk,
                       **({"conflicts": a.conflicts} if a.conflicts else {})}
                      for a in plan.actions]}, indent=2))
    elif show_diff:
        for a in plan.changed:
            old = a.old.decode("utf-8", "replace") if a.old is not None else None
            new = None if a.delete else (a.data.decode("utf-8", "replace") if a.data is not None
                                         else old)
            click.echo(unified_diff(a.path, old, new), nl=False)
            if a.reject is not None:
                click.echo(unified_diff(a.path + ".rej", None, a.reject.decode("utf-8", "replace")),
                           nl=False)
    else:
        for a in plan.actions:
            if a.action == "unchanged" and not a.changes_disk:
                continue
            extra = f" ({a.conflicts} conflicting hunk(s))" if a.conflicts else ""
            click.echo(f"{a.action:>10}  {a.path}: {ACTIONS[a.action]}{extra}")
        unchanged = sum(1 for a in plan.actions if a.action == "unchanged" and not a.changes_disk)
        dry = dry_run or show_diff
        click.echo(f"{len(plan.changed)} file(s) {'would change' if dry else 'changed'}, "
                   f"{unchanged} unchanged" + (" (dry run: nothing written)" if dry else ""),
                   err=True)
    if plan.conflicts:
        how = ("fix the PATH.rej hunks by hand and delete the .rej files" if conflict == "rej"
               else "edit out the <<<<<<< ======= >>>>>>> markers")
        click.echo(f"{len(plan.conflicts)} file(s) need you: {', '.join(plan.conflicts)}. "
                   f"Resolve them ({how}), then run `mlgen sync` again to record the result "
                   "(or re-run with --conflict ours|theirs).", err=True)
        return EXIT_FAILURE
    return EXIT_OK


def _rebuild_lock(root: Path, templates: tuple[Path, ...], dry_run: bool, as_json: bool) -> int:
    from ..rebuild_lock import REBUILD_STATUSES, rebuild_lock
    from ..sync.local import disk_reader, render_project
    from ..sync.lock import LOCK_PATH
    from ..sync.writer import FileWrite, write_files

    rendered = render_project(root, templates)
    read, mode = disk_reader(root)
    lock, report = rebuild_lock(rendered.artifacts, read, mode, templates=rendered.templates,
                                spec_sha256=rendered.spec_sha256)
    if not dry_run:
        write_files(root, [FileWrite(LOCK_PATH, lock.to_json())])
    counts = {status: sum(1 for f in report if f.status == status) for status in REBUILD_STATUSES}
    if as_json:
        click.echo(json.dumps({"written": not dry_run, "lock": LOCK_PATH,
                               "files": [{"path": f.path, "status": f.status} for f in report]},
                              indent=2))
        return EXIT_OK
    for f in report:
        if f.status != "generated":
            click.echo(f"{f.status:>9}  {f.path}: {REBUILD_STATUSES[f.status]}")
    verb = "would rebuild" if dry_run else "rebuilt"
    click.echo(f"{verb} {root / LOCK_PATH} from the files on disk: {counts['generated']} match "
               f"the render, {counts['edited']} kept as your edits, {counts['conflict']} with "
               f"conflict markers, {counts['missing']} missing"
               + ("; dry run: nothing written." if dry_run else "; no other file was changed."),
               err=True)
    if counts["edited"] or counts["conflict"] or counts["missing"]:
        click.echo("Next: `mlgen check` shows each difference; `mlgen sync` keeps your edits and "
                   "creates missing files. To take mlgen's version of a file instead, delete it "
                   "and run `mlgen sync --restore PATH`.", err=True)
    return EXIT_OK


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt
