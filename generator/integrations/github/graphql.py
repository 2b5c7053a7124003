"""One GraphQL read that tells remote sync everything but the tree listing.

A remote sync needs, from one consistent commit of the branch it compares against: the commit
SHA (parent of the sync commit), its tree SHA, the text of `mlgen.yaml` and of the lock, and
whether `mlgen/sync` exists, where it points and which pull request is open from it. Over REST
that is five calls (branch, two blobs, the ref, the PR list); GitHub's GraphQL API answers it in
one POST, and the recursive tree is then read by SHA (REST), so an up-to-date repository costs
two requests and a changed one two reads plus the writes. Every field used is in GitHub's
published schema (the emulator validates each query against it, tests/emulators/github.py).

No PyGithub import here: the query goes through `GitHubClient.graphql`.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .client import GitHubClient

_SHA = re.compile(r"[0-9a-f]{40}")

# The commit the sync compares against: its SHA, tree and the two files read in full.
_COMMIT = """
fragment Snapshot on Commit {
  oid
  tree { oid }
  spec: file(path: $spec) { ...Text }
  lock: file(path: $lock) { ...Text }
}
fragment Text on TreeEntry {
  oid
  object { ... on Blob { text isBinary isTruncated } }
}
"""

# The sync branch: where it points, the head commit's message (a leftover branch is only moved
# when mlgen made that commit) and the pull requests open from it.
_SYNC = """
    sync: ref(qualifiedName: $sync) {
      target { oid ... on Commit { message } }
      associatedPullRequests(states: [OPEN], first: 10) {
        nodes { number url title body baseRefName headRefOid }
      }
    }
"""

_HEADS = {
    # the repository's default branch
    "default": ("", "defaultBranchRef { name target { ...Snapshot } }"),
    # a branch by name
    "branch": (", $branch: String!", "ref(qualifiedName: $branch) { name target { ...Snapshot } }"),
    # a commit by SHA (a pull request's head, from a webhook)
    "commit": (", $oid: GitObjectID!", "object(oid: $oid) { ...Snapshot }"),
}


def snapshot_query(kind: str) -> str:
    """The query text for `kind` ("default", "branch" or "commit")."""
    params, head = _HEADS[kind]
    return (f"query MlgenSyncSnapshot($owner: String!, $name: String!, $spec: String!, "
            f"$lock: String!, $sync: String!{params}) {{\n"
            f"  repository(owner: $owner, name: $name) {{\n    base: {head}\n{_SYNC}  }}\n}}\n"
            + _COMMIT)


@dataclass(frozen=True)
class FileAt:
    """A file of the snapshot commit: its blob SHA and, when GraphQL gave it as text, its bytes."""

    sha: str
    data: bytes | None  # None: binary or truncated; read the blob by SHA instead


@dataclass(frozen=True)
class OpenPull:
    number: int
    url: str
    title: str
    body: str
    head_sha: str
    base_ref: str


@dataclass(frozen=True)
class Snapshot:
    branch: str | None  # the branch read; None when a commit was read by SHA
    commit: str
    tree: str
    files: dict[str, FileAt] = field(default_factory=dict)  # of the paths asked for, those present
    sync_head: str | None = None  # where the sync branch points; None: no such branch
    sync_head_message: str = ""
    pulls: tuple[OpenPull, ...] = ()  # open pull requests from the sync branch

    def open_pull(self, base: str | None) -> OpenPull | None:
        """The open sync PR into `base` (the first one when `base` is None)."""
        return next((p for p in self.pulls if base is None or p.base_ref == base), None)


def _file(entry: dict[str, Any] | None) -> FileAt | None:
    if not entry:
        return None
    blob = entry.get("object") or {}
    text = blob.get("text")
    if text is None or blob.get("isBinary") or blob.get("isTruncated"):
        return FileAt(entry["oid"], None)
    data = str(text).encode("utf-8")
    # Trust the text only if it is the blob byte for byte (no newline or encoding rewrite on
    # the way): its git blob SHA must be the entry's. Otherwise the blob is read over REST.
    if hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest() != entry["oid"]:
        return FileAt(entry["oid"], None)
    return FileAt(entry["oid"], data)


def parse_snapshot(data: dict[str, Any], spec_path: str, lock_path: str) -> Snapshot | None:
    """The Snapshot in a GraphQL answer's `data`; None when the branch or commit is missing."""
    repo = data.get("repository") or {}
    base = repo.get("base")
    if not base:
        return None
    commit = base.get("target", base) if "target" in base else base
    if not commit or "oid" not in commit or "tree" not in commit:
        return None  # the ref points at a tag object or the OID is not a commit
    files = {path: f for path, f in ((spec_path, _file(commit.get("spec"))),
                                     (lock_path, _file(commit.get("lock")))) if f is not None}
    sync = repo.get("sync") or {}
    target = sync.get("target") or {}
    pulls = tuple(
        OpenPull(int(p["number"]), p["url"], p["title"], p.get("body") or "", p["headRefOid"],
                 p["baseRefName"])
        for p in ((sync.get("associatedPullRequests") or {}).get("nodes") or []) if p)
    return Snapshot(base.get("name"), commit["oid"], commit["tree"]["oid"], files,
                    target.get("oid"), target.get("message") or "", pulls)


def read_snapshot(client: GitHubClient, repository: str, ref: str = "HEAD", *,
                  spec_path: str, lock_path: str, sync_branch: str) -> Snapshot:
    """One GraphQL POST: the `ref` commit with two of its files, and the sync branch's state.

    `ref` is "HEAD" (the default branch), a branch name, or a 40-hex commit SHA.
    """
    from .client import GitHubError

    if repository.count("/") != 1:
        from ...errors import UsageError
        raise UsageError(f"repository {repository!r} must be OWNER/NAME")
    owner, name = repository.split("/")
    variables: dict[str, Any] = {"owner": owner, "name": name, "spec": spec_path,
                                 "lock": lock_path, "sync": f"refs/heads/{sync_branch}"}
    if ref == "HEAD":
        kind = "default"
    elif _SHA.fullmatch(ref):
        kind, variables["oid"] = "commit", ref
    else:
        kind, variables["branch"] = "branch", f"refs/heads/{ref.removeprefix('refs/heads/')}"
    data = client.graphql(f"read {repository}@{ref} (GraphQL)", snapshot_query(kind), variables)
    snap = parse_snapshot(data, spec_path, lock_path)
    if snap is None:
        what = "default branch" if ref == "HEAD" else ref
        raise GitHubError(f"read {repository}", 404, f"{what} not found (or not a commit)")
    return snap

