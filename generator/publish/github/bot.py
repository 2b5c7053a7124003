"""The GitHub webhook bot: verify, deduplicate, answer at once, work in the background.

GitHub gives a webhook ten seconds and retries on failure, so the HTTP thread only checks the
signature (HMAC-SHA256 with a constant-time compare), the size and the delivery id, records the
id in SQLite (a replayed `X-GitHub-Delivery` is ignored, across restarts too) and queues the
event. One worker thread does the GitHub calls.

Events: pull_request opened/synchronize/reopened -> compare the PR head's pipeline files with
what its mlgen.yaml renders and upsert the report comment; issue_comment created with
"/mlgen sync" on a PR by a user with write access -> push one sync commit to the PR branch.

The bot acts with the organisation's token on content anyone who opens a PR supplies, so:
a repository's own template overrides render only for repositories the operator lists
(`mlgen bot serve --trust-templates`), a pull request from a fork is checked with the built-in
templates only (its overrides never render, whatever the trust setting; the check still
reports whether its files match), and every template renders in Jinja's sandbox. A spec or
template the bot cannot render is reported on the PR, not only in the log.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import queue
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

log = logging.getLogger("mlgen.bot")

STATUS_MARKER = "<!-- mlgen:bot-status -->"
PR_ACTIONS = ("opened", "synchronize", "reopened")


@dataclass(frozen=True)
class BotConfig:
    secret: bytes
    db_path: Path
    host: str = "127.0.0.1"
    port: int = 8080
    max_body_bytes: int = 1_048_576  # GitHub caps payloads at 25 MB; ours are far smaller


def verify_signature(secret: bytes, body: bytes, header: str | None) -> bool:
    if not header or not header.startswith("sha256="):
        return False
    expected = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), header.encode())


class DeliveryLog:
    """Delivery ids seen, in SQLite, so a replay is ignored even after a restart."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS deliveries (id TEXT PRIMARY KEY, "
                         "event TEXT NOT NULL, received REAL NOT NULL)")
        self._lock = threading.Lock()

    def first_time(self, delivery: str, event: str) -> bool:
        with self._lock:
            cur = self._db.execute("INSERT OR IGNORE INTO deliveries VALUES (?, ?, ?)",
                                   (delivery, event, time.time()))
            return cur.rowcount == 1

    def close(self) -> None:
        self._db.close()


Handler = Callable[[str, dict[str, Any]], None]


class Bot:
    """The HTTP receiver plus one worker; `handler(event, payload)` does the GitHub work."""

    def __init__(self, config: BotConfig, handler: Handler) -> None:
        self.config = config
        self.handler = handler
        self.deliveries = DeliveryLog(config.db_path)
        self.queue: queue.Queue[tuple[str, dict[str, Any]] | None] = queue.Queue()
        self.processed = 0
        self.failures = 0
        self.server = ThreadingHTTPServer((config.host, config.port), _make_handler(self))
        self.server.daemon_threads = True
        self._threads: list[threading.Thread] = []

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        host_text = host.decode() if isinstance(host, bytes) else str(host)
        return f"http://{host_text}:{port}"

    def _work(self) -> None:
        while True:
            item = self.queue.get()
            if item is None:
                self.queue.task_done()
                return
            event, payload = item
            try:
                self.handler(event, payload)
                self.processed += 1
            except Exception:
                self.failures += 1
                log.exception("handling %s failed", event)
            finally:
                self.queue.task_done()

    def start(self) -> Bot:
        for target in (self._work, self.server.serve_forever):
            t = threading.Thread(target=target, daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.queue.put(None)
        for t in self._threads:
            t.join(timeout=10)
        self.deliveries.close()

    def serve_forever(self) -> None:
        worker = threading.Thread(target=self._work, daemon=True)
        worker.start()
        try:
            self.server.serve_forever()
        finally:
            self.server.server_close()
            self.queue.put(None)
            worker.join(timeout=30)


def _make_handler(bot: Bot) -> type[BaseHTTPRequestHandler]:
    class WebhookHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body leave in two writes; with Nagle's algorithm on, the second waits for
        # the client's delayed ACK (~40 ms) on every keep-alive request.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            log.info("%s %s", self.address_string(), format % args)

        def _reply(self, status: int, body: dict[str, Any], close: bool = False) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if close:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path == "/healthz":
                self._reply(200, {"status": "ok", "queued": bot.queue.qsize(),
                                  "processed": bot.processed, "failures": bot.failures})
            else:
                self._reply(404, {"error": "not found"})

        def do_POST(self) -> None:
            if self.path not in ("/", "/webhook"):
                self._reply(404, {"error": "not found"}, close=True)
                return
            try:
                length = int(self.headers.get("Content-Length") or -1)
            except ValueError:
                length = -1
            if length < 0:
                self._reply(411, {"error": "Content-Length required"}, close=True)
                return
            if length > bot.config.max_body_bytes:
                # Not read: closing the connection is cheaper than draining an oversized body.
                self._reply(413, {"error": "payload too large"}, close=True)
                return
            body = self.rfile.read(length)
            if not verify_signature(bot.config.secret, body,
                                    self.headers.get("X-Hub-Signature-256")):
                self._reply(401, {"error": "bad signature"})
                return
            event = self.headers.get("X-GitHub-Event", "")
            delivery = self.headers.get("X-GitHub-Delivery", "")
            if not delivery:
                self._reply(400, {"error": "X-GitHub-Delivery missing"})
                return
            if not bot.deliveries.first_time(delivery, event):
                self._reply(200, {"status": "duplicate", "delivery": delivery})
                return
            try:
                payload = json.loads(body)
            except ValueError:
                self._reply(400, {"error": "body is not JSON"})
                return
            if event == "ping":
                self._reply(200, {"status": "pong"})
                return
            bot.queue.put((event, payload))
            self._reply(202, {"status": "queued", "delivery": delivery})

    return WebhookHandler


# ---------------------------------------------------------------------- GitHub work

TRUST_HINT = "`mlgen bot serve --trust-templates OWNER/NAME`"


def github_handler(client: Any, render: Callable[[str], dict[str, bytes]] | None = None,
                   trusted_templates: Collection[str] = ()) -> Handler:
    """The default handler: PR checks and `/mlgen sync`, through mlgen.integrations.github.client.

    `trusted_templates`: OWNER/NAME of the repositories whose own template overrides render
    (case-insensitive); every other repository is rendered with the built-in templates."""
    from ...errors import UsageError
    from ...integrations.github import client as gh
    from ...integrations.github import gitdata as publish
    from . import sync_pr as github_sync

    render_fn = render or github_sync.render_remote
    trusted = frozenset(name.lower() for name in trusted_templates)

    def policy(repo: str, from_fork: bool) -> github_sync.OverridePolicy:
        if from_fork:
            return github_sync.FORK
        if repo.lower() in trusted:
            return github_sync.TRUSTED
        return github_sync.OverridePolicy(see=TRUST_HINT)

    def report(repo: str, number: int, text: str, notes: tuple[str, ...] = ()) -> None:
        extra = "".join(f"\n\n{note}" for note in notes)
        gh.upsert_comment(client, repo, number, STATUS_MARKER,
                          f"{STATUS_MARKER}\n### mlgen\n\n{text}{extra}\n")

    def report_error(repo: str, number: int, exc: UsageError) -> None:
        # The PR's own spec or templates are wrong (or tried what the sandbox forbids): that is
        # the check's answer, shown where the author looks, not a bot failure.
        log.warning("%s#%d: cannot render: %s", repo, number, exc)
        report(repo, number, "❌ mlgen could not render this pull request:\n\n" +
               _code_block(str(exc)))

    def plan_or_report(repo: str, number: int, ref: str,
                       from_fork: bool) -> github_sync.RemotePlan | None:
        """The PR's plan, or None once a render error was reported on the PR."""
        try:
            return github_sync.plan_remote(client, repo, ref, render_fn,
                                           overrides=policy(repo, from_fork))
        except UsageError as exc:
            report_error(repo, number, exc)
            return None

    def check_pr(repo: str, number: int, head_ref: str, from_fork: bool) -> None:
        plan = plan_or_report(repo, number, head_ref, from_fork)
        if plan is None:
            return
        if plan.up_to_date:
            text = f"✅ Pipeline files match `mlgen.yaml` ({plan.unchanged} files checked)."
        else:
            files = "\n".join(f"- `{p}`" for p in plan.changes)
            text = ("❌ Pipeline files differ from what `mlgen.yaml` renders:\n\n" + files +
                    "\n\nComment `/mlgen sync` (write access needed) to push the fix here.")
        report(repo, number, text, plan.notes)

    def sync_pr(repo: str, number: int, user: str) -> None:
        if not gh.can_write(client, repo, user):
            report(repo, number, f"@{user}: `/mlgen sync` needs write access to this repository.")
            return
        pull = client.call(f"read #{number}", lambda: client.repo(repo).get_pull(number))
        if pull.head.repo is None or pull.head.repo.full_name != repo:
            raise gh.GitHubError("sync", 422, "the PR comes from a fork; not pushing there")
        branch = pull.head.ref
        plan = plan_or_report(repo, number, branch, False)
        if plan is None:
            return
        if plan.up_to_date:
            text = "✅ Nothing to sync: pipeline files already match `mlgen.yaml`."
        else:
            r = client.repo(repo)
            if plan.snapshot is None:  # plan_remote always reads one
                raise RuntimeError("remote plan without a repository snapshot")
            # The snapshot's commit is the parent; the push below is not forced, so if the
            # branch moved since, GitHub refuses it (422) rather than drop that commit.
            sha = publish.create_commit(client, r, base_commit=plan.snapshot.commit,
                                   base_tree=plan.base_tree, changes=plan.changes,
                                   message=f"mlgen sync (requested by @{user})",
                                   modes=plan.modes)
            client.call("push", lambda: client.gh.requester.requestJsonAndCheck(
                "PATCH", f"{r.url}/git/refs/heads/{branch}", input={"sha": sha}), write=True)
            text = f"🔄 Pushed {sha[:7]} updating {len(plan.changes)} file(s) for @{user}."
        report(repo, number, text, plan.notes)

    def handle(event: str, payload: dict[str, Any]) -> None:
        repo = (payload.get("repository") or {}).get("full_name", "")
        if event == "pull_request" and payload.get("action") in PR_ACTIONS:
            pr = payload["pull_request"]
            head_repo = (pr["head"].get("repo") or {}).get("full_name")  # None: fork deleted
            from_fork = not head_repo or head_repo.lower() != repo.lower()
            check_pr(repo, int(payload["number"]), pr["head"]["sha"], from_fork)
        elif event == "issue_comment" and payload.get("action") == "created":
            issue = payload.get("issue") or {}
            body = ((payload.get("comment") or {}).get("body") or "").strip()
            if "pull_request" in issue and body.split()[:2] == ["/mlgen", "sync"]:
                sync_pr(repo, int(issue["number"]), payload["comment"]["user"]["login"])

    return handle


def _code_block(text: str) -> str:
    """`text` in a Markdown code block that no backtick run inside it can close."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}\n{text}\n{fence}"
