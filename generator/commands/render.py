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
@click.pass_context
def command(ctx: click.Context, dry_run: bool, show_diff: bool, only: tuple[str, ...],
            templates: tuple[Path, ...], as_json: bool) -> int:
    """Render every pipeline file from mlgen.yaml and write them (all or none)."""
    from ..project import load_project, render_artifacts

    root = project_dir(ctx)
    spec = load_project(root)
    artifacts = render_artifacts(spec, root, only, templates)
    changes = plan_changes(root, artifacts)
    write = not (dry_run or show_diff)
    if write:
        write_rendered(root, spec, artifacts, changes)
    report(changes, write, show_diff, as_json)
    return 0


def write_rendered(root: Path, spec: object, artifacts: list[Artifact],
                   changes: list[Change]) -> None:
    from ..writer import FileWrite, write_files

    writes = [FileWrite(c.path, c.artifact.text.encode("utf-8"), c.artifact.mode)
              for c in changes if c.action != "unchanged"]
    write_files(root, writes)


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
