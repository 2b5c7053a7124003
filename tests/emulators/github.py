"""A GitHub REST and GraphQL emulator backed by real git, for mlgen's tests and benchmarks.

github.com cannot be reached from CI, so the GitHub features are driven by the real PyGithub
client against this server. Every emulated repository is a bare git repository under the state
directory: blob, tree and commit SHAs are computed by git itself, so a test can `git clone` the
repository (`Emulator.repo_path(...)`) and read the commit mlgen made. Answers follow the
operations in tests/reference/github-openapi-subset.json (checked by
tests/publish/github/test_emulator_conformance.py); webhook payloads follow github-webhooks-
subset.json.

GraphQL (POST /graphql, served by tests/emulators/github_graphql.py): every query is parsed
and validated against GitHub's published schema, the introspection JSON of the npm package
@octokit/graphql-schema pinned in package.json
(node_modules/@octokit/graphql-schema/schema.json, installed by scripts/install-tools.sh;
override with MLGEN_GITHUB_GRAPHQL_SCHEMA), and errors come back as GitHub sends them: HTTP 200
with `errors` (message, locations, path; `"type": "NOT_FOUND"` for a missing repository).
Only queries run, and only these fields; selecting any other field of the schema fails the query
with "field Type.x is not emulated" instead of answering null:
  Query.repository(owner, name)
  Repository.name, nameWithOwner, defaultBranchRef, ref(qualifiedName), object(oid|expression)
  Ref.name, prefix, target, associatedPullRequests(states, first|last, headRefName, baseRefName)
  GitObject (Commit, Tree, Blob, Tag).oid, abbreviatedOid
  Commit.message, tree, file(path), parents(first|last)
  TreeEntry.oid, name, path, mode, type, object
  Blob.text, isBinary, byteSize, isTruncated (text stops at 512 KiB: BLOB_TEXT_LIMIT)
  PullRequest.number, url, title, body, baseRefName, headRefName, headRefOid, state, author.login
  connections: nodes, totalCount
A query is counted as "GRAPHQL" in the per-method counts (it writes nothing), as "POST /graphql"
by route; faults, auth and the rate limit apply to it as to REST (X-RateLimit-Resource: graphql),
except that a spent primary limit answers 200 with an error of type RATE_LIMITED, as github.com
does. A spent budget refills once its X-RateLimit-Reset time has passed.

Run it alone:  python -m tests.emulators.github --port 8765 [--state DIR] [--latency-ms 20]
then point mlgen at it: GITHUB_API_URL=http://127.0.0.1:8765 GITHUB_TOKEN=emulator-token.

Administration and inspection live under /_emulator/ (no auth):
  GET  /_emulator/state        repositories, refs, pull requests, comments, dispatches
  GET  /_emulator/requests     request counts by method (and by "METHOD route")
  POST /_emulator/reset        zero the counters and forget recorded deliveries
  POST /_emulator/repos        {"full_name", "files": {path: text}, "default_branch", "topics",
                                "permissions": {login: "admin"|"write"|"read"}}
  POST /_emulator/forks        {"parent": "OWNER/NAME", "full_name"}: fork it (a copy of its
                                branches, owned by the fork's owner; the default token may
                                read it, not write). A pull request from a fork names its head
                                "FORK_OWNER:branch"; its head commit is fetched into the base
                                repository as refs/pull/N/head, as GitHub does, and a push to the
                                fork's branch fires `synchronize` on the base repository.
  POST /_emulator/users        {"login", "token"}
  POST /_emulator/faults       {"latency_ms", "fail_5xx": n, "secondary_limit": n,
                                "retry_after": s, "rate_limit_remaining": n, "match": regex}
  POST /_emulator/hooks        {"url", "secret"}: deliver webhooks there (signed)
  GET  /_emulator/deliveries   webhook deliveries made so far (event, payload, status)
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import itertools
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

ZERO_SHA = "0" * 40
DEFAULT_TOKEN = "emulator-token"
DEFAULT_LOGIN = "mlgen-bot"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ApiError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None,
                 errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}
        self.errors = errors


# ---------------------------------------------------------------- git, the source of truth

class GitRepo:
    """One bare repository. Every object goes through the git CLI so SHAs are git's own."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Lock()

    def git(self, *args: str, input: bytes | None = None, env: dict[str, str] | None = None,
            check: bool = True) -> bytes:
        full_env = {**os.environ, "GIT_DIR": str(self.path), **(env or {})}
        proc = subprocess.run(["git", *args], input=input, capture_output=True, env=full_env,
                              check=False)
        if check and proc.returncode != 0:
            raise ApiError(422, f"git {args[0]} failed: {proc.stderr.decode(errors='replace')}")
        return proc.stdout

    @classmethod
    def init(cls, path: Path, default_branch: str) -> GitRepo:
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["git", "init", "-q", "--bare", f"--initial-branch={default_branch}",
                        str(path)], check=True, capture_output=True)
        # Lets `git clone` over dumb HTTP work (and is harmless for path clones).
        (path / "hooks" / "post-update.sample").unlink(missing_ok=True)
        return cls(path)

    def seed(self, branch: str, files: dict[str, bytes], message: str) -> str:
        """One commit holding `files`, made with git fast-import (one process per repository)."""
        stream = [f"commit refs/heads/{branch}\n".encode(),
                  b"committer Seed <seed@example.com> 1700000000 +0000\n",
                  f"data {len(message.encode())}\n{message}\n".encode()]
        for path, data in sorted(files.items()):
            stream.append(f"M 100644 inline {path}\ndata {len(data)}\n".encode() + data + b"\n")
        self.git("fast-import", "--quiet", input=b"".join(stream))
        self.git("update-server-info")
        return self.resolve(f"refs/heads/{branch}") or ""

    def resolve(self, rev: str) -> str | None:
        out = self.git("rev-parse", "--verify", "--quiet", rev, check=False).strip()
        return out.decode() if out else None

    def object_type(self, sha: str) -> str | None:
        if not re.fullmatch(r"[0-9a-f]{40}", sha):
            return None
        out = self.git("cat-file", "-t", sha, check=False).strip()
        return out.decode() or None

    def read_blob(self, sha: str) -> bytes:
        return self.git("cat-file", "blob", sha)

    def hash_blob(self, data: bytes) -> str:
        return self.git("hash-object", "-w", "--stdin", input=data).decode().strip()

    def ls_tree(self, treeish: str, recursive: bool) -> list[dict[str, Any]]:
        args = ["ls-tree", "-l", "-z"] + (["-r", "-t"] if recursive else []) + [treeish]
        entries = []
        for rec in self.git(*args).split(b"\0"):
            if not rec:
                continue
            meta, _, path = rec.partition(b"\t")
            mode, typ, sha, size = meta.decode().split()
            entry: dict[str, Any] = {"path": path.decode(), "mode": mode, "type": typ, "sha": sha}
            if typ == "blob":
                entry["size"] = int(size)
            entries.append(entry)
        return entries

    def write_tree(self, base_tree: str | None, changes: list[tuple[str, str, str | None]]) -> str:
        """Apply (path, mode, sha or None to delete) on `base_tree` through a private index."""
        fd, index = tempfile.mkstemp(prefix="emu-index-")
        os.close(fd)
        os.unlink(index)
        env = {"GIT_INDEX_FILE": index}
        try:
            if base_tree:
                self.git("read-tree", base_tree, env=env)
            lines = []
            for path, mode, sha in changes:
                if sha is None:
                    lines.append(f"0 {ZERO_SHA}\t{path}\n")
                else:
                    lines.append(f"{mode} {sha}\t{path}\n")
            self.git("update-index", "--index-info", input="".join(lines).encode(), env=env)
            return self.git("write-tree", env=env).decode().strip()
        finally:
            Path(index).unlink(missing_ok=True)

    def commit_tree(self, tree: str, parents: list[str], message: str,
                    author: dict[str, str], committer: dict[str, str]) -> str:
        env = {"GIT_AUTHOR_NAME": author["name"], "GIT_AUTHOR_EMAIL": author["email"],
               "GIT_AUTHOR_DATE": author["date"], "GIT_COMMITTER_NAME": committer["name"],
               "GIT_COMMITTER_EMAIL": committer["email"], "GIT_COMMITTER_DATE": committer["date"]}
        args = ["commit-tree", tree]
        for parent in parents:
            args += ["-p", parent]
        return self.git(*args, input=message.encode(), env=env).decode().strip()

    def commit_info(self, sha: str) -> dict[str, Any]:
        raw = self.git("cat-file", "commit", sha).decode(errors="replace")
        header, _, message = raw.partition("\n\n")
        info: dict[str, Any] = {"parents": [], "message": message}
        for line in header.splitlines():
            key, _, value = line.partition(" ")
            if key == "tree":
                info["tree"] = value
            elif key == "parent":
                info["parents"].append(value)
            elif key in ("author", "committer"):
                m = re.match(r"(.*) <(.*)> (\d+) ([+-]\d{4})", value)
                if m:
                    ts = datetime.fromtimestamp(int(m.group(3)), UTC)
                    info[key] = {"name": m.group(1), "email": m.group(2),
                                 "date": ts.strftime("%Y-%m-%dT%H:%M:%SZ")}
        return info

    def is_ancestor(self, old: str, new: str) -> bool:
        env = {**os.environ, "GIT_DIR": str(self.path)}
        return (
            subprocess.run(
                ["git", "merge-base", "--is-ancestor", old, new],
                env=env,
                check=False,
                capture_output=True,
            ).returncode
            == 0
        )

    def update_ref(self, ref: str, sha: str | None, old: str | None = None) -> None:
        if sha is None:
            self.git("update-ref", "-d", ref)
        else:
            self.git("update-ref", ref, sha, *([old] if old else []))
        self.git("update-server-info")

    def refs(self) -> dict[str, str]:
        out = self.git("for-each-ref", "--format=%(refname) %(objectname)").decode()
        return dict(line.split(" ", 1) for line in out.splitlines() if line)

    def changed_files(self, base: str, head: str) -> list[dict[str, Any]]:
        merge_base = self.git("merge-base", base, head, check=False).decode().strip() or base
        out = self.git("diff-tree", "-r", "--numstat", "-z", "--no-renames", merge_base, head)
        status = self.git("diff-tree", "-r", "--name-status", "-z", "--no-renames",
                          merge_base, head).decode().split("\0")
        kinds = dict(zip(status[1::2], status[0::2]))
        files = []
        for rec in out.decode().split("\0"):
            if not rec:
                continue
            add, dele, path = rec.split("\t", 2)
            files.append({"filename": path, "additions": int(add) if add != "-" else 0,
                          "deletions": int(dele) if dele != "-" else 0,
                          "status": {"A": "added", "D": "removed"}.get(kinds.get(path, "M"),
                                                                       "modified")})
        return files


# ---------------------------------------------------------------- emulator state

@dataclass
class Faults:
    latency_ms: float = 0.0
    fail_5xx: int = 0            # the next N matching requests answer 502
    secondary_limit: int = 0     # the next N matching requests answer 403 + Retry-After
    retry_after: int = 1
    rate_limit: int = 5000
    rate_limit_remaining: int | None = None  # None: never runs out
    rate_limit_reset: int = 0
    match: str = ""              # regex on "METHOD /path"; empty matches everything


@dataclass
class Repo:
    id: int
    owner: str
    name: str
    git: GitRepo
    default_branch: str
    topics: list[str]
    permissions: dict[str, str]
    created_at: str = field(default_factory=_now)
    pulls: list[dict[str, Any]] = field(default_factory=list)
    comments: list[dict[str, Any]] = field(default_factory=list)
    dispatches: list[dict[str, Any]] = field(default_factory=list)
    statuses: list[dict[str, Any]] = field(default_factory=list)
    parent: str | None = None  # full name of the repository this one is a fork of

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


class State:
    def __init__(self, root: Path, base_url: str = "") -> None:
        self.root = root
        self.base_url = base_url
        self.lock = threading.RLock()
        self.repos: dict[str, Repo] = {}
        self.tokens: dict[str, str] = {DEFAULT_TOKEN: DEFAULT_LOGIN}
        self.user_ids: dict[str, int] = {}
        self.ids = itertools.count(1000)
        self.faults = Faults()
        self.counts: dict[str, int] = {}
        self.route_counts: dict[str, int] = {}
        self.hooks: list[dict[str, str]] = []
        self.deliveries: list[dict[str, Any]] = []

    def user_id(self, login: str) -> int:
        with self.lock:
            if login not in self.user_ids:
                self.user_ids[login] = next(self.ids)
            return self.user_ids[login]

    def add_repo(self, full_name: str, files: dict[str, str | bytes] | None = None,
                 default_branch: str = "main", topics: list[str] | None = None,
                 permissions: dict[str, str] | None = None) -> Repo:
        owner, name = full_name.split("/")
        git = GitRepo.init(self.root / owner / f"{name}.git", default_branch)
        if files:
            data = {p: c.encode() if isinstance(c, str) else c for p, c in files.items()}
            git.seed(default_branch, data, "Initial commit")
        repo = Repo(next(self.ids), owner, name, git, default_branch, list(topics or []),
                    {DEFAULT_LOGIN: "admin", owner: "admin", **(permissions or {})})
        with self.lock:
            self.repos[full_name.lower()] = repo
        return repo

    def add_fork(self, parent: str, full_name: str) -> Repo:
        """Fork `parent` as `full_name`: its branches copied, owned by the fork's owner."""
        source = self.repo(*parent.split("/"))
        owner, name = full_name.split("/")
        git = GitRepo.init(self.root / owner / f"{name}.git", source.default_branch)
        git.git("fetch", "-q", str(source.git.path), "+refs/heads/*:refs/heads/*")
        git.git("update-server-info")
        repo = Repo(next(self.ids), owner, name, git, source.default_branch, [],
                    {owner: "admin", DEFAULT_LOGIN: "read"}, parent=source.full_name)
        with self.lock:
            self.repos[full_name.lower()] = repo
        return repo

    def head_repo(self, base: Repo, pull: dict[str, Any]) -> Repo:
        """The repository a pull request's head branch lives in (a fork, or the base)."""
        if pull.get("head_repo"):
            return self.repos.get(pull["head_repo"].lower(), base)
        return base

    def repo(self, owner: str, name: str) -> Repo:
        repo = self.repos.get(f"{owner}/{name}".lower())
        if repo is None:
            raise ApiError(404, "Not Found")
        return repo

    def summary(self) -> dict[str, Any]:
        with self.lock:
            return {
                "repos": {
                    r.full_name: {"path": str(r.git.path), "default_branch": r.default_branch,
                                  "parent": r.parent,
                                  "refs": r.git.refs(), "pulls": [
                                      {k: p[k] for k in ("number", "state", "title", "head_ref",
                                                         "base_ref")} for p in r.pulls],
                                  "comments": [{k: c[k] for k in ("id", "issue", "user", "body")}
                                               for c in r.comments],
                                  "dispatches": r.dispatches, "statuses": r.statuses}
                    for r in self.repos.values()},
                "requests": dict(self.counts),
            }


# ---------------------------------------------------------------- response shapes

USER_URLS = ("events_url", "followers_url", "following_url", "gists_url", "organizations_url",
             "received_events_url", "repos_url", "starred_url", "subscriptions_url")
REPO_URLS = ("archive", "assignees", "blobs", "branches", "collaborators", "comments", "commits",
             "compare", "contents", "contributors", "deployments", "downloads", "events", "forks",
             "git_commits", "git_refs", "git_tags", "hooks", "issue_comment", "issue_events",
             "issues", "keys", "labels", "languages", "merges", "milestones", "notifications",
             "pulls", "releases", "stargazers", "statuses", "subscribers", "subscription", "tags",
             "teams", "trees")


class Shapes:
    """Builds bodies that follow GitHub's schemas: every required key, real values."""

    def __init__(self, state: State) -> None:
        self.s = state

    @property
    def api(self) -> str:
        return self.s.base_url

    def user(self, login: str, kind: str = "User") -> dict[str, Any]:
        url = f"{self.api}/users/{login}"
        body: dict[str, Any] = {"login": login, "id": self.s.user_id(login),
                                "node_id": f"U_{login}", "avatar_url": f"{url}/avatar",
                                "gravatar_id": "", "url": url, "html_url": f"{url}/html",
                                "type": kind, "site_admin": False}
        body.update({k: f"{url}/{k[:-4]}" for k in USER_URLS})
        return body

    def repo(self, r: Repo, full: bool = True) -> dict[str, Any]:
        url = f"{self.api}/repos/{r.full_name}"
        body: dict[str, Any] = {
            "id": r.id, "node_id": f"R_{r.id}", "name": r.name, "full_name": r.full_name,
            "owner": self.user(r.owner, "User" if r.parent else "Organization"),
            "private": True, "fork": r.parent is not None,
            "description": None, "url": url, "html_url": f"{url}/html",
            "clone_url": f"{self.api}/git/{r.full_name}.git",
            "git_url": f"git://emulator/{r.full_name}.git",
            "ssh_url": f"git@emulator:{r.full_name}.git", "svn_url": f"{url}/svn",
            "mirror_url": None, "homepage": None, "language": "Python", "license": None,
            "default_branch": r.default_branch, "topics": r.topics,
            "forks": 0, "forks_count": 0, "open_issues": 0, "open_issues_count": 0,
            "stargazers_count": 0, "watchers": 0, "watchers_count": 0, "size": 0,
            "network_count": 0, "subscribers_count": 0,
            "has_issues": True, "has_projects": False, "has_wiki": False, "has_pages": False,
            "has_discussions": False, "has_downloads": False, "archived": False,
            "disabled": False, "pushed_at": r.created_at, "created_at": r.created_at,
            "updated_at": r.created_at, "visibility": "private",
        }
        body.update({f"{k}_url": f"{url}/{k}" for k in REPO_URLS})
        if full and r.parent:  # full-repository: the fork's parent and its network's root
            parent = self.s.repos[r.parent.lower()]
            source = parent
            while source.parent:
                source = self.s.repos[source.parent.lower()]
            body.update(parent=self.repo(parent, full=False),
                        source=self.repo(source, full=False))
        return body

    def ref(self, r: Repo, ref: str, sha: str) -> dict[str, Any]:
        url = f"{self.api}/repos/{r.full_name}"
        kind = r.git.object_type(sha) or "commit"
        return {"ref": ref, "node_id": f"REF_{sha[:10]}", "url": f"{url}/git/{ref}",
                "object": {"type": kind, "sha": sha, "url": f"{url}/git/{kind}s/{sha}"}}

    def commit(self, r: Repo, sha: str) -> dict[str, Any]:
        url = f"{self.api}/repos/{r.full_name}"
        info = r.git.commit_info(sha)
        return {"sha": sha, "node_id": f"C_{sha[:10]}", "url": f"{url}/git/commits/{sha}",
                "html_url": f"{url}/commit/{sha}", "author": info["author"],
                "committer": info["committer"], "message": info["message"],
                "tree": {"sha": info["tree"], "url": f"{url}/git/trees/{info['tree']}"},
                "parents": [{"sha": p, "url": f"{url}/git/commits/{p}",
                             "html_url": f"{url}/commit/{p}"} for p in info["parents"]],
                "verification": {"verified": False, "reason": "unsigned", "signature": None,
                                 "payload": None, "verified_at": None}}

    def tree(self, r: Repo, sha: str, entries: list[dict[str, Any]]) -> dict[str, Any]:
        url = f"{self.api}/repos/{r.full_name}/git"
        for e in entries:
            e["url"] = f"{url}/{e['type']}s/{e['sha']}"
        return {"sha": sha, "url": f"{url}/trees/{sha}", "tree": entries, "truncated": False}

    def pull_html_url(self, r: Repo, number: int) -> str:
        """The pull request's page (REST html_url, GraphQL url)."""
        return f"{self.api}/repos/{r.full_name}/pulls/{number}/html"

    def pull(self, r: Repo, p: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.api}/repos/{r.full_name}"
        purl = f"{url}/pulls/{p['number']}"
        head_repo = self.s.head_repo(r, p)
        head_sha = head_repo.git.resolve(f"refs/heads/{p['head_ref']}") or p["head_sha"]
        base_sha = r.git.resolve(f"refs/heads/{p['base_ref']}") or ""
        files = r.git.changed_files(base_sha, head_sha) if base_sha and head_sha else []
        links = {
            "self": purl,
            "html": self.pull_html_url(r, p["number"]),
            "issue": f"{url}/issues/{p['number']}",
            "comments": f"{url}/issues/{p['number']}/comments",
            "review_comments": f"{purl}/comments",
            "review_comment": f"{url}/pulls/comments{{/number}}",
            "commits": f"{purl}/commits",
            "statuses": f"{url}/statuses/{head_sha}",
        }

        def side(ref: str, sha: str, repo: Repo = r) -> dict[str, Any]:
            return {"label": f"{repo.owner}:{ref}", "ref": ref, "sha": sha,
                    "user": self.user(repo.owner, "User" if repo.parent else "Organization"),
                    "repo": self.repo(repo, full=False)}

        return {
            "url": purl, "id": p["id"], "node_id": f"PR_{p['id']}",
            "html_url": self.pull_html_url(r, p["number"]),
            "diff_url": f"{purl}.diff", "patch_url": f"{purl}.patch",
            "issue_url": f"{url}/issues/{p['number']}", "commits_url": f"{purl}/commits",
            "review_comments_url": f"{purl}/comments",
            "review_comment_url": f"{url}/pulls/comments{{/number}}",
            "comments_url": f"{url}/issues/{p['number']}/comments",
            "statuses_url": f"{url}/statuses/{head_sha}", "number": p["number"],
            "state": p["state"], "locked": False, "title": p["title"], "body": p["body"],
            "user": self.user(p["user"]), "labels": [], "milestone": None,
            "assignee": None, "assignees": [], "requested_reviewers": [], "requested_teams": [],
            "created_at": p["created_at"], "updated_at": p["updated_at"],
            "closed_at": p.get("closed_at"), "merged_at": None, "merge_commit_sha": None,
            "head": side(p["head_ref"], head_sha, head_repo),
            "base": side(p["base_ref"], base_sha),
            "_links": {k: {"href": v} for k, v in links.items()},
            "author_association": "MEMBER", "auto_merge": None, "draft": p.get("draft", False),
            "merged": False, "mergeable": True, "rebaseable": True, "mergeable_state": "clean",
            "merged_by": None, "comments": sum(1 for c in r.comments
                                               if c["issue"] == p["number"]),
            "review_comments": 0, "maintainer_can_modify": False, "commits": 1,
            "additions": sum(f["additions"] for f in files),
            "deletions": sum(f["deletions"] for f in files), "changed_files": len(files),
        }

    def comment(self, r: Repo, c: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.api}/repos/{r.full_name}"
        return {"id": c["id"], "node_id": f"IC_{c['id']}",
                "url": f"{url}/issues/comments/{c['id']}",
                "html_url": f"{url}/issues/{c['issue']}#issuecomment-{c['id']}",
                "issue_url": f"{url}/issues/{c['issue']}", "body": c["body"],
                "user": self.user(c["user"]), "created_at": c["created_at"],
                "updated_at": c["updated_at"], "author_association": "MEMBER"}

    def rate(self, limit: int, remaining: int, reset: int) -> dict[str, int]:
        return {"limit": limit, "remaining": remaining, "reset": reset,
                "used": limit - remaining}


# ---------------------------------------------------------------- the API

Handler = Callable[["Request"], tuple[int, Any]]


@dataclass
class Request:
    method: str
    path: str
    params: dict[str, str]
    body: Any
    login: str | None
    match: dict[str, str]


class Api:
    """Routes (METHOD, path regex) to handlers; each returns (status, JSON body or None)."""

    def __init__(self, state: State) -> None:
        self.s = state
        self.shape = Shapes(state)
        # imported here: graphql-core (dev extra) is needed only once a GraphQL query comes
        from tests.emulators.github_graphql import GraphQL

        self.graphql = GraphQL(state, self.shape)
        R = r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)"
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = [
            (m, re.compile(p + "$"), h) for m, p, h in [
                ("GET", r"/user", self.get_user),
                ("GET", r"/rate_limit", self.get_rate_limit),
                ("POST", r"/graphql", self.graphql.answer),
                ("GET", r"/orgs/(?P<org>[^/]+)/repos", self.list_org_repos),
                ("GET", r"/search/repositories", self.search_repos),
                ("GET", R, self.get_repo),
                ("GET", R + r"/branches/(?P<branch>.+)", self.get_branch),
                ("POST", R + r"/git/blobs", self.create_blob),
                ("GET", R + r"/git/blobs/(?P<sha>[^/]+)", self.get_blob),
                ("POST", R + r"/git/trees", self.create_tree),
                ("GET", R + r"/git/trees/(?P<sha>.+)", self.get_tree),
                ("POST", R + r"/git/commits", self.create_commit),
                ("GET", R + r"/git/commits/(?P<sha>[^/]+)", self.get_commit),
                ("GET", R + r"/git/ref/(?P<ref>.+)", self.get_ref),
                ("POST", R + r"/git/refs", self.create_ref),
                ("PATCH", R + r"/git/refs/(?P<ref>.+)", self.update_ref),
                ("DELETE", R + r"/git/refs/(?P<ref>.+)", self.delete_ref),
                ("GET", R + r"/pulls", self.list_pulls),
                ("POST", R + r"/pulls", self.create_pull),
                ("GET", R + r"/pulls/(?P<number>\d+)", self.get_pull),
                ("PATCH", R + r"/pulls/(?P<number>\d+)", self.update_pull),
                ("GET", R + r"/pulls/(?P<number>\d+)/files", self.list_pull_files),
                ("GET", R + r"/issues/(?P<number>\d+)/comments", self.list_comments),
                ("POST", R + r"/issues/(?P<number>\d+)/comments", self.create_comment),
                ("PATCH", R + r"/issues/comments/(?P<id>\d+)", self.update_comment),
                ("DELETE", R + r"/issues/comments/(?P<id>\d+)", self.delete_comment),
                ("POST", R + r"/actions/workflows/(?P<workflow>[^/]+)/dispatches", self.dispatch),
                ("POST", R + r"/statuses/(?P<sha>[0-9a-f]{40})", self.create_status),
                # Not in the reference subset; shaped like GitHub's repos/get-collaborator-
                # permission-level answer (permission, role_name, user).
                ("GET", R + r"/collaborators/(?P<user>[^/]+)/permission", self.permission),
            ]]

    def handle(self, req: Request) -> tuple[int, Any]:
        for method, pattern, handler in self.routes:
            m = pattern.match(req.path)
            if m and method == req.method:
                req.match = {k: urllib.parse.unquote(v) for k, v in m.groupdict().items()}
                if req.login is None:
                    raise ApiError(401, "Bad credentials")
                return handler(req)
        raise ApiError(404, "Not Found")

    # -- helpers
    def _repo(self, req: Request) -> Repo:
        return self.s.repo(req.match["owner"], req.match["repo"])

    def _writable(self, req: Request, repo: Repo) -> None:
        if repo.permissions.get(req.login or "", "none") not in ("admin", "maintain", "write"):
            raise ApiError(403, "Resource not accessible by integration")

    def _resolve(self, repo: Repo, name: str) -> str:
        """A SHA, a branch name, refs/..., or HEAD (the default branch), as GitHub accepts."""
        if name == "HEAD":
            name = f"refs/heads/{repo.default_branch}"
        for candidate in (name, f"refs/heads/{name}", f"refs/tags/{name}"):
            if re.fullmatch(r"[0-9a-f]{40}", candidate) and repo.git.object_type(candidate):
                return candidate
            if candidate.startswith("refs/"):
                sha = repo.git.resolve(candidate)
                if sha:
                    return sha
        raise ApiError(404, "Not Found")

    @staticmethod
    def _need(body: Any, *keys: str) -> None:
        if not isinstance(body, dict):
            raise ApiError(400, "Problems parsing JSON")
        missing = [k for k in keys if k not in body]
        if missing:
            raise ApiError(422, "Invalid request.\n\n" + ", ".join(
                f'"{k}" wasn\'t supplied.' for k in missing))

    # -- users, limits, listings
    def get_user(self, req: Request) -> tuple[int, Any]:
        assert req.login
        body = self.shape.user(req.login)
        body.update({"name": req.login, "company": None, "blog": "", "location": None,
                     "email": None, "hireable": None, "bio": None, "public_repos": 0,
                     "public_gists": 0, "followers": 0, "following": 0,
                     "created_at": "2020-01-01T00:00:00Z", "updated_at": "2020-01-01T00:00:00Z",
                     "private_gists": 0, "total_private_repos": 0, "owned_private_repos": 0,
                     "disk_usage": 0, "collaborators": 0, "two_factor_authentication": True})
        return 200, body

    def get_rate_limit(self, req: Request) -> tuple[int, Any]:
        f = self.s.faults
        remaining = f.rate_limit if f.rate_limit_remaining is None else f.rate_limit_remaining
        core = self.shape.rate(f.rate_limit, remaining, f.rate_limit_reset)
        return 200, {"rate": core, "resources": {"core": core,
                                                 "search": self.shape.rate(30, 30, 0)}}

    def _page(self, req: Request, items: list[Any]) -> list[Any]:
        per_page = min(int(req.params.get("per_page", 30)), 100)
        page = int(req.params.get("page", 1))
        return items[(page - 1) * per_page: page * per_page]

    def list_org_repos(self, req: Request) -> tuple[int, Any]:
        org = req.match["org"].lower()
        repos = [r for r in self.s.repos.values() if r.owner.lower() == org]
        return 200, self._page(req, [self.shape.repo(r) for r in repos])

    def search_repos(self, req: Request) -> tuple[int, Any]:
        terms = req.params.get("q", "").split()
        orgs = [t.split(":", 1)[1].lower() for t in terms if t.startswith(("org:", "user:"))]
        topics = [t.split(":", 1)[1] for t in terms if t.startswith("topic:")]
        found = [r for r in self.s.repos.values()
                 if (not orgs or r.owner.lower() in orgs)
                 and all(t in r.topics for t in topics)]
        items = [dict(self.shape.repo(r), score=1.0) for r in found]
        return 200, {"total_count": len(items), "incomplete_results": False,
                     "items": self._page(req, items)}

    def get_repo(self, req: Request) -> tuple[int, Any]:
        return 200, self.shape.repo(self._repo(req))

    def get_branch(self, req: Request) -> tuple[int, Any]:
        repo = self._repo(req)
        name = req.match["branch"]
        sha = repo.git.resolve(f"refs/heads/{name}")
        if not sha:
            raise ApiError(404, "Branch not found")
        c = self.shape.commit(repo, sha)
        url = f"{self.shape.api}/repos/{repo.full_name}"
        return 200, {
            "name": name, "protected": False, "protection_url": f"{url}/branches/{name}/protection",
            "protection": {"enabled": False, "required_status_checks": {
                "enforcement_level": "off", "contexts": [], "checks": []}},
            "_links": {"self": f"{url}/branches/{name}", "html": f"{url}/tree/{name}"},
            "commit": {"sha": sha, "node_id": c["node_id"], "url": f"{url}/commits/{sha}",
                       "html_url": c["html_url"], "comments_url": f"{url}/commits/{sha}/comments",
                       "author": None, "committer": None,
                       "parents": [{"sha": p["sha"], "url": p["url"]} for p in c["parents"]],
                       "commit": {"author": c["author"], "committer": c["committer"],
                                  "message": c["message"], "comment_count": 0,
                                  "tree": c["tree"], "url": c["url"]}}}

    # -- git data
    def create_blob(self, req: Request) -> tuple[int, Any]:
        repo = self._repo(req)
        self._writable(req, repo)
        self._need(req.body, "content")
        content = req.body["content"]
        if req.body.get("encoding", "utf-8") == "base64":
            data = base64.b64decode(content)
        else:
            data = content.encode()
        sha = repo.git.hash_blob(data)
        return 201, {"sha": sha, "url": f"{self.shape.api}/repos/{repo.full_name}/git/blobs/{sha}"}

    def get_blob(self, req: Request) -> tuple[int, Any]:
        repo = self._repo(req)
        sha = req.match["sha"]
        if repo.git.object_type(sha) != "blob":
            raise ApiError(404, "Not Found")
        data = repo.git.read_blob(sha)
        return 200, {"sha": sha, "node_id": f"B_{sha[:10]}", "size": len(data),
                     "url": f"{self.shape.api}/repos/{repo.full_name}/git/blobs/{sha}",
                     "content": base64.encodebytes(data).decode(), "encoding": "base64"}

    def get_tree(self, req: Request) -> tuple[int, Any]:
        repo = self._repo(req)
        sha = self._resolve(repo, req.match["sha"])
        tree_sha = repo.git.resolve(f"{sha}^{{tree}}")
        if not tree_sha:
            raise ApiError(404, "Not Found")
        recursive = req.params.get("recursive") not in (None, "", "0", "false")
        return 200, self.shape.tree(repo, tree_sha, repo.git.ls_tree(tree_sha, recursive))

    def create_tree(self, req: Request) -> tuple[int, Any]:
        repo = self._repo(req)
        self._writable(req, repo)
        self._need(req.body, "tree")
        base = req.body.get("base_tree")
        if base and repo.git.object_type(base) != "tree":
            raise ApiError(422, "base_tree is not a valid tree oid")
        changes: list[tuple[str, str, str | None]] = []
        for entry in req.body["tree"]:
            path, mode = entry.get("path"), entry.get("mode", "100644")
            if not path or mode not in ("100644", "100755", "040000", "160000", "120000"):
                raise ApiError(422, f"tree.path or tree.mode is invalid: {entry!r}")
            if "content" in entry:
                changes.append((path, mode, repo.git.hash_blob(entry["content"].encode())))
            elif entry.get("sha") is None:
                changes.append((path, mode, None))  # GitHub: "sha": null deletes the file
            else:
                if not repo.git.object_type(entry["sha"]):
                    raise ApiError(422, f"tree.sha {entry['sha']} is not a valid blob")
                changes.append((path, mode, entry["sha"]))
        with repo.git.lock:
            sha = repo.git.write_tree(base, changes)
        return 201, self.shape.tree(repo, sha, repo.git.ls_tree(sha, False))

    def create_commit(self, req: Request) -> tuple[int, Any]:
        repo = self._repo(req)
        self._writable(req, repo)
        self._need(req.body, "message", "tree")
        if repo.git.object_type(req.body["tree"]) != "tree":
            raise ApiError(422, "Tree SHA does not exist")
        parents = req.body.get("parents", [])
        for p in parents:
            if repo.git.object_type(p) != "commit":
                raise ApiError(422, "Parent SHA does not exist or is not a commit object")
        now = _now()
        default = {"name": req.login or "", "email": f"{req.login}@users.noreply.emulator",
                   "date": now}
        author = {**default, **(req.body.get("author") or {})}
        committer = {**author, **(req.body.get("committer") or {})}
        sha = repo.git.commit_tree(req.body["tree"], parents, req.body["message"], author,
                                   committer)
        return 201, self.shape.commit(repo, sha)

    def get_commit(self, req: Request) -> tuple[int, Any]:
        repo = self._repo(req)
        sha = req.match["sha"]
        if repo.git.object_type(sha) != "commit":
            raise ApiError(404, "Not Found")
        return 200, self.shape.commit(repo, sha)

    def get_ref(self, req: Request) -> tuple[int, Any]:
        repo = self._repo(req)
        ref = "refs/" + req.match["ref"]
        sha = repo.git.resolve(ref) if ref in repo.git.refs() else None
        if not sha:
            raise ApiError(404, "Not Found")
        return 200, self.shape.ref(repo, ref, sha)

    def create_ref(self, req: Request) -> tuple[int, Any]:
        repo = self._repo(req)
        self._writable(req, repo)
        self._need(req.body, "ref", "sha")
        ref, sha = req.body["ref"], req.body["sha"]
        if not ref.startswith("refs/") or ref.count("/") < 2:
            raise ApiError(422, "Reference name is invalid")
        if not repo.git.object_type(sha):
            raise ApiError(422, "Object does not exist")
        with repo.git.lock:
            if ref in repo.git.refs():
                raise ApiError(422, "Reference already exists")
            repo.git.update_ref(ref, sha)
        return 201, self.shape.ref(repo, ref, sha)

    def update_ref(self, req: Request) -> tuple[int, Any]:
        repo = self._repo(req)
        self._writable(req, repo)
        self._need(req.body, "sha")
        ref, sha = "refs/" + req.match["ref"], req.body["sha"]
        with repo.git.lock:
            old = repo.git.refs().get(ref)
            if not old:
                raise ApiError(422, "Reference does not exist")
            if repo.git.object_type(sha) != "commit":
                raise ApiError(422, "Object does not exist")
            if not repo.git.is_ancestor(old, sha) and not req.body.get("force"):
                raise ApiError(422, "Update is not a fast forward")
            repo.git.update_ref(ref, sha, old)
        self._after_push(repo, ref, old, sha, req.login or "")
        return 200, self.shape.ref(repo, ref, sha)

    def delete_ref(self, req: Request) -> tuple[int, Any]:
        repo = self._repo(req)
        self._writable(req, repo)
        ref = "refs/" + req.match["ref"]
        with repo.git.lock:
            if ref not in repo.git.refs():
                raise ApiError(422, "Reference does not exist")
            repo.git.update_ref(ref, None)
        for p in repo.pulls:
            if p["state"] == "open" and f"refs/heads/{p['head_ref']}" == ref \
                    and not p.get("head_repo"):
                p.update(state="closed", closed_at=_now())
        return 204, None

    # -- pull requests
    def _pull(self, repo: Repo, number: str) -> dict[str, Any]:
        for p in repo.pulls:
            if p["number"] == int(number):
                return p
        raise ApiError(404, "Not Found")

    def list_pulls(self, req: Request) -> tuple[int, Any]:
        repo = self._repo(req)
        state = req.params.get("state", "open")
        head = req.params.get("head")
        base = req.params.get("base")
        found = [p for p in repo.pulls
                 if (state == "all" or p["state"] == state)
                 and (not head or f"{self.s.head_repo(repo, p).owner}:{p['head_ref']}".lower()
                      == head.lower())
                 and (not base or p["base_ref"] == base)]
        found.sort(key=lambda p: -p["number"])
        return 200, self._page(req, [self.shape.pull(repo, p) for p in found])

    def create_pull(self, req: Request) -> tuple[int, Any]:
        repo = self._repo(req)
        head_owner, _, head = str((req.body or {}).get("head", "")).rpartition(":")
        from_fork = bool(head_owner) and head_owner.lower() != repo.owner.lower()
        # A fork's pull request is opened by who may push to the fork, not to the base.
        self._writable(req, self._fork_of(repo, head_owner) if from_fork else repo)
        self._need(req.body, "head", "base")
        base = req.body["base"]
        head_repo = self._fork_of(repo, head_owner) if from_fork else repo
        head_sha = head_repo.git.resolve(f"refs/heads/{head}")
        if not head_sha or not repo.git.resolve(f"refs/heads/{base}"):
            raise ApiError(422, "Validation Failed", errors=[
                {"resource": "PullRequest", "field": "head" if not head_sha else "base",
                 "code": "invalid"}])
        with self.s.lock:
            for p in repo.pulls:
                if p["state"] == "open" and p["head_ref"] == head and p["base_ref"] == base \
                        and self.s.head_repo(repo, p) is head_repo:
                    raise ApiError(422, "Validation Failed", errors=[{
                        "resource": "PullRequest", "code": "custom",
                        "message": f"A pull request already exists for {repo.owner}:{head}."}])
            number = 1 + max([p["number"] for p in repo.pulls] +
                             [c["issue"] for c in repo.comments] + [0])
            now = _now()
            pull = {"id": next(self.s.ids), "number": number, "state": "open",
                    "title": req.body.get("title", head), "body": req.body.get("body"),
                    "head_ref": head, "base_ref": base, "head_sha": head_sha,
                    "user": req.login, "created_at": now, "updated_at": now,
                    "draft": bool(req.body.get("draft"))}
            if head_repo is not repo:
                pull["head_repo"] = head_repo.full_name
                self._fetch_pull_head(repo, pull)
            repo.pulls.append(pull)
        body = self.shape.pull(repo, pull)
        self.s_deliver(repo, "pull_request", {"action": "opened", "number": number,
                                              "pull_request": body}, req.login or "")
        return 201, body

    def _fork_of(self, repo: Repo, owner: str) -> Repo:
        """The fork of `repo` that `owner` owns (the head of a cross-repository PR)."""
        for r in self.s.repos.values():
            if r.parent == repo.full_name and r.owner.lower() == owner.lower():
                return r
        raise ApiError(422, "Validation Failed", errors=[
            {"resource": "PullRequest", "field": "head", "code": "invalid"}])

    def _fetch_pull_head(self, repo: Repo, pull: dict[str, Any]) -> None:
        """GitHub keeps a fork PR's head in the base repository as refs/pull/N/head."""
        fork = self.s.head_repo(repo, pull)
        repo.git.git("fetch", "-q", str(fork.git.path),
                     f"+{pull['head_sha']}:refs/pull/{pull['number']}/head")
        repo.git.git("update-server-info")

    def get_pull(self, req: Request) -> tuple[int, Any]:
        repo = self._repo(req)
        return 200, self.shape.pull(repo, self._pull(repo, req.match["number"]))

    def update_pull(self, req: Request) -> tuple[int, Any]:
        repo = self._repo(req)
        self._writable(req, repo)
        pull = self._pull(repo, req.match["number"])
        body = req.body or {}
        for key in ("title", "body"):
            if key in body:
                pull[key] = body[key]
        if body.get("state") in ("open", "closed"):
            reopened = pull["state"] == "closed" and body["state"] == "open"
            pull["state"] = body["state"]
            pull["closed_at"] = _now() if body["state"] == "closed" else None
            if reopened:
                self.s_deliver(repo, "pull_request", {
                    "action": "reopened", "number": pull["number"],
                    "pull_request": self.shape.pull(repo, pull)}, req.login or "")
        pull["updated_at"] = _now()
        return 200, self.shape.pull(repo, pull)

    def list_pull_files(self, req: Request) -> tuple[int, Any]:
        repo = self._repo(req)
        pull = self._pull(repo, req.match["number"])
        head = (self.s.head_repo(repo, pull).git.resolve(f"refs/heads/{pull['head_ref']}")
                or pull["head_sha"])
        base = repo.git.resolve(f"refs/heads/{pull['base_ref']}") or head
        url = f"{self.shape.api}/repos/{repo.full_name}"
        files = []
        for f in repo.git.changed_files(base, head):
            sha = repo.git.resolve(f"{head}:{f['filename']}")
            files.append({**f, "sha": sha or ZERO_SHA, "changes": f["additions"] + f["deletions"],
                          "blob_url": f"{url}/blob/{head}/{f['filename']}",
                          "raw_url": f"{url}/raw/{head}/{f['filename']}",
                          "contents_url": f"{url}/contents/{f['filename']}?ref={head}"})
        return 200, self._page(req, files)

    # -- issue comments
    def _comment(self, repo: Repo, cid: str) -> dict[str, Any]:
        for c in repo.comments:
            if c["id"] == int(cid):
                return c
        raise ApiError(404, "Not Found")

    def list_comments(self, req: Request) -> tuple[int, Any]:
        repo = self._repo(req)
        number = int(req.match["number"])
        found = [self.shape.comment(repo, c) for c in repo.comments if c["issue"] == number]
        return 200, self._page(req, found)

    def create_comment(self, req: Request) -> tuple[int, Any]:
        repo = self._repo(req)
        self._need(req.body, "body")
        number = int(req.match["number"])
        now = _now()
        comment = {"id": next(self.s.ids), "issue": number, "user": req.login,
                   "body": req.body["body"], "created_at": now, "updated_at": now}
        repo.comments.append(comment)
        body = self.shape.comment(repo, comment)
        pull = next((p for p in repo.pulls if p["number"] == number), None)
        if pull is not None:
            self.s_deliver(repo, "issue_comment", {
                "action": "created", "issue": self._issue(repo, pull), "comment": body},
                req.login or "")
        return 201, body

    def update_comment(self, req: Request) -> tuple[int, Any]:
        repo = self._repo(req)
        self._need(req.body, "body")
        comment = self._comment(repo, req.match["id"])
        if comment["user"] != req.login and repo.permissions.get(req.login or "") != "admin":
            raise ApiError(403, "Must have admin rights to Repository.")
        comment.update(body=req.body["body"], updated_at=_now())
        return 200, self.shape.comment(repo, comment)

    def delete_comment(self, req: Request) -> tuple[int, Any]:
        repo = self._repo(req)
        comment = self._comment(repo, req.match["id"])
        if comment["user"] != req.login and repo.permissions.get(req.login or "") != "admin":
            raise ApiError(403, "Must have admin rights to Repository.")
        repo.comments.remove(comment)
        return 204, None

    # -- actions, statuses, permissions
    def dispatch(self, req: Request) -> tuple[int, Any]:
        repo = self._repo(req)
        self._writable(req, repo)
        self._need(req.body, "ref")
        inputs = req.body.get("inputs") or {}
        if not isinstance(inputs, dict) or len(inputs) > 25:
            raise ApiError(422, "inputs must be an object of at most 25 keys")
        if not repo.git.resolve(f"refs/heads/{req.body['ref']}") and not repo.git.resolve(
                req.body["ref"]):
            raise ApiError(422, f"No ref found for: {req.body['ref']}")
        repo.dispatches.append({"workflow": req.match["workflow"], "ref": req.body["ref"],
                                "inputs": inputs, "user": req.login})
        return 204, None

    def create_status(self, req: Request) -> tuple[int, Any]:
        repo = self._repo(req)
        self._writable(req, repo)
        self._need(req.body, "state")
        now = _now()
        status = {"url": f"{self.shape.api}/repos/{repo.full_name}/statuses/{req.match['sha']}",
                  "avatar_url": None, "id": next(self.s.ids), "node_id": "SC_1",
                  "state": req.body["state"], "description": req.body.get("description"),
                  "target_url": req.body.get("target_url"),
                  "context": req.body.get("context", "default"), "created_at": now,
                  "updated_at": now, "creator": self.shape.user(req.login or "")}
        repo.statuses.append({"sha": req.match["sha"], "state": status["state"],
                              "context": status["context"]})
        return 201, status

    def permission(self, req: Request) -> tuple[int, Any]:
        repo = self._repo(req)
        user = req.match["user"]
        level = repo.permissions.get(user, "none")
        legacy = {"maintain": "write", "triage": "read"}.get(level, level)
        return 200, {"permission": legacy, "role_name": level, "user": self.shape.user(user)}

    # -- webhooks
    def _issue(self, repo: Repo, pull: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.shape.api}/repos/{repo.full_name}/issues/{pull['number']}"
        return {"url": url, "repository_url": f"{self.shape.api}/repos/{repo.full_name}",
                "labels_url": f"{url}/labels{{/name}}", "comments_url": f"{url}/comments",
                "events_url": f"{url}/events", "html_url": f"{url}/html", "id": pull["id"],
                "node_id": f"I_{pull['id']}", "number": pull["number"], "title": pull["title"],
                "user": self.shape.user(pull["user"]), "labels": [], "state": pull["state"],
                "locked": False, "assignee": None, "assignees": [], "milestone": None,
                "comments": sum(1 for c in repo.comments if c["issue"] == pull["number"]),
                "created_at": pull["created_at"], "updated_at": pull["updated_at"],
                "closed_at": pull.get("closed_at"), "author_association": "MEMBER",
                "active_lock_reason": None, "body": pull["body"],
                "pull_request": {"url": url.replace("/issues/", "/pulls/"),
                                 "html_url": f"{url}/html", "diff_url": f"{url}.diff",
                                 "patch_url": f"{url}.patch", "merged_at": None},
                "reactions": self._reactions(url)}

    @staticmethod
    def _reactions(url: str) -> dict[str, Any]:
        keys = ("+1", "-1", "laugh", "confused", "heart", "hooray", "eyes", "rocket")
        return {"url": f"{url}/reactions", "total_count": 0, **{k: 0 for k in keys}}

    def _after_push(self, repo: Repo, ref: str, old: str | None, new: str, login: str) -> None:
        for base in list(self.s.repos.values()):
            for p in base.pulls:
                if p["state"] == "open" and f"refs/heads/{p['head_ref']}" == ref \
                        and self.s.head_repo(base, p) is repo:
                    p["updated_at"] = _now()
                    if base is not repo:  # a fork's branch moved: so does refs/pull/N/head
                        p["head_sha"] = new
                        self._fetch_pull_head(base, p)
                    self.s_deliver(base, "pull_request", {
                        "action": "synchronize", "number": p["number"],
                        "before": old or ZERO_SHA, "after": new,
                        "pull_request": self.shape.pull(base, p)}, login)

    def webhook_payload(self, repo: Repo, payload: dict[str, Any], sender: str) -> dict[str, Any]:
        payload = dict(payload)
        if "pull_request" in payload:
            pr = dict(payload["pull_request"], active_lock_reason=None)
            payload["pull_request"] = pr
        if "comment" in payload:
            payload["comment"] = dict(payload["comment"], performed_via_github_app=None,
                                      reactions=self._reactions(payload["comment"]["url"]))
        repo_body = self.shape.repo(repo)
        payload.update(repository=repo_body, sender=self.shape.user(sender))
        return payload

    def s_deliver(self, repo: Repo, event: str, payload: dict[str, Any], sender: str) -> None:
        if not self.s.hooks:
            return
        body = self.webhook_payload(repo, payload, sender)
        for hook in list(self.s.hooks):
            threading.Thread(target=deliver, args=(self.s, hook, event, body),
                             daemon=True).start()


def deliver(state: State, hook: dict[str, str], event: str, payload: dict[str, Any],
            delivery: str | None = None) -> int:
    """POST one signed webhook delivery, as GitHub does, and record the outcome."""
    data = json.dumps(payload).encode()
    delivery = delivery or str(uuid.uuid4())
    headers = {"Content-Type": "application/json", "X-GitHub-Event": event,
               "X-GitHub-Delivery": delivery, "User-Agent": "GitHub-Hookshot/emulator"}
    if hook.get("secret"):
        digest = hmac.new(hook["secret"].encode(), data, hashlib.sha256).hexdigest()
        headers["X-Hub-Signature-256"] = f"sha256={digest}"
    request = urllib.request.Request(hook["url"], data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            status = resp.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except OSError:
        status = 0
    with state.lock:
        state.deliveries.append({"event": event, "delivery": delivery, "status": status,
                                 "payload": payload})
    return status


# ---------------------------------------------------------------- HTTP

class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    # Headers and body leave in two writes; with Nagle's algorithm on, the second waits for
    # the client's delayed ACK (~40 ms) on every keep-alive request.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            super().log_message(format, *args)

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if body is not None:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data and self.command != "HEAD":
            self.wfile.write(data)

    def _read_body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise ApiError(400, "Problems parsing JSON") from exc

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PATCH = do_PUT = do_DELETE = do_GET

    def _dispatch(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        path = url.path.rstrip("/") or "/"
        params = dict(urllib.parse.parse_qsl(url.query))
        state = self.server.state
        try:
            body = self._read_body()
            if path.startswith(("/_emulator/", "/git/")):
                self._admin(path, body)
                return
            self._serve_api(path, params, body)
        except ApiError as exc:
            self._send(exc.status, self._error_body(exc), exc.headers)
        except Exception as exc:  # noqa: BLE001 - an emulator bug must show, not hang
            self._send(500, {"message": f"emulator error: {exc!r}"})
        del state

    @staticmethod
    def _error_body(exc: ApiError) -> dict[str, Any]:
        body: dict[str, Any] = {"message": exc.message,
                                "documentation_url": "https://docs.github.com/rest",
                                "status": str(exc.status)}
        if exc.errors:
            body["errors"] = exc.errors
        return body

    def _serve_api(self, path: str, params: dict[str, str], body: Any) -> None:
        state = self.server.state
        api = self.server.api
        route = self._route_name(path)
        # A GraphQL POST is counted apart: tests and the benchmark count every other non-GET as
        # a write, and a query writes nothing (mutations are refused, below).
        graphql = self.command == "POST" and path == "/graphql"
        kind = "GRAPHQL" if graphql else self.command
        with state.lock:
            state.counts[kind] = state.counts.get(kind, 0) + 1
            key = f"{self.command} {route}"
            state.route_counts[key] = state.route_counts.get(key, 0) + 1
            f = state.faults
            hit = not f.match or re.search(f.match, f"{self.command} {path}") is not None
            fail_5xx = hit and f.fail_5xx > 0
            secondary = hit and not fail_5xx and f.secondary_limit > 0
            if fail_5xx:
                f.fail_5xx -= 1
            elif secondary:
                f.secondary_limit -= 1
            if (f.rate_limit_remaining is not None and f.rate_limit_reset
                    and time.time() >= f.rate_limit_reset):
                # the window is over: GitHub refills the budget and starts a new hour
                f.rate_limit_remaining, f.rate_limit_reset = f.rate_limit, int(time.time()) + 3600
            remaining = f.rate_limit_remaining
            if remaining is not None and remaining > 0 and path != "/rate_limit":
                f.rate_limit_remaining = remaining - 1
            latency = f.latency_ms
        if latency:
            time.sleep(latency / 1000)
        reset = f.rate_limit_reset or int(time.time()) + 3600
        rl = {"X-RateLimit-Limit": str(f.rate_limit),
              "X-RateLimit-Remaining": str(f.rate_limit if remaining is None else
                                           max(remaining - 1, 0)),
              "X-RateLimit-Reset": str(reset), "X-RateLimit-Used": "1",
              "X-RateLimit-Resource": "graphql" if graphql else "core"}
        if fail_5xx:
            raise ApiError(502, "Server Error", rl)
        if secondary:
            raise ApiError(403, "You have exceeded a secondary rate limit. Please wait a few "
                           "minutes before you try again.",
                           {**rl, "Retry-After": str(f.retry_after)})
        if remaining is not None and remaining <= 0 and path != "/rate_limit":
            if graphql:
                # GitHub's GraphQL API answers a spent primary limit with 200 and an error of
                # type RATE_LIMITED (docs: "Rate limits and node limits for the GraphQL API")
                self._send(200, {"errors": [{"type": "RATE_LIMITED", "message":
                                             "API rate limit exceeded for user."}]}, rl)
                return
            raise ApiError(403, "API rate limit exceeded for user.", rl)
        auth = self.headers.get("Authorization", "")
        token = auth.split(" ", 1)[1] if " " in auth else ""
        login = state.tokens.get(token)
        if auth and login is None:
            raise ApiError(401, "Bad credentials", rl)
        status, out = api.handle(Request(self.command, path, params, body, login, {}))
        self._send(status, out, rl)

    @staticmethod
    def _route_name(path: str) -> str:
        return re.sub(r"^/repos/[^/]+/[^/]+", "/repos/{r}", re.sub(r"/[0-9a-f]{40}", "/{sha}",
                                                                     path))

    def _admin(self, path: str, body: Any) -> None:
        state = self.server.state
        if path.startswith("/git/"):
            self._serve_git(path)
            return
        op = path[len("/_emulator/"):]
        if self.command == "GET" and op == "state":
            self._send(200, state.summary())
        elif self.command == "GET" and op == "requests":
            self._send(200, {"by_method": state.counts, "by_route": state.route_counts})
        elif self.command == "GET" and op == "deliveries":
            self._send(200, state.deliveries)
        elif self.command == "POST" and op == "reset":
            with state.lock:
                state.counts.clear()
                state.route_counts.clear()
                state.deliveries.clear()
            self._send(204, None)
        elif self.command == "POST" and op == "repos":
            repo = state.add_repo(body["full_name"], body.get("files"),
                                  body.get("default_branch", "main"), body.get("topics"),
                                  body.get("permissions"))
            self._send(201, {"full_name": repo.full_name, "path": str(repo.git.path)})
        elif self.command == "POST" and op == "forks":
            repo = state.add_fork(body["parent"], body["full_name"])
            self._send(201, {"full_name": repo.full_name, "path": str(repo.git.path)})
        elif self.command == "POST" and op == "users":
            state.tokens[body["token"]] = body["login"]
            self._send(201, {"login": body["login"]})
        elif self.command == "POST" and op == "faults":
            with state.lock:
                for k, v in body.items():
                    if not hasattr(state.faults, k):
                        raise ApiError(422, f"unknown fault {k!r}")
                    setattr(state.faults, k, v)
            self._send(200, vars(state.faults))
        elif self.command == "POST" and op == "hooks":
            state.hooks.append({"url": body["url"], "secret": body.get("secret", "")})
            self._send(201, {"hooks": len(state.hooks)})
        else:
            raise ApiError(404, f"no emulator operation {self.command} {op}")

    def _serve_git(self, path: str) -> None:
        """`git clone http://host:port/git/OWNER/NAME.git` over git's dumb HTTP protocol."""
        root = self.server.state.root.resolve()
        target = (root / path[len("/git/"):]).resolve()
        if root not in target.parents or not target.is_file():
            raise ApiError(404, "Not Found")
        data = target.read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: State
    api: Api
    verbose: bool = False


class Emulator:
    """Start/stop helper for tests and benchmarks; everything else is plain HTTP."""

    def __init__(self, state_dir: Path | None = None, port: int = 0, verbose: bool = False) -> None:
        self._own_dir = state_dir is None
        self.state_dir = Path(state_dir or tempfile.mkdtemp(prefix="github-emulator-"))
        self.server = _Server(("127.0.0.1", port), _Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.state = State(self.state_dir, self.url)
        self.server.state = self.state
        self.server.api = Api(self.state)
        self.server.verbose = verbose
        self._thread: threading.Thread | None = None

    def start(self) -> Self:
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        if self._thread:
            self._thread.join(timeout=5)
        if self._own_dir:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # conveniences for tests (the same operations exist over HTTP under /_emulator/)
    def add_repo(self, full_name: str, files: dict[str, str | bytes] | None = None,
                 **kw: Any) -> Repo:
        return self.state.add_repo(full_name, files, **kw)

    def add_fork(self, parent: str, full_name: str) -> Repo:
        return self.state.add_fork(parent, full_name)

    def add_user(self, login: str, token: str) -> None:
        self.state.tokens[token] = login

    def repo_path(self, full_name: str) -> Path:
        owner, name = full_name.split("/")
        return self.state.repo(owner, name).git.path

    def faults(self, **kw: Any) -> None:
        with self.state.lock:
            for k, v in kw.items():
                if not hasattr(self.state.faults, k):
                    raise ValueError(f"unknown fault {k!r}")
                setattr(self.state.faults, k, v)

    def counts(self) -> dict[str, int]:
        with self.state.lock:
            return dict(self.state.counts)

    def reset_counts(self) -> None:
        with self.state.lock:
            self.state.counts.clear()
            self.state.route_counts.clear()

    def add_hook(self, url: str, secret: str) -> None:
        self.state.hooks.append({"url": url, "secret": secret})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.emulators.github",
                                     description="GitHub REST emulator backed by real git.")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--state", type=Path, default=None,
                        help="folder for the bare repositories (default: a temporary one)")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--demo-repo", default="acme/demo",
                        help="create this repository with a README (empty string: none)")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    emu = Emulator(args.state, args.port, args.verbose)
    emu.faults(latency_ms=args.latency_ms)
    if args.demo_repo:
        emu.add_repo(args.demo_repo, {"README.md": "# demo\n"})
    print(f"GitHub emulator on {emu.url} (state in {emu.state_dir}); "
          f"token {DEFAULT_TOKEN!r} is user {DEFAULT_LOGIN!r}", flush=True)
    try:
        emu.server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        emu.server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
