"""Publishing to GitHub: ONE commit (Git Data API), the sync branch, the sync pull request.

Split from `mlgen.integrations.github.client` (connection and reads), which stays the only module
that imports PyGithub: the few PyGithub classes needed here come through
`GitHubClient._gh_module`. Never a duplicate PR, never a force over someone else's commit.
"""
from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .client import SYNC_BRANCH, GitHubClient, GitHubError, git_blob_sha
from .graphql import OpenPull, Snapshot

if TYPE_CHECKING:
    from github.PullRequest import PullRequest
    from github.Repository import Repository


@dataclass(frozen=True)
class SyncResult:
    action: str  # "created", "updated", "unchanged"
    pr_number: int
    pr_url: str
    commit_sha: str
    requests: int = 0


def changes_digest(base_tree: str, changes: dict[str, bytes | None]) -> str:
    """Identifies "this set of changes on this base", recorded in the PR body's marker."""
    h = hashlib.sha256(base_tree.encode())
    for path in sorted(changes):
        data = changes[path]
        h.update(f"\0{path}\0{git_blob_sha(data) if data is not None else '-'}".encode())
    return h.hexdigest()[:20]


def _stub(client: GitHubClient, kind: str, sha: str) -> Any:
    """A PyGithub object that only carries a SHA, so passing it costs no request."""
    gh = client._gh_module
    cls = {"tree": gh.GitTree.GitTree, "commit": gh.GitCommit.GitCommit}[kind]
    return cls(client.gh.requester, {}, {"sha": sha}, completed=True)


def create_commit(client: GitHubClient, repo: Repository, *, base_commit: str, base_tree: str,
                  changes: dict[str, bytes | None], message: str,
                  modes: Mapping[str, int] | None = None) -> str:
    """ONE commit holding every change on top of `base_commit` (Git Data API). Returns its SHA.

    Text goes inline in the tree request; only binary content needs its own blob request.
    A None value deletes the path. `modes` gives a path's permission bits (0o755 makes it
    executable in git); anything else is a plain file.
    """
    gh = client._gh_module
    elements = []
    for path in sorted(changes):
        data = changes[path]
        mode = "100755" if (modes or {}).get(path, 0o644) & 0o111 else "100644"
        if data is None:
            elements.append(gh.InputGitTreeElement(path, "100644", "blob", sha=None))
            continue
        try:
            text = data.decode("utf-8")
            elements.append(gh.InputGitTreeElement(path, mode, "blob", content=text))
        except UnicodeDecodeError:
            encoded = base64.b64encode(data).decode()
            blob = client.call(f"create a blob in {repo.full_name}",
                               lambda e=encoded: repo.create_git_blob(e, "base64"), write=True)
            elements.append(gh.InputGitTreeElement(path, mode, "blob", sha=blob.sha))
    tree = client.call(f"create a tree in {repo.full_name}",
                       lambda: repo.create_git_tree(elements, _stub(client, "tree", base_tree)),
                       write=True)
    commit = client.call(f"create a commit in {repo.full_name}",
                         lambda: repo.create_git_commit(message, tree,
                                                        [_stub(client, "commit", base_commit)]),
                         write=True)
    return str(commit.sha)


def set_branch(client: GitHubClient, repo: Repository, branch: str, sha: str,
               exists: bool | None = None, message: str | None = None,
               current: tuple[str, str] | None = None) -> str:
    """Point `branch` at `sha`, creating it if needed.

    With `exists=True` (its open sync PR was checked) the branch is moved with force. With
    `exists=False` it is known to be absent and is created. Otherwise (`None`) it is created, or,
    if it exists without an open PR (a closed PR's leftover), only moved when its head is a
    commit mlgen made (same `message`), never over someone's commits. `current` is that head
    (SHA, message) when already known, from the GraphQL snapshot; else it is read on a 422.
    """
    def update() -> None:
        ref = client.gh.requester  # a direct PATCH avoids a GET of the ref first
        client.call(f"move {branch} in {repo.full_name}", lambda: ref.requestJsonAndCheck(
            "PATCH", f"{repo.url}/git/refs/heads/{branch}", input={"sha": sha, "force": True}),
            write=True)

    if exists:
        update()
        return "updated"
    if current is None:
        try:
            client.call(f"create {branch} in {repo.full_name}",
                        lambda: repo.create_git_ref(f"refs/heads/{branch}", sha), write=True)
            return "created"
        except GitHubError as exc:
            if exc.status != 422 or exists is False:
                raise
        # The branch exists: our own first POST went through before a retry, or it is left over.
        head = client.call(f"read {branch} of {repo.full_name}",
                           lambda: repo.get_git_ref(f"heads/{branch}")).object.sha
        if head == sha:
            return "created"
        current = (head, client.call(f"read commit {head[:12]} of {repo.full_name}",
                                     lambda: repo.get_git_commit(head)).message)
    if message is None or current[1].strip() != message.strip():
        raise GitHubError(f"sync of {repo.full_name}", 409,
                          f"{branch} exists with commits mlgen did not make and no open pull "
                          f"request; delete the branch or open a pull request from it, then "
                          "run again")
    update()
    return "updated"


def _open_pull(pr: PullRequest) -> OpenPull:
    return OpenPull(pr.number, pr.html_url, pr.title, pr.body or "", pr.head.sha, pr.base.ref)


def find_open_pr(client: GitHubClient, repo: Repository, branch: str) -> OpenPull | None:
    owner = repo.full_name.split("/")[0]
    pulls = client.call(f"list pull requests of {repo.full_name}", lambda: [
        _open_pull(p) for p in repo.get_pulls(state="open", head=f"{owner}:{branch}")])
    return pulls[0] if pulls else None


def open_or_update_pr(client: GitHubClient, repo: Repository, *, branch: str, base: str,
                      title: str, body: str, existing: OpenPull | None = None,
                      known_absent: bool = False) -> tuple[OpenPull, str]:
    """Open the PR for `branch`, or update the open one: never a duplicate."""
    if existing is None and not known_absent:
        existing = find_open_pr(client, repo, branch)
    if existing is None:
        try:
            pr = client.call(f"open a pull request in {repo.full_name}", lambda: _open_pull(
                repo.create_pull(base=base, head=branch, title=title, body=body)), write=True)
            return pr, "created"
        except GitHubError as exc:
            if exc.status != 422 or "already exists" not in str(exc):
                raise
            existing = find_open_pr(client, repo, branch)
            if existing is None:
                raise
    if existing.title != title or existing.body != body:
        number = existing.number
        client.call(f"update pull request #{number} of {repo.full_name}",
                    lambda: client.gh.requester.requestJsonAndCheck(
                        "PATCH", f"{repo.url}/pulls/{number}", input={"title": title,
                                                                      "body": body}),
                    write=True)
        return existing, "updated"
    return existing, "unchanged"


def sync_marker(digest: str, commit: str = "") -> str:
    return f"<!-- mlgen:sync changes={digest}" + (f" commit={commit}" if commit else "") + " -->"


def _marker_fields(body: str) -> dict[str, str]:
    match = re.search(r"<!-- mlgen:sync ([^>]*?) -->", body)
    return dict(f.split("=", 1) for f in match.group(1).split() if "=" in f) if match else {}


def pull_holding(snapshot: Snapshot, base_branch: str | None,
                 changes: dict[str, bytes | None]) -> OpenPull | None:
    """The open sync PR that already holds exactly `changes` on the snapshot's commit (its
    marker says so), or None. Lets a dry run report "nothing to do" without a request."""
    pull = snapshot.open_pull(base_branch or snapshot.branch)
    if pull is not None and _marker_fields(pull.body).get("changes") == changes_digest(
            snapshot.tree, changes):
        return pull
    return None


def open_or_update_sync_pr(client: GitHubClient, repo_name: str,
                           changes: dict[str, bytes | None], title: str, body: str, *,
                           base_tree: str | None = None, base_branch: str | None = None,
                           branch: str = SYNC_BRANCH,
                           modes: Mapping[str, int] | None = None,
                           snapshot: Snapshot | None = None) -> SyncResult:
    """Put `changes` (relative to the default branch) on `branch` as one commit, with its PR.

    `snapshot` is what `read_snapshot` saw when the changes were computed (base commit, sync
    branch, open PR): with it no further read is made. Without it the open PR and the base
    branch are read over REST, and `base_tree` (the tree SHA the changes were computed against)
    stops the sync if the base branch moved since, rather than revert someone's commit. A
    hidden marker in the PR body records the changes and the commit mlgen made, so a rerun with
    the same changes makes no write, and a commit someone else pushed to the branch (a conflict
    resolved by hand) is never forced away.
    """
    repo = client.repo(repo_name)
    if not changes:
        raise ValueError("open_or_update_sync_pr needs at least one change")
    if snapshot is not None:
        base_branch = base_branch or snapshot.branch
        pulls = list(snapshot.pulls)
        head_sha, head_tree = snapshot.commit, snapshot.tree
    else:
        pulls = [p for p in [find_open_pr(client, repo, branch)] if p is not None]
    existing = next((p for p in pulls if base_branch is None or p.base_ref == base_branch), None)
    if existing is None and pulls:
        # Moving the branch would rewrite a pull request into another base under its reviewers.
        raise GitHubError(f"sync of {repo_name}", 409,
                          f"{branch} already has an open pull request into {pulls[0].base_ref} "
                          f"(#{pulls[0].number}); merge or close it before syncing {base_branch}")
    if existing is not None:
        fields = _marker_fields(existing.body)
        if base_tree is not None and fields.get("changes") == changes_digest(base_tree, changes):
            return SyncResult("unchanged", existing.number, existing.url, existing.head_sha)
        if fields.get("commit") and fields["commit"] != existing.head_sha:
            raise GitHubError(f"sync of {repo_name}", 409,
                              f"{branch} (pull request #{existing.number}) has commits mlgen did "
                              "not make; merge or close that pull request, then run again")
    if base_branch is None:
        base_branch = existing.base_ref if existing else client.call(
            f"read {repo_name}", lambda: repo.default_branch)
    if snapshot is None:
        head = client.call(f"read branch {base_branch} of {repo_name}",
                           lambda: repo.get_branch(base_branch))
        head_sha, head_tree = head.commit.sha, head.commit.commit.tree.sha
    if base_tree is not None and head_tree != base_tree:
        raise GitHubError(f"sync of {repo_name}", 409,
                          f"{base_branch} moved while mlgen was comparing (or is not the branch "
                          "that was read); run again")
    digest = changes_digest(head_tree, changes)
    if existing is not None and _marker_fields(existing.body).get("changes") == digest:
        return SyncResult("unchanged", existing.number, existing.url, existing.head_sha)
    commit = create_commit(client, repo, base_commit=head_sha, base_tree=head_tree,
                           changes=changes, message=title, modes=modes)
    full_body = f"{body.rstrip()}\n\n{sync_marker(digest, commit)}\n"
    if existing is not None:
        set_branch(client, repo, branch, commit, exists=True)
    elif snapshot is not None and snapshot.sync_head is not None:
        set_branch(client, repo, branch, commit, message=title,
                   current=(snapshot.sync_head, snapshot.sync_head_message))
    else:
        set_branch(client, repo, branch, commit, message=title)
    pr, action = open_or_update_pr(client, repo, branch=branch, base=base_branch, title=title,
                                   body=full_body, existing=existing,
                                   known_absent=existing is None)
    return SyncResult("created" if action == "created" else "updated", pr.number, pr.url,
                      commit)
