"""The hooks file other repositories point pre-commit at names real commands that work."""
from __future__ import annotations

import shlex

import yaml

from tests.helpers import REPO as REPO_ROOT

from .conftest import Project

HOOKS = REPO_ROOT / ".pre-commit-hooks.yaml"


def test_hooks_run_mlgen_check(project: Project) -> None:
    hooks = {h["id"]: h for h in yaml.safe_load(HOOKS.read_text())}
    assert set(hooks) == {"mlgen-check", "mlgen-migrate-check"}
    for hook in hooks.values():
        assert {"id", "name", "entry", "language"} <= set(hook) and hook["language"] == "python"
        assert hook["pass_filenames"] is False
    argv = shlex.split(hooks["mlgen-check"]["entry"])
    assert argv[0] == "mlgen"
    assert project.mlgen(*argv[1:])[0] == 0
    project.replace("Dockerfile", "WORKDIR /app\n", "WORKDIR /app\n# edit\n")
    assert project.mlgen(*argv[1:])[0] == 1
    assert project.mlgen(*shlex.split(hooks["mlgen-migrate-check"]["entry"])[1:])[0] == 0
