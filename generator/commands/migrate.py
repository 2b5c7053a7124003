"""`mlgen migrate`: rewrite mlgen.yaml to a newer apiVersion, keeping comments and layout."""
from __future__ import annotations

import click

from ..errors import EXIT_FAILURE, EXIT_OK
from ..project import project_dir


@click.command("migrate")
@click.option("--to", "target", default=None, metavar="VERSION",
              help="apiVersion to migrate to (default: the newest this mlgen knows).")
@click.option("--dry-run", is_flag=True, help="Show the diff; write nothing.")
@click.option("--check", "check_only", is_flag=True,
              help="Exit 1 when mlgen.yaml needs a migration; write nothing.")
@click.pass_context
def command(ctx: click.Context, target: str | None, dry_run: bool, check_only: bool) -> int:
    """Rewrite mlgen.yaml from its apiVersion to a newer one (comments, order and quoting kept).

    Run `mlgen sync` afterwards to re-render the files from the migrated spec.
    """
    from mlgen.models.contract import SPEC_FILENAME

    from ..errors import SpecError, SpecIssue
    from ..migrate import latest_version, migrate_text
    from ..spec_loader import parse_spec
    from ..sync.lock import decode_text, encode_text
    from ..sync.writer import FileWrite, write_files
    from ..textdiff import unified_diff

    root = project_dir(ctx)
    path = root / SPEC_FILENAME
    try:
        raw = path.read_bytes()
    except FileNotFoundError:  # the same spec error (exit 2) as every other command's
        raise SpecError([SpecIssue(str(path), "", 0, 0, "file not found; create one with "
                                   "`mlgen init` or pass -C DIR")]) from None
    text, crlf = decode_text(raw)
    result = migrate_text(text, target, str(path))
    if not result.changed:
        click.echo(f"{path}: already at apiVersion {result.to_version}", err=True)
        return EXIT_OK
    if result.to_version == latest_version():
        parse_spec(result.text, str(path))  # a migration must leave a spec this mlgen accepts
    steps = ", ".join(f"{m.from_version} -> {m.to_version} ({m.summary})" for m in result.steps)
    if dry_run or check_only:
        click.echo(unified_diff(SPEC_FILENAME, text, result.text), nl=False)
        click.echo(f"{path}: would migrate {steps}", err=True)
        return EXIT_FAILURE if check_only else EXIT_OK
    write_files(root, [FileWrite(SPEC_FILENAME, encode_text(result.text, crlf),
                                 path.stat().st_mode & 0o777)])
    click.echo(f"{path}: migrated {steps}. Next: `mlgen sync` to re-render.", err=True)
    return EXIT_OK
