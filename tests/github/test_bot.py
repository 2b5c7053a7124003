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
from tests.github.test_publish import fake_render, synced

pytest.importorskip("github", reason="PyGithub is the 'github' extra")

from mlgen.bot import STATUS_MARKER, Bot, BotConfig, github_handler
from mlgen.integrations import github as gh

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
           "GITHUB_API_URL": "http://127.0.0.1:9"}
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
