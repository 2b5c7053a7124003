"""Real container parts for tests: podman's Docker-compatible API, a local registry, a base image.

Everything follows tests/reference/containers.md: a test-owned containers.conf (never
the machine's), BUILDAH_ISOLATION=chroot, a registries.conf that marks the loopback registry
insecure, and every process stopped by the PID this module started. Nothing here is a mock:
the docker SDK talks to podman over a unix socket exactly as it would talk to Docker.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

# The stand-in for python:3.11-slim (bookworm's python3 is 3.11), built once and kept by tag.
BASE_IMAGE = "localhost/mlgen-e2e/python:3.11-bookworm"
CONTAINERS_CONF = """\
[containers]
default_ulimits = []
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
"""
TOOLS = ("podman", "docker-registry")


def missing_tools(*extra: str) -> list[str]:
    return [t for t in (*TOOLS, *extra) if shutil.which(t) is None]


def require_tools(*extra: str) -> None:
    """Skip on a developer machine without podman; fail where the e2e test is required."""
    missing = missing_tools(*extra)
    if not missing:
        return
    reason = (f"{', '.join(missing)} not installed (apt-get install podman buildah runc "
              "docker-registry debootstrap)")
    if os.environ.get("MLGEN_E2E_REQUIRED") == "1":
        pytest.fail(f"MLGEN_E2E_REQUIRED=1 but {reason}")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check, timeout: float, what: str, interval: float = 0.2):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except AssertionError:
            raise  # the check saw something that will not get better (a crashed container)
        except Exception as exc:  # noqa: BLE001 - retried until the deadline, then reported
            last = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last error: {last})")


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 15) -> None:
    """Stop a process this module started, by its PID: SIGTERM, then SIGKILL."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)


@dataclass
class Containers:
    """A podman API service and a registry on loopback, with the env both need."""

    workdir: Path
    socket_path: Path
    registry: str  # 127.0.0.1:PORT
    env: dict[str, str]
    spare_registries: tuple[str, ...] = ()  # marked insecure, nothing listening until started

    def start_registry(self, address: str) -> subprocess.Popen[bytes]:
        """Start another registry (one of spare_registries); the caller stops it by PID."""
        proc = _start_registry(self.workdir, address, self.env)
        try:
            wait_until(lambda: _http_ok(f"http://{address}/v2/"), 30, f"the registry on {address}")
        except AssertionError:
            stop_process(proc)
            raise
        return proc

    @property
    def docker_host(self) -> str:
        return f"unix://{self.socket_path}"

    def podman(self, *args: str, check: bool = True, timeout: float = 300,
               input: str | None = None) -> subprocess.CompletedProcess[str]:
        out = subprocess.run(["podman", *args], env=self.env, capture_output=True, text=True,
                             timeout=timeout, input=input, check=False)
        if check and out.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)} failed ({out.returncode}):\n"
                                 f"{out.stdout}\n{out.stderr}")
        return out

    def registry_get(self, path: str) -> bytes:
        with urllib.request.urlopen(f"http://{self.registry}{path}", timeout=10) as resp:
            return bytes(resp.read())


@contextlib.contextmanager
def containers_env(base_env: dict[str, str] | None = None,
                   spare_registries: int = 0) -> Iterator[Containers]:
    """Start a registry and podman's API service; stop both (by PID) and remove their files."""
    workdir = Path(tempfile.mkdtemp(prefix="mlgen-podman-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        registry = f"127.0.0.1:{free_port()}"
        spares = tuple(f"127.0.0.1:{free_port()}" for _ in range(spare_registries))
        (workdir / "containers.conf").write_text(CONTAINERS_CONF)
        # podman reads this when it starts, so every registry a test may use is listed now.
        (workdir / "registries.conf").write_text("".join(
            f'[[registry]]\nlocation = "{r}"\ninsecure = true\n' for r in (registry, *spares)))
        env = dict(base_env if base_env is not None else os.environ)
        env.update(CONTAINERS_CONF=str(workdir / "containers.conf"),
                   CONTAINERS_REGISTRIES_CONF=str(workdir / "registries.conf"),
                   BUILDAH_ISOLATION="chroot")
        sock = workdir / "podman.sock"
        env["DOCKER_HOST"] = f"unix://{sock}"
        procs.append(_start_registry(workdir, registry, env))
        svc_log = open(workdir / "podman-service.log", "wb")  # noqa: SIM115 - closed by the child's exit
        procs.append(subprocess.Popen(["podman", "system", "service", "--time=0", f"unix://{sock}"],
                                      stdout=svc_log, stderr=subprocess.STDOUT, env=env))
        box = Containers(workdir=workdir, socket_path=sock, registry=registry, env=env,
                         spare_registries=spares)
        wait_until(lambda: _http_ok(f"http://{registry}/v2/"), 30, "the registry")
        wait_until(lambda: _ping(sock), 60, "podman's API socket")
        yield box
    finally:
        for proc in reversed(procs):
            stop_process(proc)
        shutil.rmtree(workdir, ignore_errors=True)


def _start_registry(workdir: Path, address: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    name = address.replace(":", "_")
    config = workdir / f"registry-{name}.yml"
    config.write_text(
        "version: 0.1\n"
        f"storage: {{filesystem: {{rootdirectory: {workdir / ('registry-' + name)}}}}}\n"
        f"http: {{addr: {address}}}\n"
        "log: {level: warn}\n")
    log = open(workdir / f"registry-{name}.log", "wb")  # noqa: SIM115
    return subprocess.Popen(["docker-registry", "serve", str(config)], stdout=log,
                            stderr=subprocess.STDOUT, env=env)


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return bool(resp.status == 200)


def _ping(sock: Path) -> bool:
    if not sock.exists():
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(5)
        conn.connect(str(sock))
        conn.sendall(b"GET /_ping HTTP/1.0\r\nHost: d\r\n\r\n")
        return b"200 OK" in conn.recv(1024)


def ensure_base_image(box: Containers, tag: str = BASE_IMAGE) -> str:
    """A Python 3.11 base from debootstrap, since public registries are unreachable; cached by
    tag."""
    if box.podman("image", "exists", tag, check=False).returncode == 0:
        return tag
    if shutil.which("debootstrap") is None:
        require_tools("debootstrap")
    rootfs = Path(tempfile.mkdtemp(prefix="mlgen-rootfs-"))
    try:
        out = subprocess.run(
            ["debootstrap", "--variant=minbase", "--include=python3,python3-venv,ca-certificates",
             "bookworm", str(rootfs)], capture_output=True, text=True, timeout=900, check=False)
        if out.returncode != 0:
            raise AssertionError(f"debootstrap failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
        # Leave out apt's lists and the docs: nothing in the image needs them.
        for junk in ("var/lib/apt/lists", "var/cache/apt", "usr/share/doc", "usr/share/man",
                     "usr/share/locale"):
            shutil.rmtree(rootfs / junk, ignore_errors=True)
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        imp = subprocess.run(
            ["podman", "import", "--change",
             "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "-", tag],
            stdin=tar.stdout, env=box.env, capture_output=True, text=True, timeout=600, check=False)
        assert tar.stdout is not None
        tar.stdout.close()
        tar.wait(timeout=60)
        if imp.returncode != 0:
            raise AssertionError(f"podman import failed: {imp.stderr}")
    finally:
        shutil.rmtree(rootfs, ignore_errors=True)
    return tag


SHELL_IMAGE = "localhost/mlgen-test/sh:1"


def ensure_shell_image(box: Containers, tag: str = SHELL_IMAGE) -> str:
    """A 2 MB image holding only the host's /bin/sh and the libraries it links: enough for
    RUN steps in fast build tests, without debootstrap or a registry."""
    if box.podman("image", "exists", tag, check=False).returncode == 0:
        return tag
    rootfs = Path(tempfile.mkdtemp(prefix="mlgen-shroot-"))
    try:
        shell = Path(os.path.realpath("/bin/sh"))
        files = {shell}
        out = subprocess.run(["ldd", str(shell)], capture_output=True, text=True, check=True)
        for line in out.stdout.splitlines():
            for word in line.split():
                if word.startswith("/"):
                    files.add(Path(word))
        for src in files:
            dest = rootfs / src.relative_to("/")
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(os.path.realpath(src), dest)
        (rootfs / "bin").mkdir(exist_ok=True)
        if not (rootfs / "bin" / "sh").exists():
            (rootfs / "bin" / "sh").symlink_to(shell)
        (rootfs / "tmp").mkdir()
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        imp = subprocess.run(["podman", "import", "-", tag], stdin=tar.stdout, env=box.env,
                             capture_output=True, text=True, timeout=120, check=False)
        assert tar.stdout is not None
        tar.stdout.close()
        tar.wait(timeout=60)
        assert imp.returncode == 0, f"podman import failed: {imp.stderr}"
    finally:
        shutil.rmtree(rootfs, ignore_errors=True)
    return tag


def image_ids(box: Containers) -> set[str]:
    out = box.podman("images", "--all", "--no-trunc", "--format", "{{.ID}}")
    return {
        line.strip().removeprefix("sha256:") for line in out.stdout.splitlines() if line.strip()
    }


@contextlib.contextmanager
def removes_new_images(box: Containers, keep: tuple[str, ...] = ()) -> Iterator[None]:
    """Remove, by ID, every image (build-stage layers included) created inside the block.

    Images named in `keep` (tags: the cached base images) stay.
    """
    before = image_ids(box)
    try:
        yield
    finally:
        kept: set[str] = set()
        for tag in keep:
            out = box.podman("image", "inspect", "--format", "{{.Id}}", tag, check=False)
            kept.update(
                x.strip().removeprefix("sha256:") for x in out.stdout.splitlines() if x.strip()
            )
        created = sorted(image_ids(box) - before - kept)
        if created:
            box.podman("rmi", "--force", *created, check=False)
