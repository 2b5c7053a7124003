"""The example monorepo copied into a real git repository in tmp_path, for each test."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers import EXAMPLES

MONOREPO = EXAMPLES / "monorepo"
MODELS = {"fraud": "models/fraud", "rent": "models/rent"}
GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com",
           "GIT_CONFIG_NOSYSTEM": "1", "HOME": "/nonexistent"}


def git(work: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(work), *args], capture_output=True, text=True,
                          check=True, env={**os.environ, **GIT_ENV}).stdout


@pytest.fixture()
def monorepo(tmp_path: Path) -> Path:
    repo = tmp_path / "models-repo"
    shutil.copytree(MONOREPO, repo, ignore=shutil.ignore_patterns("__pycache__"))
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "the example monorepo")
    return repo
