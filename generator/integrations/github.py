"""GitHub over REST: the only module in mlgen that imports PyGithub.

Everything here is a small function over a `GitHubClient`, so the commands, the webhook bot and
the fleet runner share one way of reading trees, making ONE commit, opening or updating the sync
pull request and upserting the report comment. Import this module only from code that needs
GitHub: PyGithub is the optional `github` extra.

Connection: the token comes from GITHUB_TOKEN (or from a GitHub App: GITHUB_APP_ID,
GITHUB_APP_PRIVATE_KEY or GITHUB_APP_PRIVATE_KEY_PATH, GITHUB_APP_INSTALLATION_ID), the API base
URL from GITHUB_API_URL (GitHub Enterprise, the test emulator). The token is never printed: it
lives only inside PyGithub's auth object and errors are rebuilt from status and message.
"""
from __future__ import annotations

import base64
import hashlib
import os
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import MlgenError, UsageError, require_extra
from .github_snapshot import OpenPull, Snapshot

if TYPE_CHECKING:  # PyGithub is imported lazily, through require_extra
    from github.PullRequest import PullRequest
    from github.Repository import Repository

SYNC_BRANCH = "mlgen/sync"
DEFAULT_API_URL = "https://api.github.com"
WRITE_PERMISSIONS = ("admin", "maintain", "write")


class GitHubError(MlgenError):
    """A GitHub call failed. The message holds the operation, status and GitHub's message only."""

    def __init__(self, operation: str, status: int | None, message: str) -> None:
        self.status = status
        super().__init__(f"GitHub {operation} failed ({status or 'no answer'}): {message}")


def _github() -> Any:
    return require_extra("github", "github", "GitHub publishing")


@dataclass(frozen=True)
class Settings:
    """How to reach GitHub. `token` is excluded from repr so it never lands in a log line."""

    base_url: str = DEFAULT_API_URL
    token: str = field(default="", repr=False)
    app_id: str = ""
    app_private_key: str = field(default="", repr=False)
    installation_id: int = 0
    # GitHub asks integrators to leave at least one second between mutating requests per token.
    seconds_between_writes: float = 1.0
    # Give up instead of sleeping longer than this on a primary or secondary rate limit.
    max_rate_limit_wait: float = 900.0
    retries: int = 5
    backoff_factor: float = 0.5  # urllib3: 0.5 s, 1 s, 2 s ... between retries of a 5xx
    timeout: int = 30

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: Any) -> Settings:
        env = dict(os.environ if env is None else env)
        key = env.get("GITHUB_APP_PRIVATE_KEY", "")
        key_path = env.get("GITHUB_APP_PRIVATE_KEY_PATH", "")
        if not key and key_path:
            try:
                with open(key_path, encoding="utf-8") as fh:
                    key = fh.read()
            except OSError as exc:
                raise UsageError(f"GITHUB_APP_PRIVATE_KEY_PATH={key_path}: {exc.strerror}") from exc
        settings = cls(
            base_url=(env.get("GITHUB_API_URL") or DEFAULT_API_URL).rstrip("/"),
            token=env.get("GITHUB_TOKEN") or env.get("GH_TOKEN") or "",
            app_id=env.get("GITHUB_APP_ID", ""),
            app_private_key=key,
            installation_id=int(env.get("GITHUB_APP_INSTALLATION_ID") or 0),
        )
        settings = _replace(settings, **overrides)
        if not settings.token and not (settings.app_id and settings.app_private_key
                                       and settings.installation_id):
            raise UsageError(
                "no GitHub credentials: set GITHUB_TOKEN, or GITHUB_APP_ID, "
                "GITHUB_APP_PRIVATE_KEY(_PATH) and GITHUB_APP_INSTALLATION_ID")
        return settings


def _replace(settings: Settings, **changes: Any) -> Settings:
    from dataclasses import replace

    return replace(settings, **changes) if changes else settings


class WritePacer:
    """At least `interval` seconds between mutating requests made with one token.

    Shared by every worker thread of a fleet run, because the limit is per token, not per
    thread. PyGithub's own `seconds_between_writes` is per Requester and not thread-safe, so we
    turn it off and pace here instead.
    """

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._lock = threading.Lock()
        self._next = 0.0

    def wait(self) -> None:
        if self.interval <= 0:
            return
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self.interval
        if slot > now:
            time.sleep(slot - now)


@dataclass(frozen=True)
class TreeEntry:
    path: str
    sha: str
    mode: str
    type: str  # "blob", "tree" or "commit" (submodule)


@dataclass(frozen=True)
class RepoTree:
    """A branch's whole tree from one recursive read: paths to git blob SHAs."""

    sha: str
    entries: dict[str, TreeEntry]

    def blob_sha(self, path: str) -> str | None:
        entry = self.entries.get(path)
        return entry.sha if entry and entry.type == "blob" else None


@dataclass(frozen=True)
class SyncResult:
    action: str  # "created", "updated", "unchanged"
    pr_number: int
    pr_url: str
    commit_sha: str
    requests: int = 0


def git_blob_sha(data: bytes) -> str:
    """The SHA git gives this content as a blob: lets us compare without downloading."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def changes_digest(base_tree: str, changes: dict[str, bytes | None]) -> str:
    """Identifies "this set of changes on this base", recorded in the PR body's marker."""
    h = hashlib.sha256(base_tree.encode())
    for path in sorted(changes):
        data = changes[path]
        h.update(f"\0{path}\0{git_blob_sha(data) if data is not None else '-'}".encode())
    return h.hexdigest()[:20]


class GitHubClient:
    """One PyGithub connection plus the pacing and identity mlgen needs."""

    def __init__(self, settings: Settings) -> None:
        gh = _github()
        retry = gh.GithubRetry(
            total=settings.retries,
            backoff_factor=settings.backoff_factor,
            # GitHub answers a secondary limit with 403 + Retry-After (honoured by urllib3) or
            # with only a message; then wait a minute, as GitHub's docs ask.
            secondary_rate_wait=60,
            max_rate_limit_wait=settings.max_rate_limit_wait,
            # PATCH is idempotent for us (set a ref, a title, a comment body) so retry it on 5xx
            # too. POST stays retried because our POSTs are git objects (content-addressed), or
            # refs/PRs (a replay answers 422 "already exists", handled below), or comments
            # (upsert_comment deletes duplicates of its own marker).
            allowed_methods=frozenset({"GET", "HEAD", "PUT", "DELETE", "PATCH", "POST"}),
        )
        if settings.token:
            auth = gh.Auth.Token(settings.token)
        else:
            app = gh.Auth.AppAuth(int(settings.app_id), settings.app_private_key)
            auth = app.get_installation_auth(settings.installation_id)
        self.settings = settings
        self.is_app = not settings.token
        self.gh = gh.Github(
            auth=auth, base_url=settings.base_url, timeout=settings.timeout, retry=retry,
            # Reads are bounded by the fleet's worker count, not slowed one by one; writes are
            # paced by WritePacer across threads (PyGithub's pacing is per thread-unsafe
            # Requester), so PyGithub's own sleeps are off.
            seconds_between_requests=None, seconds_between_writes=None,
            # lazy: get_repo() and friends make no request until an attribute is needed, so an
            # up-to-date repository costs exactly the reads we issue.
            lazy=True, per_page=100,
        )
        self.pacer = WritePacer(settings.seconds_between_writes)
        self._login: str | None = None
        self._gh_module = gh

    # ------------------------------------------------------------------ basics
    def repo(self, full_name: str) -> Repository:
        if full_name.count("/") != 1:
            raise UsageError(f"repository {full_name!r} must be OWNER/NAME")
        return self.gh.get_repo(full_name)

    def own_login(self) -> str:
        """The login comments by this token carry: a user, or "<app-slug>[bot]" for an App."""
        if self._login is None:
            if self.is_app:
                gh = self._gh_module
                integration = gh.GithubIntegration(
                    auth=gh.Auth.AppAuth(int(self.settings.app_id),
                                         self.settings.app_private_key),
                    base_url=self.settings.base_url)
                self._login = f"{integration.get_app().slug}[bot]"
            else:
                self._login = self.call("read the token's user", lambda: self.gh.get_user().login)
        return self._login

    def rate_limit_pause(self, floor: int = 50) -> float:
        """Sleep until the primary limit resets when fewer than `floor` calls remain."""
        remaining, _limit = self.gh.rate_limiting
        if remaining < 0 or remaining >= floor:
            return 0.0
        wait = max(0.0, self.gh.rate_limiting_resettime - time.time()) + 1
        if wait > self.settings.max_rate_limit_wait:
            raise GitHubError("rate limit", 403, f"primary limit resets in {wait:.0f}s, "
                              f"more than the {self.settings.max_rate_limit_wait:.0f}s allowed")
        time.sleep(wait)
        return wait

    def graphql(self, operation: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        """Run one GraphQL query; returns its `data`.

        GitHub answers a spent primary GraphQL limit with 200 and an error of type
        RATE_LIMITED (a 403/429 is retried by GithubRetry like any request): wait for
        X-RateLimit-Reset, as for REST, at most `max_rate_limit_wait`, then ask again.
        """
        gh = self._gh_module
        requester = self.gh.requester

        def ask() -> dict[str, Any]:
            for _attempt in range(self.settings.retries + 1):
                try:
                    return requester.graphql_query(query, variables)[1].get("data") or {}
                except gh.GithubException as exc:
                    errors = exc.data.get("errors") if isinstance(exc.data, dict) else None
                    if not any(isinstance(e, dict) and e.get("type") == "RATE_LIMITED"
                               for e in errors or ()):
                        raise
                    headers = {k.lower(): v for k, v in (exc.headers or {}).items()}
                    reset = float(headers.get("x-ratelimit-reset") or 0)
                    wait = max(0.0, reset - time.time()) + 1
                    if wait > self.settings.max_rate_limit_wait:
                        raise GitHubError(operation, 403, f"GraphQL rate limit resets in "
                                          f"{wait:.0f}s, more than the "
                                          f"{self.settings.max_rate_limit_wait:.0f}s allowed"
                                          ) from None
                    time.sleep(wait)
            raise GitHubError(operation, 403, "GraphQL rate limit still spent after waiting")

        return dict(self.call(operation, ask))

    def call(self, operation: str, fn: Any, *, write: bool = False) -> Any:
        """Run one PyGithub call; turn its exceptions into GitHubError without any header."""
        gh = self._gh_module
        if write:
            self.pacer.wait()
        try:
            return fn()
        except gh.GithubException as exc:
            data = exc.data if isinstance(exc.data, dict) else {}
            message = str(data.get("message") or exc.__class__.__name__)
            errors = data.get("errors")
            if isinstance(errors, list):
                details = [e.get("message") or e.get("code") for e in errors if isinstance(e, dict)]
                message += "".join(f"; {d}" for d in details if d)
            raise GitHubError(operation, exc.status, message) from None
        except OSError as exc:  # connection refused, DNS, TLS, retries used up
            reason = ("gave up after retrying server errors or rate limits"
                      if exc.__class__.__name__ == "RetryError" else exc.__class__.__name__)
            raise GitHubError(operation, None, reason) from None


# ---------------------------------------------------------------------- reading

def read_tree(client: GitHubClient, repo: Repository, ref: str = "HEAD") -> RepoTree:
    """The whole tree of `ref` in one call (HEAD: the default branch)."""
    tree = client.call(f"read the tree of {repo.full_name}@{ref}",
                       lambda: repo.get_git_tree(ref, recursive=True))
    if tree.raw_data.get("truncated"):
        raise GitHubError(f"read the tree of {repo.full_name}@{ref}", None,
                          "GitHub truncated the tree listing (over 100,000 entries or 7 MB); "
                          "mlgen cannot compare a tree it cannot read whole")
    entries = {e.path: TreeEntry(e.path, e.sha, e.mode, e.type) for e in tree.tree}
    return RepoTree(tree.sha, entries)


def read_blob(client: GitHubClient, repo: Repository, sha: str) -> bytes:
    blob = client.call(f"read blob {sha[:12]} of {repo.full_name}", lambda: repo.get_git_blob(sha))
    return base64.b64decode(blob.content) if blob.encoding == "base64" else blob.content.encode()


def read_changed_blobs(client: GitHubClient, repo: Repository, tree: RepoTree,
                       wanted: dict[str, bytes]) -> dict[str, bytes | None]:
    """Current content of each wanted path whose blob SHA differs; unchanged paths are skipped.

    Returns path -> current bytes (None when the path is absent on the branch).
    """
    out: dict[str, bytes | None] = {}
    for path, data in wanted.items():
        sha = tree.blob_sha(path)
        if sha == git_blob_sha(data):
            continue
        out[path] = read_blob(client, repo, sha) if sha else None
    return out


# ---------------------------------------------------------------------- writing

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
        existing = snapshot.open_pull(base_branch)
        head_sha, head_tree = snapshot.commit, snapshot.tree
    else:
        existing = find_open_pr(client, repo, branch)
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


# ---------------------------------------------------------------------- comments, actions

def upsert_comment(client: GitHubClient, repo_name: str, number: int, marker: str,
                   body: str) -> tuple[str, int]:
    """Exactly one comment carrying `marker` AND written by this token's own user.

    A comment with the marker by anyone else is ignored, so nobody can spoof the report.
    Returns (action, comment id); action is "created", "updated" or "unchanged".
    """
    if marker not in body:
        body = f"{marker}\n{body}"
    me = client.own_login()
    repo = client.repo(repo_name)
    # Listed straight from the issue endpoint: fetching the PR object first would cost a call.
    comments = client.call(
        f"list comments of #{number} in {repo_name}",
        lambda: list(client.gh.requester.requestJsonAndCheck(
            "GET", f"{repo.url}/issues/{number}/comments", parameters={"per_page": 100})[1]))
    mine = [c for c in comments
            if marker in (c.get("body") or "") and (c.get("user") or {}).get("login") == me]
    if not mine:
        _, data = client.call(f"comment on #{number} in {repo_name}",
                              lambda: client.gh.requester.requestJsonAndCheck(
                                  "POST", f"{repo.url}/issues/{number}/comments",
                                  input={"body": body}), write=True)
        return "created", int(data["id"])
    keep, extra = mine[0], mine[1:]
    for c in extra:  # a duplicate left by a retried POST: remove it
        client.call(f"delete duplicate comment {c['id']}",
                    lambda c=c: client.gh.requester.requestJsonAndCheck(
                        "DELETE", f"{repo.url}/issues/comments/{c['id']}"), write=True)
    if keep.get("body") == body:
        return "unchanged", int(keep["id"])
    client.call(f"update comment {keep['id']} in {repo_name}",
                lambda: client.gh.requester.requestJsonAndCheck(
                    "PATCH", f"{repo.url}/issues/comments/{keep['id']}", input={"body": body}),
                write=True)
    return "updated", int(keep["id"])


def dispatch_workflow(client: GitHubClient, repo_name: str, workflow: str, ref: str,
                      inputs: dict[str, str]) -> str:
    """Trigger a workflow_dispatch. Returns the workflow's runs page URL (GitHub answers 204)."""
    repo = client.repo(repo_name)
    client.call(f"dispatch {workflow} on {repo_name}",
                lambda: client.gh.requester.requestJsonAndCheck(
                    "POST", f"{repo.url}/actions/workflows/{workflow}/dispatches",
                    input={"ref": ref, "inputs": inputs}), write=True)
    web = client.settings.base_url.replace("://api.", "://").replace("/api/v3", "")
    return f"{web}/{repo_name}/actions/workflows/{workflow}"


def permission(client: GitHubClient, repo_name: str, user: str) -> str:
    """The user's permission on the repository: admin, maintain, write, triage, read or none."""
    repo = client.repo(repo_name)
    _, data = client.call(f"read {user}'s permission on {repo_name}",
                          lambda: client.gh.requester.requestJsonAndCheck(
                              "GET", f"{repo.url}/collaborators/{user}/permission"))
    return str(data.get("role_name") or data.get("permission") or "none")


def can_write(client: GitHubClient, repo_name: str, user: str) -> bool:
    return permission(client, repo_name, user) in WRITE_PERMISSIONS


def pr_files(client: GitHubClient, repo_name: str, number: int) -> list[str]:
    repo = client.repo(repo_name)
    pr = client.call(f"read #{number} of {repo_name}", lambda: repo.get_pull(number))
    return [f.filename for f in client.call(f"list files of #{number}",
                                            lambda: list(pr.get_files()))]


def connect(settings: Settings | None = None) -> GitHubClient:
    return GitHubClient(settings or Settings.from_env())
