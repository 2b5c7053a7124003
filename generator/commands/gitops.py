"""`mlgen gitops pin ENV`: write the pushed digest into ENV's overlay (commit it, push it).

Parses options and calls `mlgen.deliver.gitops` / `mlgen.deliver.gitrepo`; see docs/gitops.md.
"""
from __future__ import annotations

import json
from pathlib import Path

import click

from ..errors import EXIT_OK, UsageError
from ..project import project_dir


@click.group("gitops")
def command() -> None:
    """GitOps delivery with Argo CD: pin image digests in the overlays Argo CD syncs."""


@command.command("pin")
@click.argument("environment")
@click.option("--digest", metavar="sha256:...", help="The pushed image digest.")
@click.option("--image", "image_ref", metavar="REPO@sha256:...",
              help="The pushed image by reference (its repository replaces the spec's when "
                   "it differs).")
@click.option("--digest-file", type=click.Path(dir_okay=False, path_type=Path),
              help="The JSON `mlgen push --digest-file` wrote.")
@click.option("--dry-run", is_flag=True, help="Change nothing; say what would change.")
@click.option("--diff", is_flag=True, help="Print the overlay's diff (with --dry-run: only).")
@click.option("--commit", "make_commit", is_flag=True,
              help="Commit the overlay (and the lock) with git: one commit, only those files.")
@click.option("--push", is_flag=True,
              help="Pin on top of the remote branch in a temporary worktree, commit and push "
                   "(retried when someone pushed first); the checkout is left alone.")
@click.option("--remote", default="origin", show_default=True, help="git remote for --push.")
@click.option("--branch", default=None,
              help="Branch for --push [default: kubernetes.gitops.target_revision, else "
                   "ci.github.default_branch].")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
@click.pass_context
def pin(ctx: click.Context, environment: str, digest: str | None, image_ref: str | None,
        digest_file: Path | None, dry_run: bool, diff: bool, make_commit: bool, push: bool,
        remote: str, branch: str | None, as_json: bool) -> int:
    """Pin ENVIRONMENT's overlay to an image digest for Argo CD (k8s/overlays/ENV).

    Exit codes: 0 pinned (or already pinned, or a dry run), 1 git failed, 2 bad input.
    """
    from ..deliver.gitops import ImageRef, apply_pin, parse_image, plan_pin
    from ..deliver.target import read_digest_file

    given = [name for name, value in (("--digest", digest), ("--image", image_ref),
                                      ("--digest-file", digest_file)) if value is not None]
    if len(given) != 1:
        raise UsageError("give exactly one of --digest sha256:..., --image REPO@sha256:... or "
                         f"--digest-file FILE (got {', '.join(given) or 'none'})")
    if push and dry_run:
        raise UsageError("--push and --dry-run do not go together")
    ref: ImageRef
    if digest_file is not None:
        repository, file_digest = read_digest_file(digest_file)
        ref = parse_image(f"{repository}@{file_digest}", f"--digest-file {digest_file}")
    else:
        ref = parse_image(digest or image_ref or "", given[0])
    root = project_dir(ctx)
    result: dict[str, object]
    if push:
        from ..deliver.gitrepo import pin_and_push
        from ..project import load_project

        spec = load_project(root)
        target = branch or spec.kubernetes.gitops.target_revision or spec.ci.github.default_branch
        plan, pushed = pin_and_push(root, lambda where: plan_pin(where, environment, ref),
                                    apply_pin, remote, target)
        result = {**plan.as_json(), "commit": pushed.commit, "pushed": pushed.commit is not None,
                  "remote": remote, "branch": target, "attempts": pushed.attempts}
        said = (f"pushed {pushed.commit} to {remote} {target}" if pushed.commit
                else f"{remote} {target} already pins {plan.digest}")
    else:
        plan = plan_pin(root, environment, ref)
        sha = None
        if not dry_run:
            apply_pin(root, plan)
            if make_commit:
                from ..deliver.gitrepo import commit_pin

                sha = commit_pin(root, plan)
        result = {**plan.as_json(), "dry_run": dry_run, "commit": sha}
        verb = "would pin" if dry_run else "pinned"
        said = (f"{plan.path} already pins {plan.digest}" if not plan.changed
                else f"{verb} {environment} to {plan.image}@{plan.digest} in {plan.path}"
                + (f" (commit {sha})" if sha else ""))
    if diff and plan.changed:
        click.echo(plan.diff(), nl=False)
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        click.echo(said, err=diff)
    return EXIT_OK
