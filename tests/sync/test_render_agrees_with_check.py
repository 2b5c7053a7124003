"""`mlgen render` and `mlgen check` agree, whatever state the repository is in.

For each scenario (a real `mlgen init` project in a real git repository, changed by real
`mlgen` subprocesses and by hand) the same properties hold:

- check says up to date  <=>  render is a no-op: exit 0, nothing written (the lock included),
  `render --diff` empty, `render --dry-run --json` all unchanged;
- check says not up to date  =>  render either brings the tree up to date (check passes
  after it, and a second render is a no-op) or refuses (exit 1) and writes nothing;
- `render --dry-run` and `--diff` exit as `render` does, and render's per-file status is
  check's.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import run_mlgen

from .conftest import GIT_ENV

EDIT = "# team note: keep the build small\n"


class Repo:
    def __init__(self, root: Path) -> None:
        self.root = root

    def mlgen(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k != "MLGEN_TEMPLATES"}
        return run_mlgen("-C", str(self.root), *args, env=env, timeout=120)

    def git(self, *args: str) -> str:
        done = subprocess.run(["git", "-c", "core.autocrlf=false", *args], cwd=self.root,
                              env={**os.environ, **GIT_ENV}, capture_output=True, text=True,
                              check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def replace(self, path: str, old: str, new: str) -> None:
        target = self.root / path
        text = target.read_text(encoding="utf-8")
        assert old in text, f"{old!r} not in {path}"
        target.write_text(text.replace(old, new, 1), encoding="utf-8")

    def sync(self, *args: str, rc: int = 0) -> None:
        done = self.mlgen("sync", *args)
        assert done.returncode == rc, done.stdout + done.stderr

    def snapshot(self) -> dict[str, str]:
        return {p.relative_to(self.root).as_posix():
                hashlib.sha256(p.read_bytes()).hexdigest() + oct(p.stat().st_mode)
                for p in sorted(self.root.rglob("*"))
                if p.is_file() and ".git" not in p.relative_to(self.root).parts}


def _fresh_init(repo: Repo) -> None:
    pass


def _hand_edit_then_sync(repo: Repo) -> None:
    repo.replace("Dockerfile", "WORKDIR /app\n", "WORKDIR /app\n" + EDIT)
    repo.sync()


def _hand_edit_not_synced(repo: Repo) -> None:
    repo.replace("Dockerfile", "WORKDIR /app\n", "WORKDIR /app\n" + EDIT)


def _spec_changed(repo: Repo) -> None:
    repo.replace("mlgen.yaml", "port: 8080", "port: 9090")


def _spec_changed_over_recorded_edit(repo: Repo) -> None:
    _hand_edit_then_sync(repo)
    _spec_changed(repo)  # the Dockerfile's EXPOSE changes: the edit needs a merge


def _spec_changed_then_sync(repo: Repo) -> None:
    _spec_changed_over_recorded_edit(repo)
    repo.sync()


def _conflict_left_by_sync(repo: Repo) -> None:
    repo.replace("Dockerfile", "EXPOSE 8080\n", "EXPOSE 8081\n")
    repo.sync()
    _spec_changed(repo)
    repo.sync(rc=1)


def _file_deleted(repo: Repo) -> None:
    (repo.root / "k8s/base/hpa.yaml").unlink()


def _file_deleted_then_sync(repo: Repo) -> None:
    _file_deleted(repo)
    repo.sync()


def _override(repo: Repo, text: str) -> None:
    folder = repo.root / "org-templates" / "docker"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "dockerignore.j2").write_text(text)


def _template_override_changed(repo: Repo) -> None:
    repo.replace("mlgen.yaml", "\nserve:", "\ntemplates: org-templates\nserve:")
    _override(repo, "# org policy for {{ name }}\n**\n")
    repo.sync()
    _override(repo, "# org policy v2 for {{ name }}\n**\n!src/\n")


def _template_override_changed_over_recorded_edit(repo: Repo) -> None:
    repo.replace("mlgen.yaml", "\nserve:", "\ntemplates: org-templates\nserve:")
    _override(repo, "# org policy for {{ name }}\n**\n")
    repo.sync()
    repo.replace(".dockerignore", "**\n", "**\n!notebooks/\n")
    repo.sync()
    _override(repo, "# org policy v2 for {{ name }}\n**\n")


def _target_disabled(repo: Repo) -> None:
    repo.replace("k8s/base/hpa.yaml", "kind: HorizontalPodAutoscaler\n",
                 "kind: HorizontalPodAutoscaler\n# tuned by SRE\n")
    repo.sync()
    repo.replace("mlgen.yaml", "name: credit-risk\n",
                 "name: credit-risk\ntargets: [jenkins, github-actions, docker]\n")


def _mode_changed(repo: Repo) -> None:
    (repo.root / "Dockerfile").chmod(0o755)


def _crlf_checkout(repo: Repo) -> None:
    path = repo.root / "Jenkinsfile"
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))


# name -> (setup, check's verdict "in sync", render's exit code)
SCENARIOS: dict[str, tuple[Callable[[Repo], None], bool, int]] = {
    "fresh-init": (_fresh_init, True, 0),
    "hand-edit-then-sync": (_hand_edit_then_sync, True, 0),
    "hand-edit-not-synced": (_hand_edit_not_synced, False, 1),
    "spec-changed": (_spec_changed, False, 0),
    "spec-changed-over-recorded-edit": (_spec_changed_over_recorded_edit, False, 1),
    "spec-changed-then-sync": (_spec_changed_then_sync, True, 0),
    "conflict-left-by-sync": (_conflict_left_by_sync, False, 1),
    "file-deleted": (_file_deleted, False, 0),
    "file-deleted-then-sync": (_file_deleted_then_sync, True, 0),
    "template-override-changed": (_template_override_changed, False, 0),
    "template-override-changed-over-recorded-edit":
        (_template_override_changed_over_recorded_edit, False, 1),
    "target-disabled": (_target_disabled, False, 0),
    "mode-changed": (_mode_changed, True, 0),
    "crlf-checkout": (_crlf_checkout, True, 0),
}


@pytest.fixture(scope="module")
def initialised(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("agree") / "repo"
    done = subprocess.run([sys.executable, "-m", "mlgen", "init", str(root), "--non-interactive",
                           "--name", "credit-risk"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return root


@pytest.mark.parametrize("name", SCENARIOS)
def test_render_agrees_with_check(name: str, initialised: Path, tmp_path: Path) -> None:
    setup, in_sync, render_rc = SCENARIOS[name]
    repo = Repo(tmp_path / "repo")
    subprocess.run(["cp", "-a", str(initialised), str(repo.root)], check=True)
    repo.git("init", "-q", "-b", "main")
    repo.git("add", "-A")
    repo.git("commit", "-q", "-m", "mlgen init")
    setup(repo)

    check = repo.mlgen("check", "--json")
    verdict = json.loads(check.stdout)
    assert check.returncode == (0 if verdict["in_sync"] else 1)
    assert verdict["in_sync"] is in_sync, check.stdout
    statuses = {f["path"]: f["status"] for f in verdict["files"]}

    before = repo.snapshot()
    dry = repo.mlgen("render", "--dry-run", "--json")
    diff = repo.mlgen("render", "--diff")
    assert repo.snapshot() == before  # neither writes
    render = repo.mlgen("render")
    after = repo.snapshot()
    assert (dry.returncode, diff.returncode, render.returncode) == (render_rc,) * 3, \
        render.stdout + render.stderr
    planned = json.loads(dry.stdout) if render_rc == 0 else {"files": []}
    changed = [f["path"] for f in planned["files"] if f["action"] != "unchanged"]
    if in_sync:
        assert after == before, "render changed files check calls up to date"
        assert diff.stdout == "" and changed == [] and planned["written"] is False
    elif render_rc == 0:
        assert changed and diff.stdout, "check saw a difference that render does not fix"
        assert after != before
        recheck = repo.mlgen("check")
        assert recheck.returncode == 0, recheck.stdout + recheck.stderr
        again = repo.snapshot()
        assert repo.mlgen("render").returncode == 0 and repo.snapshot() == again
    else:
        assert after == before, "a refused render wrote something"
        assert "mlgen sync" in render.stderr and "--force" in render.stderr
    # One decision: render judges every file exactly as check does.
    if render_rc == 0:
        assert {f["path"]: f["status"] for f in planned["files"]} == statuses
