"""mlgen's one doorway to a container engine: the only module that imports the docker SDK.

It speaks the Docker Engine API, so the same code drives a Docker daemon (DOCKER_HOST or the
default socket) and podman's compatible service (`podman system service`). The engine does the
work; this module adds what CI needs around it: progress streamed line by line, the failing
step's own log when a build breaks (not a 500-line scroll), every tag applied to the one image,
pushes retried with backoff on transient registry errors but not on refusals, and the pushed
digest, which is what deployments pin. Registry passwords travel only in the auth header and
are scrubbed from anything that could be printed.
"""
from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import MlgenError, require_extra

Printer = Callable[[str], None]

# "STEP 3/12: RUN ..." (buildah, podman) and "Step 3/12 : RUN ..." (Docker's builder).
_STEP_RE = re.compile(r"^(?:\[\d+/\d+\] )?(?:STEP|Step) (\d+)/(\d+)\s*:")
# "<tag>: digest: sha256:... size: N", the line Docker's and podman's pushes both end with.
_DIGEST_RE = re.compile(r"(sha256:[a-f0-9]{64})")
_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
# Refusals no retry can fix; anything else from a registry may be a blip worth retrying.
_PERMANENT = ("unauthorized", "denied", "authentication required", "forbidden",
              "name unknown", "manifest invalid", "no such image", "image not known",
              "invalid reference", "requested access to the resource is denied")
_TRANSIENT = ("timeout", "timed out", "connection reset", "connection refused", "eof",
              "broken pipe", "502", "503", "504", "500 internal", "bad gateway",
              "service unavailable", "gateway timeout", "toomanyrequests", "too many requests",
              "temporary", "try again", "unexpected end")


class ImageError(MlgenError):
    """The engine or registry refused or failed; the message says what to do."""


class BuildFailed(ImageError):
    def __init__(self, message: str, step: str, log: tuple[str, ...]) -> None:
        self.step = step
        self.log = log
        super().__init__(message)


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)

    def auth_config(self) -> dict[str, str]:
        return {"username": self.username, "password": self.password}


@dataclass(frozen=True)
class BuildRequest:
    context: Path
    dockerfile: str  # relative to the context, POSIX style
    tags: tuple[str, ...]  # full references: registry/repository:tag
    build_args: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    no_cache: bool = False
    pull: bool = False


@dataclass(frozen=True)
class BuildResult:
    image_id: str
    tags: tuple[str, ...]
    size: int  # bytes, as the engine reports the image


@dataclass(frozen=True)
class PushResult:
    image: str  # registry/repository, without tag
    tag: str
    digest: str  # sha256:...

    @property
    def reference(self) -> str:
        return f"{self.image}@{self.digest}"


def connect(base_url: str | None = None, timeout: int = 600) -> Any:
    """A docker SDK client: `base_url`, else DOCKER_HOST, else the engine's default socket."""
    docker = require_extra("docker", "docker", "building and pushing images")
    try:
        if base_url:
            client = docker.DockerClient(base_url=base_url, timeout=timeout)
        else:
            client = docker.from_env(timeout=timeout)
        client.ping()
    except docker.errors.DockerException as exc:
        where = base_url or "DOCKER_HOST or the default socket"
        raise ImageError(
            f"cannot reach a container engine at {where}: {_first_line(exc)}; start Docker, or "
            "podman's API (`podman system service --time=0 unix:///PATH/podman.sock`) and set "
            "DOCKER_HOST=unix:///PATH/podman.sock"
        ) from exc
    return client


def split_reference(ref: str) -> tuple[str, str]:
    """'host:5000/team/app:1.0' -> ('host:5000/team/app', '1.0'); the port is not a tag."""
    repo, sep, tag = ref.rpartition(":")
    if not sep or "/" in tag:
        raise ImageError(f"image reference {ref!r} has no tag; give one (never only 'latest')")
    if not _TAG_RE.match(tag):
        raise ImageError(f"image tag {tag!r} in {ref!r} is not a valid tag "
                         "(letters, digits, '_', '.', '-'; at most 128 characters)")
    return repo, tag


def build_image(client: Any, request: BuildRequest, echo: Printer) -> BuildResult:
    """Build, stream each line to `echo`, tag the result with every tag in the request."""
    docker = require_extra("docker", "docker", "building images")
    if not request.tags:
        raise ImageError("no tag to build; mlgen always tags with the spec version")
    for ref in request.tags:
        split_reference(ref)
    log = _StepLog()
    image_id = ""
    try:
        stream = client.api.build(
            path=str(request.context), dockerfile=request.dockerfile, tag=request.tags[0],
            buildargs=dict(request.build_args), labels=dict(request.labels) or None,
            nocache=request.no_cache, pull=request.pull, rm=True, forcerm=True, decode=True,
        )
        for chunk in stream:
            if "error" in chunk or "errorDetail" in chunk:
                detail = chunk.get("errorDetail") or {}
                message = detail.get("message") or chunk.get("error") or "build failed"
                raise _build_failed(message, log)
            text = chunk.get("stream")
            if text:
                for line in text.splitlines():
                    log.add(line)
                    echo(line)
                    found = re.match(
                        r"^(?:Successfully built|COMMIT.*-->)\s*([0-9a-f]{12,64})", line
                    )
                    if found:
                        image_id = found.group(1)
            aux = chunk.get("aux")
            if isinstance(aux, dict) and aux.get("ID"):
                image_id = aux["ID"]
            status = chunk.get("status")
            if status:
                echo(status)
    except docker.errors.APIError as exc:
        raise _build_failed(_api_message(exc), log) from exc
    except docker.errors.DockerException as exc:
        raise ImageError(f"build failed: {_first_line(exc)}") from exc
    # Look the image up by its first tag: podman and Docker print the id differently, and
    # the tag is what the engine guarantees to have set when the stream ended without error.
    try:
        image = client.images.get(request.tags[0])
    except docker.errors.ImageNotFound as exc:
        hint = f" (the engine printed image id {image_id})" if image_id else ""
        raise ImageError(f"the build ended but {request.tags[0]} is missing{hint}") from exc
    for ref in request.tags[1:]:
        repo, tag = split_reference(ref)
        image.tag(repo, tag, force=True)
    image.reload()
    return BuildResult(image_id=image.id, tags=tuple(request.tags),
                       size=int(image.attrs.get("Size") or 0))


def push_image(client: Any, ref: str, credentials: Credentials | None, echo: Printer,
               attempts: int = 4, first_delay: float = 2.0,
               sleep: Callable[[float], None] = time.sleep) -> PushResult:
    """Push one tag; retry transient failures with exponential backoff and jitter.

    Without `credentials` the SDK reads the Docker config (~/.docker/config.json,
    DOCKER_CONFIG), which is where `docker login` and credential helpers leave them.
    """
    docker = require_extra("docker", "docker", "pushing images")
    repo, tag = split_reference(ref)
    secret = credentials.password if credentials else None
    try:
        client.images.get(ref)
    except docker.errors.ImageNotFound as exc:
        raise ImageError(f"no local image {ref}; run `mlgen build` first "
                         f"(with --tag {tag} if it is not the version tag)") from exc
    last = ""
    for attempt in range(1, attempts + 1):
        try:
            digest = _push_once(client, repo, tag, credentials, echo)
            return PushResult(image=repo, tag=tag, digest=digest)
        except docker.errors.APIError as exc:
            last = _scrub(_api_message(exc), secret)
        except docker.errors.DockerException as exc:
            last = _scrub(_first_line(exc), secret)
        except _StreamError as exc:
            last = _scrub(str(exc), secret)
        except OSError as exc:  # the socket itself dropped
            last = _scrub(str(exc), secret)
        if not is_transient(last):
            raise ImageError(f"push of {ref} refused: {last}{_auth_hint(last)}")
        if attempt < attempts:
            delay = first_delay * 2 ** (attempt - 1) * (0.75 + random.random() / 2)
            echo(f"push of {ref} failed ({last}); retry {attempt}/{attempts - 1} in {delay:.1f}s")
            sleep(delay)
    raise ImageError(f"push of {ref} failed after {attempts} attempts: {last}")


def is_transient(message: str) -> bool:
    text = message.lower()
    if any(word in text for word in _PERMANENT):
        return False
    return any(word in text for word in _TRANSIENT)


# ---- internals --------------------------------------------------------------------------------


class _StreamError(Exception):
    """An error the engine reported inside an otherwise successful HTTP stream."""


class _StepLog:
    """Remembers the lines of the current build step, so a failure shows only its own log."""

    def __init__(self, keep: int = 200) -> None:
        self.step = ""
        self.lines: list[str] = []
        self.keep = keep

    def add(self, line: str) -> None:
        if _STEP_RE.match(line):
            self.step = line.strip()
            self.lines = []
            return
        self.lines.append(line)
        if len(self.lines) > self.keep:
            del self.lines[: len(self.lines) - self.keep]


def _build_failed(message: str, log: _StepLog) -> BuildFailed:
    step = log.step or "(before the first step)"
    body = "\n".join(f"  | {line}" for line in log.lines[-60:])
    text = f"image build failed at {step}\n{body}\n{_first_line(message)}" if body else \
        f"image build failed at {step}: {_first_line(message)}"
    return BuildFailed(text, step=step, log=tuple(log.lines))


def _push_once(client: Any, repo: str, tag: str, credentials: Credentials | None,
               echo: Printer) -> str:
    auth = credentials.auth_config() if credentials else None
    digest = ""
    last_status: dict[str, str] = {}
    for chunk in client.api.push(repo, tag=tag, stream=True, decode=True, auth_config=auth):
        if "error" in chunk or "errorDetail" in chunk:
            detail = chunk.get("errorDetail") or {}
            raise _StreamError(str(detail.get("message") or chunk.get("error")))
        aux = chunk.get("aux")
        if isinstance(aux, dict) and str(aux.get("Digest", "")).startswith("sha256:"):
            digest = aux["Digest"]
        status = str(chunk.get("status") or "")
        layer = str(chunk.get("id") or "")
        if status:
            found = _DIGEST_RE.search(status) if "digest" in status.lower() else None
            if found:
                digest = found.group(1)
            # One line per layer state, not one per progress tick.
            if last_status.get(layer) != status:
                last_status[layer] = status
                echo(f"{layer}: {status}" if layer else status)
    if not digest:
        digest = _registry_digest(client, f"{repo}:{tag}", auth)
    return digest


def _registry_digest(client: Any, ref: str, auth: Mapping[str, str] | None) -> str:
    """Ask the engine for the registry's digest when the push stream did not carry one."""
    data = client.images.get_registry_data(ref, auth_config=dict(auth) if auth else None)
    digest = str(data.id)
    if not digest.startswith("sha256:"):
        raise _StreamError(f"the registry returned no digest for {ref}")
    return digest


def _api_message(exc: Any) -> str:
    explanation = getattr(exc, "explanation", None)
    status = getattr(exc, "status_code", None)
    text = str(explanation or exc)
    return f"{text} (HTTP {status})" if status else text


def _first_line(exc: object) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _scrub(text: str, secret: str | None) -> str:
    return text.replace(secret, "***") if secret else text


def _auth_hint(message: str) -> str:
    text = message.lower()
    if any(w in text for w in ("unauthorized", "denied", "authentication required")):
        return ("; set REGISTRY_USER and REGISTRY_PASSWORD, or log in so the Docker config "
                "holds credentials for this registry")
    return ""

