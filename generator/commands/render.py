from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from pathlib import Path

import click

from ..cli import project_dir
from ..render import Artifact


@dataclass(frozen=True)
class Change:
    path: str
    action: str  # "create", "update", "unchanged"
    artifact: Artifact
    old_text: str | None


def plan_changes(root: Path, artifacts: list[Artifact]) -> list[Change]:
    out = []
    for artifact in artifacts:
        dest = root / artifact.path
        old = dest.read_text(encoding="utf-8", errors="replace") if dest.is_file() else None
        if old is None:
            action = "create"
        elif old == artifact.text and (dest.stat().st_mode & 0o777) == artifact.mode:
            action = "unchanged"
        else:
            action = "update"
        out.append(Change(artifact.path, action, artifact, old))
    return out


def unified_diff(path: str, old: str | None, new: str | None) -> str:
    return "".join(difflib.unified_diff(
        (old or "").splitlines(keepends=True), (new or "").splitlines(keepends=True),
        fromfile=f"a/{path}" if old is not None else "/dev/null",
        tofile=f"b/{path}" if new is not None else "/dev/null"))


@click.command("render")
@click.option("--dry-run", is_flag=True, help="List what would change; write nothing.")
@click.option("--diff", "show_diff", is_flag=True, help="Show a unified diff against disk; write nothing.")
@click.option("--only", "only", multiple=True, metavar="TARGET",
              help="Render only this target (jenkins, github-actions, docker, kubernetes); repeatable.")
@click.option("--templates", "templates", multiple=True, type=click.Path(path_type=Path),
              metavar="DIR", help="A folder of template overrides, layered over the built-ins.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--force", is_flag=True,
              help="Overwrite files edited by hand since the last render (their edits are lost; "
                   "`mlgen sync` merges them instead) and bring back opted-out files.")
@click.pass_context
def command(ctx: click.Context, dry_run: bool, show_diff: bool, only: tuple[str, ...],
            templates: tuple[Path, ...], as_json: bool, force: bool) -> int:
    """Render every pipeline file from mlgen.yaml and write them (all or none)."""
    from ..project import load_project, render_artifacts

    root = project_dir(ctx)
    spec = load_project(root)
    used: dict[str, str] = {}
    artifacts = render_artifacts(spec, root, only, templates, used_templates=used)
    changes = plan_changes(root, artifacts)
    write = not (dry_run or show_diff)
    if write:
        changes = write_rendered(root, spec, artifacts, changes, used, force)
    report(changes, write, show_diff, as_json)
    return 0


def write_rendered(root: Path, spec: object, artifacts: list[Artifact], changes: list[Change],
                   used_templates: dict[str, str] | None = None,
                   force: bool = False) -> list[Change]:
    """Write the changed files and .mlgen/lock.json in one all-or-nothing write.

    Refuses (writing nothing) when a file holds text mlgen did not generate, so a render never
    silently loses a hand edit; files the user opted out of (deleted, recorded by sync) are
    skipped. `force` overrides both. Returns the changes actually made."""
    from ..errors import MlgenError
    from ..lock import LOCK_PATH, read_lock, spec_sha, template_set
    from ..render import BUILTIN_TEMPLATES
    from ..sync import disk_reader, edited_files, lock_after_render
    from ..writer import FileWrite, write_files

    lock = read_lock(root)
    if not force:
        edited = edited_files(artifacts, lock, disk_reader(root)[0])
        if edited:
            raise MlgenError(
                f"{root}: refusing to overwrite {len(edited)} file(s) edited since mlgen last "
                f"generated them: {', '.join(edited)}; nothing was written. Run `mlgen sync` to "
                "merge your edits with the new render, or `mlgen render --force` to discard them.")
        opted_out = {p for p, e in (lock.files.items() if lock else ()) if e.opted_out}
        changes = [c for c in changes if c.path not in opted_out]
    writes = [FileWrite(c.path, c.artifact.text.encode("utf-8"), c.artifact.mode)
              for c in changes if c.action != "unchanged"]
    new_lock = lock_after_render(lock, [c.artifact for c in changes],
                                 template_set(used_templates or {}, BUILTIN_TEMPLATES, root),
                                 spec_sha(root))
    writes.append(FileWrite(LOCK_PATH, new_lock.to_json()))
    write_files(root, writes)
    return changes


def report(changes: list[Change], written: bool, show_diff: bool, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"written": written,
                               "files": [{"path": c.path, "action": c.action} for c in changes]},
                              indent=2))
        return
    if show_diff:
        for change in changes:
            if change.action != "unchanged":
                click.echo(unified_diff(change.path, change.old_text, change.artifact.text), nl=False)
        return
    verb = {"create": "created", "update": "updated", "unchanged": "unchanged"} if written else \
        {"create": "would create", "update": "would update", "unchanged": "unchanged"}
    for change in changes:
        click.echo(f"{verb[change.action]:>13}  {change.path}")
    counts = {a: sum(1 for c in changes if c.action == a) for a in ("create", "update", "unchanged")}
    click.echo(f"{counts['create']} new, {counts['update']} changed, {counts['unchanged']} unchanged"
               + ("" if written else " (nothing written)"), err=True)
