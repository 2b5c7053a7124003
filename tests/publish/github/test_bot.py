"""The webhook bot over real HTTP: signatures, size limit, replays, and the work it does
against the GitHub emulator (which signs and delivers the webhooks itself)."""
from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.emulators.github import DEFAULT_TOKEN, Emulator
from tests.publish.github.test_publish import fake_render, synced

pytest.importorskip("github", reason="PyGithub is the 'github' extra")

from mlgen.integrations.github import client as gh
from mlgen.publish.github.bot import STATUS_MARKER, Bot, BotConfig, github_handler

from tests.helpers import REPO as REPO_ROOT

SECRET = b"webhook-secret"


def sign(body: bytes, secret: bytes = SECRET) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def post(bot: Bot, body: bytes, signature: str | None, delivery: str | None = None,
         event: str = "pull_request") -> requests.Response:
    headers = {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
               "Content-Type": "application/json"}
    if signature is not None:
        headers["X-Hub-Signature-256"] = signature
    return requests.post(bot.url + "/webhook", data=body, headers=headers, timeout=10)


def wait_for(predicate: Any, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting for the bot"
        time.sleep(0.05)


@pytest.fixture()
def recording_bot(tmp_path: Path) -> Any:
    seen: list[tuple[str, dict[str, Any]]] = []
    bot = Bot(BotConfig(SECRET, tmp_path / "bot.sqlite", port=0, max_body_bytes=10_000),
              lambda event, payload: seen.append((event, payload))).start()
    yield bot, seen
    bot.stop()


def test_signature_size_and_replays(recording_bot: Any) -> None:
    bot, seen = recording_bot
    body = json.dumps({"action": "opened", "number": 1}).encode()
    assert post(bot, body, sign(body, b"wrong")).status_code == 401
    assert post(bot, body, None).status_code == 401
    assert post(bot, body, "sha1=" + hashlib.sha1(body).hexdigest()).status_code == 401
    tampered = body.replace(b"opened", b"closed")
    assert post(bot, tampered, sign(body)).status_code == 401
    delivery = str(uuid.uuid4())
    ok = post(bot, body, sign(body), delivery)
    assert ok.status_code == 202 and ok.json()["status"] == "queued"
    replay = post(bot, body, sign(body), delivery)
    assert replay.status_code == 200 and replay.json()["status"] == "duplicate"
    big = b"{" + b" " * 20_000 + b"}"
    assert post(bot, big, sign(big)).status_code == 413
    wait_for(lambda: len(seen) == 1)
    assert seen == [("pull_request", {"action": "opened", "number": 1})]
    health = requests.get(bot.url + "/healthz", timeout=5).json()
    assert health["status"] == "ok" and health["processed"] == 1


def test_replays_are_remembered_across_restarts(tmp_path: Path) -> None:
    body = b"{}"
    delivery = str(uuid.uuid4())
    for expected in (202, 200):
        bot = Bot(BotConfig(SECRET, tmp_path / "bot.sqlite", port=0), lambda e, p: None).start()
        try:
            assert post(bot, body, sign(body), delivery).status_code == expected
        finally:
            bot.stop()


def test_pr_check_and_slash_sync_against_the_emulator(tmp_path: Path) -> None:
    with Emulator() as emu:
        # generated (and locked) for an older spec, never edited: /mlgen sync may replace it
        emu.add_repo("acme/b", {**synced("name: stale\n"), "mlgen.yaml": "name: b\n"},
                     permissions={"dev": "write", "guest": "read"})
        emu.add_user("dev", "dev-token")
        emu.add_user("guest", "guest-token")
        bot_client = gh.connect(gh.Settings.from_env(
            {"GITHUB_TOKEN": DEFAULT_TOKEN, "GITHUB_API_URL": emu.url},
            seconds_between_writes=0))
        bot = Bot(BotConfig(SECRET, tmp_path / "bot.sqlite", port=0),
                  github_handler(bot_client, fake_render)).start()
        try:
            emu.add_hook(bot.url + "/webhook", SECRET.decode())
            repo = emu.state.repo("acme", "b")
            s = requests.Session()
            s.headers["Authorization"] = "token dev-token"
            api = f"{emu.url}/repos/acme/b"
            main = s.get(api + "/git/ref/heads/main").json()["object"]["sha"]
            s.post(api + "/git/refs", json={"ref": "refs/heads/feature", "sha": main})
            number = s.post(api + "/pulls", json={"title": "feature", "head": "feature",
                                                  "base": "main"}).json()["number"]

            def status() -> str:
                return next((c["body"] for c in repo.comments
                             if STATUS_MARKER in c["body"] and c["user"] == "mlgen-bot"), "")

            wait_for(lambda: "differ" in status())
            assert "`Jenkinsfile`" in status()

            guest = requests.Session()
            guest.headers["Authorization"] = "token guest-token"
            guest.post(api + f"/issues/{number}/comments", json={"body": "/mlgen sync"})
            wait_for(lambda: "needs write access" in status())
            assert repo.git.resolve("refs/heads/feature") == main  # nothing pushed

            s.post(api + f"/issues/{number}/comments", json={"body": "/mlgen sync"})
            wait_for(lambda: "Pushed" in status() or "match" in status())
            head = repo.git.resolve("refs/heads/feature")
            assert head != main
            assert repo.git.git("show", f"{head}:Jenkinsfile").decode() == "pipeline { // b\n}\n"
            # the push fires `synchronize`; the bot re-checks and reports the files in sync
            wait_for(lambda: "match" in status())
            assert len([c for c in repo.comments if c["user"] == "mlgen-bot"]) == 1
            assert bot.failures == 0
        finally:
            bot.stop()


def test_bot_serve_exits_cleanly_on_sigterm(tmp_path: Path) -> None:
    """Kubernetes stops a pod with SIGTERM: the real `mlgen bot serve` process must stop
    listening and exit 0, not wait to be killed at the end of the grace period."""
    import os
    import signal
    import socket
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "MLGEN_WEBHOOK_SECRET": SECRET.decode(), "GITHUB_TOKEN": DEFAULT_TOKEN,
           "GITHUB_API_URL": "http://127.0.0.1:9", "MLGEN_TRUST_TEMPLATES": "acme/B, acme/a"}
    proc = subprocess.Popen([sys.executable, "-m", "mlgen", "bot", "serve", "--host",
                             "127.0.0.1", "--port", str(port), "--db",
                             str(tmp_path / "bot.sqlite")],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        def healthy() -> bool:
            assert proc.poll() is None, proc.communicate()
            try:
                return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).ok
            except requests.ConnectionError:
                return False
        wait_for(healthy, timeout=30)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert b"mlgen bot: stopped" in err and b"Traceback" not in err
    assert (b"mlgen bot: template overrides render for: acme/a, acme/b (sandboxed; never for "
            b"pull requests from forks)") in err


def test_bot_serve_refuses_a_trusted_name_that_is_not_owner_name(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "MLGEN_WEBHOOK_SECRET": SECRET.decode(), "GITHUB_TOKEN": DEFAULT_TOKEN,
           "GITHUB_API_URL": "http://127.0.0.1:9", "MLGEN_TRUST_TEMPLATES": "acme/a nope"}
    proc = subprocess.run([sys.executable, "-m", "mlgen", "bot", "serve", "--port", "0",
                           "--db", str(tmp_path / "bot.sqlite")], env=env, capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 2
    assert proc.stderr == "error: --trust-templates 'nope': expected OWNER/NAME\n"


# ---------------------------------------------------------------- template overrides

EXAMPLE_SPEC = (REPO_ROOT / "examples" / "credit-risk"
                / "mlgen.yaml").read_text()
SPEC_WITH_OVERRIDES = EXAMPLE_SPEC + "templates: ci/templates\n"
OVERRIDE = "ci/templates/docker/dockerignore.j2"


def escape(marker: Path) -> str:
    """An override that, rendered outside the sandbox, creates `marker` through os."""
    return ("# ignore\n{{ self.__init__.__globals__.__builtins__.__import__('os')"
            f".popen('touch {marker}').read() }}}}\n")


def builtin_synced(spec_text: str) -> dict[str, str]:
    """The repository as a clean sync of the example with the built-in templates leaves it,
    holding `spec_text` (`templates:` changes nothing the built-in templates render)."""
    return {**synced(EXAMPLE_SPEC, render=None), "mlgen.yaml": spec_text}


class BotRun:
    """The real bot with the real renderer, hooked to the emulator; PRs opened over HTTP."""

    def __init__(self, emu: Emulator, tmp_path: Path, **handler_kw: Any) -> None:
        self.emu = emu
        emu.add_user("dev", "dev-token")
        client = gh.connect(gh.Settings.from_env(
            {"GITHUB_TOKEN": DEFAULT_TOKEN, "GITHUB_API_URL": emu.url},
            seconds_between_writes=0))
        self.bot = Bot(BotConfig(SECRET, tmp_path / "bot.sqlite", port=0),
                       github_handler(client, **handler_kw)).start()
        emu.add_hook(self.bot.url + "/webhook", SECRET.decode())

    def session(self, token: str) -> requests.Session:
        s = requests.Session()
        s.headers["Authorization"] = f"token {token}"
        return s

    def branch_pr(self, repo: str) -> int:
        """A PR from a branch of the repository itself (same content as main)."""
        s, api = self.session("dev-token"), f"{self.emu.url}/repos/{repo}"
        main = s.get(api + "/git/ref/heads/main").json()["object"]["sha"]
        s.post(api + "/git/refs", json={"ref": "refs/heads/feature", "sha": main})
        return int(s.post(api + "/pulls", json={"title": "f", "head": "feature",
                                                "base": "main"}).json()["number"])

    def fork_pr(self, repo: str, files: dict[str, str]) -> int:
        """A PR from contrib's fork, whose branch changes `files`."""
        owner_name = repo.split("/")[1]
        self.emu.add_fork(repo, f"contrib/{owner_name}")
        self.emu.add_user("contrib", "contrib-token")
        s, api = self.session("contrib-token"), f"{self.emu.url}/repos/contrib/{owner_name}"
        main = s.get(api + "/git/ref/heads/main").json()["object"]["sha"]
        base_tree = s.get(api + f"/git/commits/{main}").json()["tree"]["sha"]
        tree = s.post(api + "/git/trees", json={"base_tree": base_tree, "tree": [
            {"path": p, "mode": "100644", "type": "blob", "content": c}
            for p, c in files.items()]}).json()["sha"]
        commit = s.post(api + "/git/commits", json={"message": "templates", "tree": tree,
                                                    "parents": [main]}).json()["sha"]
        s.post(api + "/git/refs", json={"ref": "refs/heads/patch", "sha": commit})
        return int(self.session("contrib-token").post(
            f"{self.emu.url}/repos/{repo}/pulls",
            json={"title": "p", "head": "contrib:patch", "base": "main"}).json()["number"])

    def settle(self, delivered: Any) -> None:
        """Wait until a delivery matching `delivered` arrived and the bot handled every
        delivery it accepted."""
        def done() -> bool:
            with self.emu.state.lock:
                seen = list(self.emu.state.deliveries)
            accepted = sum(1 for d in seen if d["status"] == 202)
            return (any(delivered(d) for d in seen)
                    and self.bot.processed + self.bot.failures >= accepted)
        wait_for(done, timeout=60)

    def status(self, repo: str, number: int) -> str:
        r = self.emu.state.repo(*repo.split("/"))
        return next((c["body"] for c in r.comments if c["issue"] == number
                     and STATUS_MARKER in c["body"] and c["user"] == "mlgen-bot"), "")

    def wait_status(self, repo: str, number: int) -> str:
        wait_for(lambda: bool(self.status(repo, number)), timeout=60)
        return self.status(repo, number)


@pytest.fixture()
def emulator() -> Any:
    with Emulator() as emu:
        yield emu


def test_trusted_repository_override_escape_is_reported_on_the_pr(
        emulator: Emulator, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("WARNING", logger="mlgen.publish.github.bot")
    marker = tmp_path / "pwned"
    emulator.add_repo("acme/trusted", {**builtin_synced(SPEC_WITH_OVERRIDES),
                                       OVERRIDE: escape(marker)}, permissions={"dev": "write"})
    run = BotRun(emulator, tmp_path, trusted_templates=["ACME/Trusted"])
    try:
        number = run.branch_pr("acme/trusted")
        text = run.wait_status("acme/trusted", number)
        assert "mlgen could not render this pull request" in text
        assert (f"acme/trusted:{OVERRIDE}:2: template blocked by the sandbox: access to "
                "attribute '__init__'") in text
        assert not marker.exists()
        # the author can fix it; nothing counts as a bot failure
        assert run.bot.failures == 0
        s = run.session("dev-token")
        s.post(f"{emulator.url}/repos/acme/trusted/issues/{number}/comments",
               json={"body": "/mlgen sync"})
        run.settle(lambda d: d["event"] == "issue_comment"
                   and d["payload"]["comment"]["body"] == "/mlgen sync")
        assert "template blocked by the sandbox" in run.status("acme/trusted", number)
        assert not marker.exists() and run.bot.failures == 0
        # both the check and `/mlgen sync` met the sandbox, and said so without a traceback
        blocked = [r for r in caplog.records if "cannot render" in r.getMessage()]
        assert len(blocked) == 2 and not any(r.exc_info for r in blocked)
    finally:
        run.bot.stop()


def test_untrusted_repository_overrides_are_ignored_and_the_comment_says_so(
        emulator: Emulator, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    emulator.add_repo("acme/plain", {**builtin_synced(SPEC_WITH_OVERRIDES),
                                     OVERRIDE: escape(marker)}, permissions={"dev": "write"})
    run = BotRun(emulator, tmp_path)
    try:
        text = run.wait_status("acme/plain", run.branch_pr("acme/plain"))
        assert not marker.exists()
        # rendered with the built-in templates: the built-in-synced files match
        assert "✅ Pipeline files match `mlgen.yaml`" in text
        assert ("template overrides in ci/templates ignored: repository not trusted for "
                "templates (see `mlgen bot serve --trust-templates OWNER/NAME`)") in text
        assert run.bot.failures == 0
    finally:
        run.bot.stop()


def test_fork_pull_request_never_renders_the_forks_overrides(
        emulator: Emulator, tmp_path: Path) -> None:
    """Even for a repository whose own overrides are trusted, a fork's PR is checked with the
    built-in templates only: the fork's override (the escape) is neither rendered nor run."""
    marker = tmp_path / "pwned"
    emulator.add_repo("acme/open", builtin_synced(EXAMPLE_SPEC))
    run = BotRun(emulator, tmp_path, trusted_templates=["acme/open"])
    try:
        number = run.fork_pr("acme/open", {"mlgen.yaml": SPEC_WITH_OVERRIDES,
                                           OVERRIDE: escape(marker)})
        text = run.wait_status("acme/open", number)
        assert not marker.exists()
        assert "could not render" not in text and "sandbox" not in text
        assert ("template overrides in ci/templates ignored: the pull request comes from a "
                "fork, and a fork's overrides are never rendered; it is checked with the "
                "built-in templates") in text
        # the check still answers, from the built-in templates: the files match
        assert "✅ Pipeline files match `mlgen.yaml`" in text
        assert run.bot.failures == 0
    finally:
        run.bot.stop()
