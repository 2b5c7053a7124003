"""The webhook bot's image and manifests, for real: `deploy/bot/Dockerfile` built unchanged
(build arguments only), pushed to a registry on loopback, `deploy/bot/k8s` rendered by
kustomize with the image pinned by digest (as its kustomization.yaml says to deploy it), and
the Deployment's pod template run by `podman kube play` with the manifest's securityContext
(user 10001, read-only root, /tmp emptyDir, the delivery log on the PVC's volume).

Over real HTTP from the host: /healthz, a signed ping, its replay (also after the pod is
recreated on the same volume), bad signatures; then, with the GitHub emulator delivering the
webhook, a pull request gets the bot's status comment, rendered inside the container.

Deviations from the manifests, both only in the test's copy:
- The bridged pod gets a hostPort on 127.0.0.1 (kube play runs no Service), like the pipeline
  test does.
- The emulator binds 127.0.0.1 and PyGithub refuses URLs whose host differs from
  GITHUB_API_URL, so the container can only reach it from the host's network namespace: the
  pull-request test plays the same Deployment with `hostNetwork: true`, and, since the host's
  8080 may be taken, appends `--port N` to the image's ENTRYPOINT (Click keeps the last value);
  see host_network_play for what else kube play needs there.

- The PVC's volume is created by the test (kube play would create it from the PVC, once per
  pod), so the same volume outlives one pod, as the claim does in a cluster.

Run alone: `pytest tests/e2e/test_bot_image.py -s` (about 40 s on 2 cores once the base image
exists, 15 s of it the build). Skips and fails exactly as test_pipeline.py does.

Secrets: kube play (podman 4.3) has no `kind: Secret`; `envFrom.secretRef` reads the podman
secret of that name (a JSON object of base64 values, like a Secret's `data`), so the test
creates one and removes it by ID.
"""
from __future__ import annotations

import base64
import contextlib
import copy
import hashlib
import hmac
import json
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e import kubeplay
from tests.e2e.common import Timings, containers_box, exited, git, http_get, ids_after
from tests.images.podman_env import (
    BASE_IMAGE,
    Containers,
    ensure_base_image,
    free_port,
    removes_new_images,
    wait_until,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

from tests.helpers import REPO as REPO_ROOT

BOT_DIR = REPO_ROOT / "deploy" / "bot"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
# The name deploy/bot/k8s gives the image; its kustomization rewrites it, and so does ours.
IMAGE_NAME = "mlgen-bot"
WEBHOOK_SECRET = "e2e-webhook-secret"
TIMINGS = Timings()


@dataclass(frozen=True)
class BotImage:
    image_id: str
    ref: str  # REGISTRY/mlgen-bot@sha256:..., what the Deployment runs
    revision: str
    size: int


@dataclass(frozen=True)
class Pod:
    pod_id: str
    container: str
    base_url: str



# ---- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def box() -> Iterator[Containers]:
    yield from containers_box(TIMINGS, "bot e2e")


@pytest.fixture(scope="module")
def bot_image(box: Containers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BotImage]:
    work = tmp_path_factory.mktemp("bot-image")
    with TIMINGS.timed("base image"):
        base = ensure_base_image(box)
    # Build-stage layers too: a developer's disk should not grow per run.
    with removes_new_images(box, keep=(BASE_IMAGE,)):
        yield _build_and_push(box, base, work)


def _build_and_push(box: Containers, base: str, work: Path) -> BotImage:
    # A copy of deploy/bot as its context: the wheel and the CA bundle never touch the checkout,
    # and a wheel a developer left in deploy/bot/wheels is not what gets tested.
    context = work / "context"
    shutil.copytree(BOT_DIR, context, ignore=shutil.ignore_patterns("*.whl", "ca.crt"))
    with TIMINGS.timed("wheel"):
        out = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                              str(context / "wheels"), str(REPO_ROOT)],
                             capture_output=True, text=True, timeout=600, check=False)
        assert out.returncode == 0, f"pip wheel failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    # The Dockerfile's documented way in for a corporate CA: the build stage only.
    shutil.copy(CA_BUNDLE, context / "wheels" / "ca.crt")
    revision = git(REPO_ROOT, "rev-parse", "HEAD").strip()
    iid = work / "iid"
    with TIMINGS.timed("build"):
        box.podman("build", "--isolation", "chroot", "--pull=never", "--iidfile", str(iid),
                   "--build-arg", f"BASE_IMAGE={base}", "--build-arg", f"VCS_REF={revision}",
                   "-f", str(context / "Dockerfile"), str(context), timeout=900)
    image_id = iid.read_text().strip().removeprefix("sha256:")
    digest_file = work / "digest"
    with TIMINGS.timed("push"):
        box.podman("push", "--tls-verify=false", "--digestfile", str(digest_file), image_id,
                   f"{box.registry}/{IMAGE_NAME}:e2e")
    digest = digest_file.read_text().strip()
    size = int(json.loads(box.podman("image", "inspect", image_id).stdout)[0]["Size"])
    return BotImage(image_id=image_id, ref=f"{box.registry}/{IMAGE_NAME}@{digest}",
                    revision=revision, size=size)


@pytest.fixture(scope="module")
def rendered(box: Containers, bot_image: BotImage, tmp_path_factory: pytest.TempPathFactory,
             ) -> list[dict[str, Any]]:
    """deploy/bot/k8s through kustomize, the image pinned as its kustomization.yaml advises
    (`kustomize edit set image mlgen-bot=REGISTRY/mlgen-bot@sha256:...`), in an overlay."""
    overlay = tmp_path_factory.mktemp("bot-overlay")
    # kustomize takes no absolute resource paths: the base goes beside the overlay, unchanged.
    shutil.copytree(BOT_DIR / "k8s", overlay / "k8s")
    overlay /= "overlay"
    overlay.mkdir()
    name, _, digest = bot_image.ref.partition("@")
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": ["../k8s"],
        "images": [{"name": IMAGE_NAME, "newName": name, "digest": digest}],
    }))
    out = subprocess.run(["kubectl", "kustomize", str(overlay)], capture_output=True, text=True,
                         timeout=120, check=False)
    assert out.returncode == 0, f"kubectl kustomize failed:\n{out.stderr}"
    docs = kubeplay.load(out.stdout)
    assert {c["image"] for c in pod_spec(docs)["containers"]} == {bot_image.ref}
    return docs


# ---- the tests ----------------------------------------------------------------------------------


def test_image_labels_user_port_and_cli(box: Containers, bot_image: BotImage) -> None:
    info = json.loads(box.podman("image", "inspect", bot_image.image_id).stdout)[0]
    labels = info["Labels"]
    assert labels["org.opencontainers.image.title"] == "mlgen-bot"
    assert labels["org.opencontainers.image.revision"] == bot_image.revision
    assert labels["org.opencontainers.image.version"] == "0.1.0"
    config = info["Config"]
    assert config["User"].split(":")[0] == "10001"
    assert "8080/tcp" in config["ExposedPorts"]
    # The bot is PID 1, where SIGTERM (no Python handler) is ignored; see the Dockerfile.
    assert config.get("StopSignal") in ("SIGINT", "2"), config.get("StopSignal")
    version = box.podman("run", "--rm", "--read-only", "--entrypoint", "mlgen",
                         bot_image.image_id, "--version")
    assert "0.1.0" in version.stdout + version.stderr
    serve_help = box.podman("run", "--rm", "--read-only", "--entrypoint", "mlgen",
                            bot_image.image_id, "bot", "serve", "--help")
    assert "MLGEN_WEBHOOK_SECRET" in serve_help.stdout
    # Only the venv crosses from the build stage: no wheel, no CA bundle, no pip cache.
    leftovers = box.podman("run", "--rm", "--entrypoint", "python3", bot_image.image_id, "-c",
                           "import os, sys; print(os.path.exists('/tmp/build'), sys.prefix, "
                           "__import__('mlgen').__file__)")
    exists, prefix, module = leftovers.stdout.split()
    assert exists == "False" and prefix == "/opt/venv" and module.startswith("/opt/venv/"), (
        leftovers.stdout
    )
    print(f"\nbot image size: {bot_image.size / 1e6:.0f} MB ({bot_image.size} bytes)")


def test_deployment_answers_health_ping_replays_and_bad_signatures(
        box: Containers, rendered: list[dict[str, Any]], tmp_path: Path) -> None:
    env = {"MLGEN_WEBHOOK_SECRET": WEBHOOK_SECRET, "GITHUB_TOKEN": "unused-e2e-token",
           # nothing is sent to GitHub here; if something were, it must not leave the machine
           "GITHUB_API_URL": "http://127.0.0.1:9"}
    port = free_port()
    delivery = str(uuid.uuid4())
    ping = json.dumps({"zen": "Keep it logically awesome.", "hook_id": 1}).encode()
    with claimed_volume(box, rendered) as mountpoint:
        with played(box, bridged_play(rendered, port), env, tmp_path, port, "bridge") as pod:
            status, body = http_get(pod.base_url + "/healthz")
            assert status == 200 and json.loads(body)["status"] == "ok", body
            assert webhook(pod.base_url, ping, "ping", delivery) == (200, {"status": "pong"})
            assert webhook(pod.base_url, ping, "ping", delivery) == (
                200, {"status": "duplicate", "delivery": delivery})
            assert webhook(pod.base_url, ping, "ping", str(uuid.uuid4()),
                           secret="not-the-secret")[0] == 401
            assert webhook(pod.base_url, ping, "ping", str(uuid.uuid4()), secret=None)[0] == 401
            tampered = ping.replace(b"awesome", b"awful")
            assert webhook(pod.base_url, tampered, "ping", str(uuid.uuid4()),
                           signed_body=ping)[0] == 401
            # The manifest's securityContext reached the container.
            inspected = json.loads(box.podman("inspect", pod.container).stdout)[0]
            assert inspected["HostConfig"]["ReadonlyRootfs"] is True
            assert inspected["Config"]["User"].split(":")[0] == "10001"
            # root, so that only the read-only mount (not file ownership) can refuse the write
            write = box.podman("exec", "--user", "0", pod.container, "python3", "-c",
                               "open('/opt/venv/x', 'w')", check=False)
            assert write.returncode != 0 and "Read-only file system" in write.stderr, write
            # The delivery log is on the claim's volume, written by the bot's user.
            db = mountpoint / "bot.sqlite"
            assert db.is_file() and db.stat().st_uid == 10001, sorted(mountpoint.iterdir())
            # Stopped as a rollout stops it: the bot exits by itself (0), not SIGKILLed (137)
            # after terminationGracePeriodSeconds.
            box.podman("pod", "stop", pod.pod_id, timeout=120)
            state = json.loads(box.podman("inspect", "--format", "{{json .State}}",
                                          pod.container).stdout)
            assert state["ExitCode"] == 0, state
        # A new pod on the same volume (a restart under `strategy: Recreate`) still knows it.
        with played(box, bridged_play(rendered, port), env, tmp_path, port, "restart") as again:
            assert webhook(again.base_url, ping, "ping", delivery) == (
                200, {"status": "duplicate", "delivery": delivery})


def test_pull_request_gets_the_status_comment_rendered_in_the_container(
        box: Containers, rendered: list[dict[str, Any]], tmp_path: Path) -> None:
    # PyGithub is needed inside the image only: nothing here on the host imports it.
    from mlgen.publish.github.bot import STATUS_MARKER
    from mlgen.publish.github.sync_pr import render_remote, synced_files

    from tests.emulators.github import DEFAULT_TOKEN, Emulator

    spec_text = (REPO_ROOT / "examples" / "house-prices" / "mlgen.yaml").read_text()
    # Rendered on the host, by the checkout: the container's render must agree file for file.
    in_sync = {p: d.decode() for p, d in synced_files(spec_text).items()}
    port = free_port()
    with Emulator() as emu:
        emu.add_repo("acme/synced", {**in_sync, "mlgen.yaml": spec_text})
        emu.add_repo("acme/stale", {"mlgen.yaml": spec_text, "README.md": "# stale\n"})
        env = {"MLGEN_WEBHOOK_SECRET": WEBHOOK_SECRET, "GITHUB_TOKEN": DEFAULT_TOKEN,
               "GITHUB_API_URL": emu.url}
        with claimed_volume(box, rendered), \
                played(box, host_network_play(rendered, port), env, tmp_path, port, "host net"):
            emu.add_hook(f"http://127.0.0.1:{port}/webhook", WEBHOOK_SECRET)
            numbers = {name: open_pull_request(emu.url, DEFAULT_TOKEN, f"acme/{name}")
                       for name in ("synced", "stale")}

            def status(name: str) -> str:
                repo = emu.state.repo("acme", name)
                return next((c["body"] for c in repo.comments if STATUS_MARKER in c["body"]), "")

            with TIMINGS.timed("PR comments"):
                wait_until(lambda: status("synced") and status("stale"), 120,
                           "the bot's status comments on both pull requests", interval=0.5)
            generated = len(render_remote(spec_text))
            assert f"match `mlgen.yaml` ({generated} files checked)" in status("synced")
            assert "differ" in status("stale") and "`Jenkinsfile`" in status("stale")
            # The emulator signed and delivered each `opened` event; the bot queued each. The
            # emulator records a delivery after the bot's answer, so maybe after the comment.
            def opened() -> list[dict[str, Any]]:
                return [d for d in emu.state.deliveries
                        if d["event"] == "pull_request" and d["payload"]["action"] == "opened"]

            wait_until(lambda: len(opened()) == 2, 10, "the emulator to record both deliveries")
            assert sorted((d["payload"]["repository"]["name"], d["payload"]["number"])
                          for d in opened()) == sorted(numbers.items())
            assert {d["status"] for d in opened()} == {202}
            health = json.loads(http_get(f"http://127.0.0.1:{port}/healthz")[1])
            assert health["processed"] >= 2 and health["failures"] == 0, health


# ---- kube play ----------------------------------------------------------------------------------


def pod_spec(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return dict(kubeplay.one(docs, "Deployment")["spec"]["template"]["spec"])


def bot_container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    return next(c for c in containers if c["name"] == "bot")


def bridged_play(docs: list[dict[str, Any]], host_port: int) -> str:
    """The Deployment as rendered, its http port published on 127.0.0.1:host_port."""
    deployment = copy.deepcopy(kubeplay.one(docs, "Deployment"))
    for port in bot_container(deployment)["ports"]:
        if port["name"] == "http":
            port.update(hostPort=host_port, hostIP="127.0.0.1")
    return yaml.safe_dump(deployment, sort_keys=False)


def host_network_play(docs: list[dict[str, Any]], port: int) -> str:
    """The Deployment in the host's network namespace, the bot listening on `port`.

    kube play refuses port mappings with hostNetwork ("PortMappings can only be used with
    Bridge or slirp4netns networking") and publishes every containerPort, so the ports list
    goes, and the probes' named port becomes the number it stood for.
    """
    deployment = copy.deepcopy(kubeplay.one(docs, "Deployment"))
    deployment["spec"]["template"]["spec"]["hostNetwork"] = True
    container = bot_container(deployment)
    # Click keeps the last --port, so this overrides the ENTRYPOINT's 8080 (maybe taken here).
    container["args"] = ["--port", str(port)]
    named = {p["name"]: p["containerPort"] for p in container.pop("ports")}
    for probe in ("readinessProbe", "livenessProbe"):
        http = container[probe]["httpGet"]
        assert http["port"] in named, f"{probe} uses port {http['port']!r}"
        http["port"] = port
    return yaml.safe_dump(deployment, sort_keys=False)


@contextlib.contextmanager
def claimed_volume(box: Containers, docs: list[dict[str, Any]]) -> Iterator[Path]:
    """The PVC's volume (kube play names it after claimName), removed before and after."""
    claim = str(kubeplay.one(docs, "PersistentVolumeClaim")["metadata"]["name"])
    box.podman("volume", "rm", "-f", claim, check=False)  # a crashed earlier run's leftover
    box.podman("volume", "create", claim)
    try:
        yield Path(json.loads(box.podman("volume", "inspect", claim).stdout)[0]["Mountpoint"])
    finally:
        box.podman("volume", "rm", "-f", claim, check=False)


@contextlib.contextmanager
def played(box: Containers, play: str, env: dict[str, str], workdir: Path, port: int,
           label: str) -> Iterator[Pod]:
    """kube play one Deployment with its `mlgen-bot` Secret; wait for /healthz; remove by ID."""
    deployment = yaml.safe_load(play)
    container_spec = bot_container(deployment)
    (secret_name,) = [ref["secretRef"]["name"] for ref in container_spec["envFrom"]]
    box.podman("secret", "rm", secret_name, check=False)  # a crashed earlier run's leftover
    # podman 4.3 reads it as a JSON object of base64 values (a Secret's `data`, nothing else).
    secret = json.dumps({k: base64.b64encode(v.encode()).decode() for k, v in env.items()})
    secret_id = box.podman("secret", "create", secret_name, "-", input=secret).stdout.strip()
    play_file = workdir / f"play-{uuid.uuid4().hex[:8]}.yaml"
    play_file.write_text(play)
    pod_id = ""
    start = time.monotonic()
    try:
        out = box.podman("kube", "play", str(play_file), timeout=300)
        pod_id = ids_after(out.stdout, "Pod:")[0]
        container = ids_after(out.stdout, "Container:")[0]
        base_url = f"http://127.0.0.1:{port}"
        live = container_spec["livenessProbe"]

        def healthy() -> bool:
            state = exited(box, container)
            if state is not None:
                logs = box.podman("logs", container, check=False)
                raise AssertionError(f"the bot exited ({state.get('ExitCode')}):\n"
                                     f"{logs.stdout[-4000:]}\n{logs.stderr[-4000:]}")
            return http_get(base_url + live["httpGet"]["path"])[0] == 200

        # As long as the liveness probe would give it before a restart, and no longer.
        budget = int(live.get("initialDelaySeconds", 0)) + \
            int(live.get("periodSeconds", 10)) * int(live.get("failureThreshold", 3))
        wait_until(healthy, budget, "the bot's /healthz", interval=0.5)
        TIMINGS[f"play to healthy ({label})"] = time.monotonic() - start
        try:
            yield Pod(pod_id=pod_id, container=container, base_url=base_url)
        except BaseException:
            logs = box.podman("logs", container, check=False)
            print(f"\nbot logs:\n{logs.stdout[-4000:]}\n{logs.stderr[-4000:]}")
            raise
    finally:
        if pod_id:
            box.podman("pod", "rm", "-f", pod_id, check=False)
        else:  # kube play can fail after creating the pod, before printing its ID
            box.podman("kube", "down", str(play_file), check=False)
        box.podman("secret", "rm", secret_id, check=False)


# ---- HTTP ---------------------------------------------------------------------------------------


def webhook(base_url: str, body: bytes, event: str, delivery: str,
            secret: str | None = WEBHOOK_SECRET, signed_body: bytes | None = None,
            ) -> tuple[int, Any]:
    """POST one delivery as GitHub does; `signed_body` signs something else (a tampered body)."""
    headers = {"Content-Type": "application/json", "X-GitHub-Event": event,
               "X-GitHub-Delivery": delivery, "User-Agent": "GitHub-Hookshot/e2e"}
    if secret is not None:
        digest = hmac.new(secret.encode(), signed_body or body, hashlib.sha256).hexdigest()
        headers["X-Hub-Signature-256"] = f"sha256={digest}"
    request = urllib.request.Request(base_url + "/webhook", data=body, headers=headers,
                                     method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def open_pull_request(api: str, token: str, repo: str) -> int:
    """A branch off main and a PR from it, through the emulator's REST API."""
    def call(method: str, path: str, payload: dict[str, Any] | None = None) -> Any:
        request = urllib.request.Request(
            f"{api}/repos/{repo}{path}", method=method,
            data=None if payload is None else json.dumps(payload).encode(),
            headers={"Authorization": f"token {token}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as resp:
            return json.loads(resp.read())

    main = call("GET", "/git/ref/heads/main")["object"]["sha"]
    call("POST", "/git/refs", {"ref": "refs/heads/feature", "sha": main})
    return int(call("POST", "/pulls", {"title": "feature", "head": "feature",
                                       "base": "main"})["number"])
