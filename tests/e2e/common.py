"""What the two e2e tests (the model pipeline and the bot image) share: the podman box with its
timing summary, kube play output parsing, container state, and small git/HTTP helpers."""
from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.images.podman_env import Containers, containers_env, require_tools


class Timings(dict[str, float]):
    """Seconds per phase, printed when the module's box closes (`pytest -s` shows them)."""

    @contextmanager
    def timed(self, name: str) -> Iterator[None]:
        start = time.monotonic()
        try:
            yield
        finally:
            self[name] = time.monotonic() - start


def containers_box(timings: Timings, label: str) -> Iterator[Containers]:
    """The podman service, registry and config of tests/images/podman_env.py for one module.
    Both e2e modules need the same tools, so they skip (or fail in CI) together."""
    require_tools("buildah", "debootstrap", "kubectl")
    start = time.monotonic()
    with containers_env() as containers:
        yield containers
    timings["total"] = time.monotonic() - start
    print(f"\n{label} timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()))


def ids_after(output: str, header: str) -> list[str]:
    """IDs listed under a header ("Pod:", "Container:") in `podman kube play` output."""
    lines = output.splitlines()
    ids: list[str] = []
    for i, line in enumerate(lines):
        if line.strip() == header:
            for nxt in lines[i + 1:]:
                if not nxt.strip() or nxt.strip().endswith(":"):
                    break
                ids.append(nxt.strip())
    assert ids, f"no {header} in kube play output:\n{output}"
    return ids


def exited(box: Containers, container: str) -> dict[str, Any] | None:
    """The container's state once it has exited or stopped, else None."""
    state = json.loads(box.podman("inspect", "--format", "{{json .State}}", container).stdout)
    return state if state.get("Status") in ("exited", "stopped") else None


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                          check=True, timeout=60).stdout


def http_get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
