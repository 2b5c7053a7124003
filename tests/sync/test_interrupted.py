"""A real `mlgen sync` process killed between staging and committing leaves the tree as it was;
killed during the renames, the next mlgen command finishes them from the journal."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from mlgen.sync.lock import LOCK_PATH
from mlgen.sync.writer import JOURNAL

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


def _start_sync_and_wait_mid_commit(project: Project) -> subprocess.Popen[bytes]:
    env = {**os.environ, "MLGEN_TEST_PAUSE_MID_COMMIT": "30"}
    proc = subprocess.Popen([sys.executable, "-m", "mlgen", "-C", str(project.root), "sync"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    journal = project.root / JOURNAL
    deadline = time.monotonic() + 60  # a guard against hanging, not a timed assertion
    while not journal.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "sync never reached the renames"
        time.sleep(0.05)
    time.sleep(0.3)  # the first rename is done, the pause has begun
    return proc


def _kill_mid_commit(project: Project) -> list[str]:
    """SIGKILL a real sync after its first rename; the paths its journal still has to rename."""
    proc = _start_sync_and_wait_mid_commit(project)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    journal = json.loads((project.root / JOURNAL).read_bytes())
    return [e["path"] for e in journal["files"]
            if e["tmp"] and (project.root / e["path"]).parent.joinpath(e["tmp"]).exists()]


def test_sigkill_during_the_renames_is_finished_by_the_next_command(project: Project) -> None:
    project.replace("Dockerfile", "WORKDIR /app\n", "WORKDIR /app\n# kept\n")
    project.spec("port: 8080", "port: 9090")
    # Killed half way: some files new, some not, the lock still the old one. The journal says
    # what is left to do.
    pending = _kill_mid_commit(project)
    assert len(pending) >= 2 and LOCK_PATH in pending
    # Any command that reads the project finishes the write first: check then sees the
    # complete sync, with the hand edit merged.
    rc, out, err = project.mlgen("check")
    assert rc == 0, out + err
    assert "finished a write that was interrupted" in err
    assert not (project.root / JOURNAL).exists() and not list(project.root.rglob("*.mlgen-tmp"))
    assert "EXPOSE 9090" in project.read("Dockerfile") and "# kept" in project.read("Dockerfile")
    assert project.mlgen("sync")[0] == 0 and "EXPOSE 9090" in project.read("Dockerfile")


def test_interrupted_write_never_overwrites_a_later_hand_edit(project: Project) -> None:
    project.spec("port: 8080", "port: 9090")
    victim = next(p for p in _kill_mid_commit(project) if p != LOCK_PATH)
    (project.root / victim).write_text("edited after the crash\n")
    before = _snapshot(project.root)
    rc, _, err = project.mlgen("sync")
    assert rc == 1 and victim in err and "Nothing was touched" in err
    assert _snapshot(project.root) == before


def test_a_journal_pointing_outside_the_project_is_refused(project: Project) -> None:
    (project.root / JOURNAL).write_text(json.dumps({"version": 1, "files": [
        {"path": "../outside", "tmp": None, "old": None, "new": None}]}))
    before = _snapshot(project.root)
    rc, _, err = project.mlgen("check")
    assert rc == 1 and "outside the project" in err
    assert _snapshot(project.root) == before
