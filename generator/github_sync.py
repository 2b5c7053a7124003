"""Remote sync against a GitHub repository: compare by blob SHA, then one commit and one PR.

The comparison reads the branch's tree once and the repository's mlgen.yaml once; files whose
git blob SHA already matches what mlgen renders are never downloaded. Rendering runs locally
from the repository's own spec (no network while rendering, as everywhere in mlgen).
"""
from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from . import __version__
from .errors import MlgenError

if TYPE_CHECKING:
    from .integrations.github import GitHubClient, RepoTree

SPEC_PATH = "mlgen.yaml"
# Merge hook: (path, current bytes on the branch) -> bytes to write, or None to leave the file
# alone. The local sync core (generator/sync.py) supplies a three-way merge based on its lock.
Merge = Callable[[str, bytes], bytes | None]


@dataclass(frozen=True)
class RemotePlan:
    repository: str
    base_tree: str
    changes: dict[str, bytes | None] = field(default_factory=dict)
    conflicts: tuple[str, ...] = ()
    unchanged: int = 0
    default_branch: str | None = None  # the spec's ci.github.default_branch

    @property
    def up_to_date(self) -> bool:
        return not self.changes


def render_remote(spec_text: str) -> dict[str, bytes]:
    """What mlgen generates for this spec text, path -> bytes (the repository's own overrides
    under `templates:` are not fetched, so such a spec renders with the organisation's ones)."""
    from .project import render_artifacts
    from .spec_loader import parse_spec

    spec = parse_spec(spec_text)
    with tempfile.TemporaryDirectory(prefix="mlgen-remote-") as tmp:
        if spec.templates:
            raise MlgenError(f"{SPEC_PATH}: templates: {spec.templates} points at files in the "
                             "repository; remote sync does not fetch template overrides yet")
        artifacts = render_artifacts(spec, Path(tmp))
    return {a.path: a.text.encode() for a in artifacts}


def plan_remote(client: GitHubClient, repository: str, ref: str = "HEAD",
                merge: Merge | None = None,
                render: Callable[[str], dict[str, bytes]] = render_remote) -> RemotePlan:
    """Read the tree and the spec, render, and keep only paths whose blob SHA differs."""
    from .integrations.github import git_blob_sha, read_blob, read_tree

    repo = client.repo(repository)
    tree: RepoTree = read_tree(client, repo, ref)
    spec_sha = tree.blob_sha(SPEC_PATH)
    if spec_sha is None:
        raise MlgenError(f"{repository}: no {SPEC_PATH} on {ref}")
    spec_text = read_blob(client, repo, spec_sha).decode("utf-8")
    desired = render(spec_text)
    changes: dict[str, bytes | None] = {}
    conflicts: list[str] = []
    unchanged = 0
    for path, data in sorted(desired.items()):
        current_sha = tree.blob_sha(path)
        if current_sha == git_blob_sha(data):
            unchanged += 1
            continue
        if current_sha is None or merge is None:
            changes[path] = data
            continue
        merged = merge(path, read_blob(client, repo, current_sha))
        if merged is None:
            conflicts.append(path)
        elif git_blob_sha(merged) != current_sha:
            changes[path] = merged
    return RemotePlan(repository, tree.sha, changes, tuple(conflicts), unchanged,
                      _default_branch(spec_text))


def _default_branch(spec_text: str) -> str | None:
    from .spec_loader import parse_spec

    try:
        return parse_spec(spec_text).ci.github.default_branch
    except MlgenError:
        return None


def pr_body(plan: RemotePlan) -> str:
    lines = ["mlgen re-rendered this repository's pipeline files from `mlgen.yaml`.", "",
             f"Generator: mlgen {__version__}", "", "Changed files:"]
    lines += [f"- `{p}`" + (" (deleted)" if d is None else "") for p, d in plan.changes.items()]
    if plan.conflicts:
        lines += ["", ("Conflicts to resolve (your edits and the new templates overlap; the "
                       "file was left as is):")] + [f"- `{p}`" for p in plan.conflicts]
    return "\n".join(lines)


def sync_pull_request(client: GitHubClient, repository: str, *, dry_run: bool = False,
                      merge: Merge | None = None,
                      render: Callable[[str], dict[str, bytes]] = render_remote,
                      title: str = "mlgen: update generated pipeline files",
                      base_branch: str | None = None) -> dict[str, object]:
    """`mlgen sync --pr` for one repository. Returns a JSON-able outcome."""
    from .integrations.github import open_or_update_sync_pr

    plan = plan_remote(client, repository, base_branch or "HEAD", merge, render)
    outcome: dict[str, object] = {"repository": repository, "changed": sorted(plan.changes),
                                  "conflicts": list(plan.conflicts)}
    if plan.up_to_date:
        return {**outcome, "status": "up-to-date"}
    if dry_run:
        return {**outcome, "status": "would-change"}
    result = open_or_update_sync_pr(client, repository, plan.changes, title, pr_body(plan),
                                    base_tree=plan.base_tree,
                                    base_branch=base_branch or plan.default_branch)
    return {**outcome, "status": result.action, "pr": result.pr_number, "url": result.pr_url,
            "commit": result.commit_sha}
