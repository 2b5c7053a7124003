"""Fixtures for sync tests: a real `mlgen init` project inside a real git repository."""
from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from mlgen.cli import main

from tests.helpers import call_mlgen

GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com",
           "GIT_CONFIG_NOSYSTEM": "1", "HOME": "/nonexistent"}


@dataclass
class Project:
    root: Path
    capsys: pytest.CaptureFixture[str]

    def mlgen(self, *args: str) -> tuple[int, str, str]:
        return call_mlgen(self.capsys, "-C", str(self.root), *args)

    def git(self, *args: str) -> str:
        done = subprocess.run(
            ["git", "-c", "core.autocrlf=false", *args],
            check=False,
            cwd=self.root,
            capture_output=True,
            text=True,
            env={**os.environ, **GIT_ENV},
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def commit(self, message: str) -> None:
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)

    def read(self, path: str) -> str:
        return (self.root / path).read_text(encoding="utf-8")

    def write(self, path: str, text: str) -> None:
        (self.root / path).write_text(text, encoding="utf-8")

    def replace(self, path: str, old: str, new: str, count: int = 1) -> None:
        text = self.read(path)
        assert old in text, f"{old!r} not in {path}"
        self.write(path, text.replace(old, new, count))

    def spec(self, old: str, new: str) -> None:
        self.replace("mlgen.yaml", old, new)


@pytest.fixture
def project(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Project:
    root = tmp_path / "repo"
    proj = Project(root, capsys)
    rc = main(["init", str(root), "--non-interactive", "--name", "credit-risk"])
    assert rc == 0
    proj.git("init", "-q", "-b", "main")
    proj.commit("mlgen init")
    return proj
