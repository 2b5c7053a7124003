"""Build and push through the docker SDK against podman's real API and a real registry.

Fast on purpose: the images are a 2 MB shell image and its children (no pip, no debootstrap);
the full model image is built once, in tests/e2e.
"""
from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlgen.integrations.docker import (
    BuildFailed,
    BuildRequest,
    Credentials,
    ImageError,
    build_image,
    connect,
    is_transient,
    push_image,
    split_reference,
)

from tests.images.podman_env import (
    SHELL_IMAGE,
    Containers,
    containers_env,
    ensure_shell_image,
    removes_new_images,
    require_tools,
    stop_process,
)

pytest.importorskip("docker", reason="the 'docker' extra is not installed")


@pytest.fixture(scope="module")
def box() -> Iterator[Containers]:
    require_tools()
    with containers_env(spare_registries=1) as containers, \
            removes_new_images(containers, keep=(SHELL_IMAGE,)):
        yield containers


@pytest.fixture(scope="module")
def client(box: Containers):  # type: ignore[no-untyped-def]
    c = connect(box.docker_host)
    yield c
    c.close()


@pytest.fixture(scope="module")
def shell_image(box: Containers) -> str:
    return ensure_shell_image(box)


@pytest.fixture()
def removed(box: Containers) -> Iterator[list[str]]:
    """Image ids a test created; removed by id afterwards."""
    ids: list[str] = []
    yield ids
    for image_id in ids:
        box.podman("rmi", "-f", image_id, check=False)


def context(tmp_path: Path, dockerfile: str) -> Path:
    (tmp_path / "Dockerfile").write_text(dockerfile)
    (tmp_path / "payload.txt").write_text("model bytes\n")
    (tmp_path / "secret.txt").write_text("not for the image\n")
    (tmp_path / ".dockerignore").write_text("**\n!payload.txt\n")
    return tmp_path


def test_build_streams_steps_and_sets_every_tag_and_label(
        box: Containers, client, shell_image: str, tmp_path: Path, removed: list[str]) -> None:  # type: ignore[no-untyped-def]
    ctx = context(
        tmp_path,
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY payload.txt /payload.txt\n"
        "ARG VCS_REF=unknown\nLABEL org.opencontainers.image.revision=${VCS_REF}\n",
    )
    repo = f"{box.registry}/team/model"
    lines: list[str] = []
    result = build_image(client, BuildRequest(
        context=ctx, dockerfile="Dockerfile", tags=(f"{repo}:1.2.3", f"{repo}:abc123def456"),
        build_args={"BASE_IMAGE": shell_image, "VCS_REF": "abc123def456"},
        labels={"dev.mlgen.test": "yes"}), lines.append)
    removed.append(result.image_id)
    assert any("COPY payload.txt" in line for line in lines), "progress was not streamed"
    inspect = json.loads(box.podman("image", "inspect", result.image_id).stdout)[0]
    assert set(inspect["RepoTags"]) == {f"{repo}:1.2.3", f"{repo}:abc123def456"}
    assert inspect["Labels"]["org.opencontainers.image.revision"] == "abc123def456"
    assert inspect["Labels"]["dev.mlgen.test"] == "yes"
    assert result.size > 0
    # .dockerignore applies: only payload.txt (and the Dockerfile) went to the engine.
    listing = box.podman("run", "--rm", result.image_id, "/bin/sh", "-c",
                         "echo /*", check=False)
    assert "secret.txt" not in listing.stdout


def test_failed_build_reports_the_failing_step_and_only_its_log(
        box: Containers, client, shell_image: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ctx = context(tmp_path, "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n"
                            "RUN echo noise-from-an-earlier-step\n"
                            "RUN echo the-real-cause >&2; exit 3\n")
    with pytest.raises(BuildFailed) as caught:
        build_image(client, BuildRequest(context=ctx, dockerfile="Dockerfile",
                                         tags=(f"{box.registry}/team/broken:1",),
                                         build_args={"BASE_IMAGE": shell_image}), lambda _: None)
    message = str(caught.value)
    assert "exit 3" in caught.value.step
    assert "the-real-cause" in message
    assert "noise-from-an-earlier-step" not in message


def test_push_prints_the_digest_the_registry_serves(
        box: Containers, client, shell_image: str, tmp_path: Path, removed: list[str]) -> None:  # type: ignore[no-untyped-def]
    ctx = context(tmp_path, "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY payload.txt /p\n")
    ref = f"{box.registry}/team/pushed:7"
    result = build_image(
        client,
        BuildRequest(
            context=ctx,
            dockerfile="Dockerfile",
            tags=(ref,),
            build_args={"BASE_IMAGE": shell_image},
        ),
        lambda _: None,
    )
    removed.append(result.image_id)
    pushed = push_image(client, ref, None, lambda _: None)
    assert pushed.image == f"{box.registry}/team/pushed" and pushed.tag == "7"
    assert pushed.digest == registry_digest(box.registry, "team/pushed", "7")


def test_push_retries_while_the_registry_is_down_then_succeeds(
        box: Containers, client, shell_image: str, tmp_path: Path, removed: list[str]) -> None:  # type: ignore[no-untyped-def]
    address = box.spare_registries[0]
    ctx = context(tmp_path, "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY payload.txt /p\n")
    ref = f"{address}/team/late:1"
    result = build_image(
        client,
        BuildRequest(
            context=ctx,
            dockerfile="Dockerfile",
            tags=(ref,),
            build_args={"BASE_IMAGE": shell_image},
        ),
        lambda _: None,
    )
    removed.append(result.image_id)
    started: list[subprocess.Popen[bytes]] = []
    delays: list[float] = []

    def sleep(seconds: float) -> None:  # the registry comes back during the first backoff
        delays.append(seconds)
        if not started:
            started.append(box.start_registry(address))

    messages: list[str] = []
    try:
        pushed = push_image(client, ref, Credentials("ci", "hunter2-secret"), messages.append,
                            attempts=3, first_delay=0.01, sleep=sleep)
    finally:
        for proc in started:
            stop_process(proc)
    assert len(delays) == 1, "one failure, one backoff, then success"
    assert any("retry 1/2" in m for m in messages)
    assert not any("hunter2-secret" in m for m in messages)
    assert pushed.digest.startswith("sha256:")


def test_push_gives_up_after_the_last_attempt_without_printing_the_password(
        box: Containers, client, shell_image: str, tmp_path: Path, removed: list[str]) -> None:  # type: ignore[no-untyped-def]
    ctx = context(tmp_path, "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY payload.txt /p\n")
    # Nothing listens on the spare address in this test: every attempt is refused.
    ref = f"{box.spare_registries[0]}/team/never:1"
    result = build_image(
        client,
        BuildRequest(
            context=ctx,
            dockerfile="Dockerfile",
            tags=(ref,),
            build_args={"BASE_IMAGE": shell_image},
        ),
        lambda _: None,
    )
    removed.append(result.image_id)
    sleeps: list[float] = []
    with pytest.raises(ImageError) as caught:
        push_image(client, ref, Credentials("ci", "hunter2-secret"), lambda _: None,
                   attempts=3, first_delay=1.0, sleep=sleeps.append)
    assert "after 3 attempts" in str(caught.value)
    assert "hunter2-secret" not in str(caught.value)
    assert len(sleeps) == 2 and sleeps[1] > sleeps[0], "exponential backoff between attempts"


def test_push_of_a_missing_image_says_to_build_first(client) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ImageError, match="run `mlgen build` first"):
        push_image(client, "127.0.0.1:1/no/such:0.0.0", None, lambda _: None)


def test_push_cli_writes_the_digest_file_and_github_output(
        box: Containers, client, shell_image: str, tmp_path: Path, removed: list[str]) -> None:  # type: ignore[no-untyped-def]
    project = tmp_path / "proj"
    project.mkdir()
    (project / "mlgen.yaml").write_text(
        "apiVersion: mlgen/v1\nname: cli-push\nversion: 2.0.1\n"
        "model:\n  features:\n    numeric: [x]\n"
        f"image:\n  registry: {box.registry}\n  repository: team/cli-push\n")
    (tmp_path / "ctx").mkdir()
    ctx_dir = context(tmp_path / "ctx", "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY payload.txt /p\n")
    ref = f"{box.registry}/team/cli-push:2.0.1"
    result = build_image(
        client,
        BuildRequest(
            context=ctx_dir,
            dockerfile="Dockerfile",
            tags=(ref,),
            build_args={"BASE_IMAGE": shell_image},
        ),
        lambda _: None,
    )
    removed.append(result.image_id)
    digest_file = tmp_path / "reports" / "image.json"
    github_output = tmp_path / "github_output"
    github_output.write_text("earlier=1\n")
    env = dict(box.env, GITHUB_OUTPUT=str(github_output), REGISTRY_USER="ci",
               REGISTRY_PASSWORD="hunter2-secret")
    out = subprocess.run([sys.executable, "-m", "mlgen", "-C", str(project), "push",
                          "--digest-file", str(digest_file), "--github-output"],
                         env=env, capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr
    assert "hunter2-secret" not in out.stdout + out.stderr
    record = json.loads(digest_file.read_text())
    digest = registry_digest(box.registry, "team/cli-push", "2.0.1")
    assert record == {"image": f"{box.registry}/team/cli-push", "tag": "2.0.1", "digest": digest}
    assert digest in out.stdout
    outputs = dict(line.split("=", 1) for line in github_output.read_text().splitlines())
    assert outputs["earlier"] == "1", "GITHUB_OUTPUT is appended to, not overwritten"
    assert outputs["digest"] == digest and outputs["tag"] == "2.0.1"


def registry_digest(registry: str, repo: str, tag: str) -> str:
    request = urllib.request.Request(
        f"http://{registry}/v2/{repo}/manifests/{tag}", method="HEAD",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json, "
                           "application/vnd.docker.distribution.manifest.v2+json"})
    with urllib.request.urlopen(request, timeout=10) as resp:
        return str(resp.headers["Docker-Content-Digest"])


# ---- pure parts: no engine needed ---------------------------------------------------------------


@pytest.mark.parametrize("message, transient", [
    ("dial tcp 127.0.0.1:5000: connect: connection refused", True),
    ("received unexpected HTTP status: 503 Service Unavailable", True),
    ("net/http: TLS handshake timeout", True),
    ("toomanyrequests: rate limit", True),
    ("unauthorized: authentication required", False),
    ("denied: requested access to the resource is denied", False),
    ("name unknown: repository name not known to registry", False),
])
def test_transient_errors_are_told_apart_from_refusals(message: str, transient: bool) -> None:
    assert is_transient(message) is transient


def test_references_split_at_the_tag_not_the_port() -> None:
    assert split_reference("127.0.0.1:5000/team/app:1.0") == ("127.0.0.1:5000/team/app", "1.0")
    with pytest.raises(ImageError, match="no tag"):
        split_reference("127.0.0.1:5000/team/app")


def test_credentials_never_show_the_password_in_repr() -> None:
    assert "hunter2" not in repr(Credentials("ci", "hunter2"))
