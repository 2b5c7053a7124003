"""GitHub through PyGithub: the only module in mlgen that imports it.

The connection (`GitHubClient`: retries, write pacing, GraphQL), reads, comments, dispatch and
permissions are small functions over a `GitHubClient`; publishing (ONE commit, the sync
branch and PR) is in `github_publish` and the one-query sync snapshot in `github_snapshot`,
both reaching PyGithub only through the client. So the commands, the webhook bot and the fleet
runner share one way of doing each. Import these modules only from code that needs GitHub:
PyGithub is the optional `github` extra.

Connection: the token comes from GITHUB_TOKEN or the file GITHUB_TOKEN_FILE names (or from a
GitHub App: GITHUB_APP_ID, GITHUB_APP_PRIVATE_KEY or GITHUB_APP_PRIVATE_KEY_PATH,
GITHUB_APP_INSTALLATION_ID), the API base URL from GITHUB_API_URL (GitHub Enterprise, the
test emulator). The token is never printed: it lives only inside PyGithub's auth object and
errors are rebuilt from status and message.
"""
from __future__ import annotations

import base64
import hashlib
import os
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ...envsecret import env_secret
from ...errors import MlgenError, UsageError, require_extra

if TYPE_CHECKING:  # PyGithub is imported lazily, through require_extra
    from github.Repository import Repository as Repository  # noqa: PLC0414 - a re-export

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
            token=env_secret(env, "GITHUB_TOKEN") or env.get("GH_TOKEN") or "",
            app_id=env.get("GITHUB_APP_ID", ""),
            app_private_key=key,
            installation_id=int(env.get("GITHUB_APP_INSTALLATION_ID") or 0),
        )
        settings = _replace(settings, **overrides)
        if not settings.token and not (settings.app_id and settings.app_private_key
                                       and settings.installation_id):
            raise UsageError(
                "no GitHub credentials: set GITHUB_TOKEN (or GITHUB_TOKEN_FILE), or "
                "GITHUB_APP_ID, GITHUB_APP_PRIVATE_KEY(_PATH) and GITHUB_APP_INSTALLATION_ID")
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


def git_blob_sha(data: bytes) -> str:
    """The SHA git gives this content as a blob: lets us compare without downloading."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


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
        repo: Repository = self.gh.get_repo(full_name)
        return repo

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
        wait = max(0.0, float(self.gh.rate_limiting_resettime) - time.time()) + 1
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
            errors = data.get("errors")
            details = [str(e.get("message") or e.get("code")) for e in errors
                       if isinstance(e, dict) and (e.get("message") or e.get("code"))] \
                if isinstance(errors, list) else []
            # REST: a message, maybe with details; GraphQL: only the errors' messages
            head = [str(data["message"])] if data.get("message") else []
            message = "; ".join(head + details) or exc.__class__.__name__
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


def connect(settings: Settings | None = None) -> GitHubClient:
    return GitHubClient(settings or Settings.from_env())
