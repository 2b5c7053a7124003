"""A real `mlgen sync` process killed between staging and committing leaves the tree as it was."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from mlgen.lock import LOCK_PATH

from .conftest import Project


def _snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file() and ".git/" not in p.as_posix()}


def _start_sync_and_wait_until_staged(project: Project) -> subprocess.Popen[bytes]:
    env = {**os.environ, "MLGEN_TEST_PAUSE_BEFORE_COMMIT": "30"}
    proc = subprocess.Popen([sys.executable, "-m", "mlgen", "-C", str(project.root), "sync"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lock_dir = project.root / ".mlgen"
    deadline = time.monotonic() + 60  # a guard against hanging, not a timed assertion
    # The lock is staged last: once its temp file exists, every file is staged.
    while not any(lock_dir.glob(".lock.json.*.mlgen-tmp")):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "sync never reached the commit step"
        time.sleep(0.05)
    time.sleep(0.2)  # let the lock's temp file be fully written and the pause begin
    return proc


def test_sync_killed_with_sigkill_half_way_leaves_tracked_files_unchanged(project: Project) -> None:
    project.replace("Dockerfile", "WORKDIR /app\n", "WORKDIR /app\n# kept\n")
    project.spec("port: 8080", "port: 9090")
    before = _snapshot(project.root)
    proc = _start_sync_and_wait_until_staged(project)
    staged = list(project.root.rglob("*.mlgen-tmp"))
    assert len(staged) >= 5  # really mid-write: new contents are on disk, staged
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    after = _snapshot(project.root)
    # Every real file is byte-identical; only the killed process's temp files are extra.
    assert {k: v for k, v in after.items() if not k.endswith(".mlgen-tmp")} == before
    # The next sync clears the leftovers and completes.
    rc, _, _ = project.mlgen("sync")
    assert rc == 0
    assert not list(project.root.rglob("*.mlgen-tmp"))
    assert "EXPOSE 9090" in project.read("Dockerfile") and "# kept" in project.read("Dockerfile")


def test_sync_terminated_half_way_rolls_back_completely(project: Project) -> None:
    project.spec("port: 8080", "port: 9090")
    before = _snapshot(project.root)
    lock_before = (project.root / LOCK_PATH).read_bytes()
    proc = _start_sync_and_wait_until_staged(project)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate()
    assert proc.returncode == 130, err
    assert _snapshot(project.root) == before  # no temp file left either
    assert (project.root / LOCK_PATH).read_bytes() == lock_before
    assert project.git("status", "--porcelain") == " M mlgen.yaml\n"
