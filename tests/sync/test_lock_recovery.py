"""A damaged .mlgen/lock.json: a message that says so (not "upgrade mlgen"), and a way out
(`mlgen sync --rebuild-lock`) that never loses a hand edit. Real `mlgen` subprocesses."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.helpers import run_mlgen, snapshot
from tests.sync.conftest import GIT_ENV

LOCK = ".mlgen/lock.json"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    assert (
        run_mlgen("init", str(root), "--non-interactive", "--name", "credit-risk").returncode == 0
    )
    return root


def _errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


@pytest.mark.parametrize(("content", "problem"), [
    (b'<<<<<<< HEAD\n{"lockFormat": 1}\n', "it is not valid JSON"),  # a bad git merge
    (b'{"files": {}}\n', "it has no lockFormat"),
    (b'{"lockFormat": "one", "files": {}}\n', "lockFormat 'one' is not a format mlgen writes"),
    (b'[1, 2]\n', "it is JSON but a list, not an object"),
    (b'{"lockFormat": 1, "templates": {}}\n', "a required key is missing ('files')"),
])
@pytest.mark.parametrize("command", [["check"], ["sync"], ["render"]])
def test_a_damaged_lock_says_so_names_the_file_and_the_way_out(
        repo: Path, content: bytes, problem: str, command: list[str]) -> None:
    (repo / LOCK).write_bytes(content)
    before = snapshot(repo)
    result = run_mlgen("-C", str(repo), *command)
    assert result.returncode == 2, result.stderr
    (line,) = _errors(result.stderr)
    assert line.startswith(f"error: {repo / LOCK}: the lock file is damaged: {problem}"), line
    assert "git checkout -- .mlgen/lock.json" in line and "mlgen sync --rebuild-lock" in line
    assert "upgrade" not in line and "Traceback" not in result.stderr
    assert snapshot(repo) == before


def test_only_a_newer_lock_format_says_upgrade(repo: Path) -> None:
    doc = json.loads((repo / LOCK).read_text())
    (repo / LOCK).write_text(json.dumps({**doc, "lockFormat": 99}))
    result = run_mlgen("-C", str(repo), "check")
    (line,) = _errors(result.stderr)
    assert "lockFormat 99 was written by a newer mlgen" in line and line.endswith("upgrade mlgen")
    assert "damaged" not in line


def test_rebuild_lock_keeps_every_file_and_records_edits_for_check(repo: Path) -> None:
    dockerfile = repo / "Dockerfile"
    lines = dockerfile.read_text().splitlines(keepends=True)
    edited = "".join(lines[:5] + ["# our proxy settings, by hand\n"] + lines[5:])
    dockerfile.write_text(edited)
    (repo / "k8s/base/hpa.yaml").unlink()
    jenkinsfile = (repo / "Jenkinsfile").read_text()
    (repo / LOCK).write_text("{ truncated")
    before = {p: h for p, h in snapshot(repo).items() if p != LOCK}

    dry = run_mlgen("-C", str(repo), "sync", "--rebuild-lock", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert (repo / LOCK).read_text() == "{ truncated" and "nothing written" in dry.stderr

    result = run_mlgen("-C", str(repo), "sync", "--rebuild-lock", "--json")
    assert result.returncode == 0, result.stderr
    status = {f["path"]: f["status"] for f in json.loads(result.stdout)["files"]}
    assert status.pop("Dockerfile") == "edited" and status.pop("k8s/base/hpa.yaml") == "missing"
    assert set(status.values()) == {"generated"}
    # Only the lock was written: every other file, the hand edit included, is as it was.
    assert {p: h for p, h in snapshot(repo).items() if p != LOCK} == before
    json.loads((repo / LOCK).read_text())

    check = run_mlgen("-C", str(repo), "check", "--json")
    assert check.returncode == 1
    files = {f["path"]: f for f in json.loads(check.stdout)["files"]}
    assert files["Dockerfile"]["status"] == "edited"
    assert "+# our proxy settings, by hand" in files["Dockerfile"]["diff"]
    assert files["k8s/base/hpa.yaml"]["status"] == "missing"
    assert {f["status"] for p, f in files.items()
            if p not in ("Dockerfile", "k8s/base/hpa.yaml")} == {"ok"}

    synced = run_mlgen("-C", str(repo), "sync", "--json")
    assert synced.returncode == 0, synced.stderr
    actions = {f["path"]: f["action"] for f in json.loads(synced.stdout)["files"]}
    assert actions["Dockerfile"] == "keep" and actions["k8s/base/hpa.yaml"] == "create"
    assert dockerfile.read_text() == edited and (repo / "Jenkinsfile").read_text() == jenkinsfile
    assert run_mlgen("-C", str(repo), "check").returncode == 0

    # The rebuilt base is a real merge base: a spec change merges in, the hand edit stays.
    spec = repo / "mlgen.yaml"
    spec.write_text(spec.read_text().replace("  port: 8080\n", "  port: 9090\n", 1))
    assert run_mlgen("-C", str(repo), "sync").returncode == 0
    merged = dockerfile.read_text()
    assert "# our proxy settings, by hand" in merged and "9090" in merged and "8080" not in merged


def test_rebuild_lock_in_a_git_checkout_changes_only_the_lock(repo: Path) -> None:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True,
                              env={**GIT_ENV, "PATH": "/usr/bin:/bin"}, check=True)
        return done.stdout

    git("init", "-q", "-b", "main")
    git("add", "-A")
    git("commit", "-qm", "init")
    (repo / LOCK).write_text("")
    assert run_mlgen("-C", str(repo), "sync", "--rebuild-lock").returncode == 0
    assert git("status", "--porcelain").strip() in ("", f"M {LOCK}")
    assert run_mlgen("-C", str(repo), "check").returncode == 0


@pytest.mark.parametrize("extra", [["--pr"], ["--diff"], ["--restore", "Dockerfile"],
                                   ["--conflict", "ours"]])
def test_rebuild_lock_refuses_flags_it_would_ignore(repo: Path, extra: list[str]) -> None:
    result = run_mlgen("-C", str(repo), "sync", "--rebuild-lock", *extra)
    assert result.returncode == 2
    assert "--rebuild-lock writes only the local lock" in result.stderr
