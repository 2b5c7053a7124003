"""azure-pipelines.yml is a pipeline file like the others: opting in writes it and locks it,
`mlgen check` notices it stale or edited, `mlgen sync` merges an edit, opting out removes it
from the lock."""
from __future__ import annotations

import json

from .conftest import Project

TARGETS = "targets: [jenkins, github-actions, docker, kubernetes, azure-pipelines]\n"
EDIT = "# team note: the Azure DevOps project is ml-platform\n"


def _check(project: Project) -> tuple[int, dict[str, str]]:
    code, out, _ = project.mlgen("check", "--json")
    return code, {f["path"]: f["status"] for f in json.loads(out)["files"]}


def _opt_in(project: Project) -> None:
    project.write("mlgen.yaml", project.read("mlgen.yaml") + TARGETS)


def test_opting_in_writes_locks_and_checks_the_file(project: Project) -> None:
    assert "azure-pipelines.yml" not in _check(project)[1]
    _opt_in(project)
    code, status = _check(project)
    assert code == 1 and status["azure-pipelines.yml"] != "ok"  # not written yet
    assert project.mlgen("sync")[0] == 0
    lock = json.loads(project.read(".mlgen/lock.json"))
    assert lock["files"]["azure-pipelines.yml"]["target"] == "azure-pipelines"
    code, status = _check(project)
    assert code == 0 and status["azure-pipelines.yml"] == "ok"


def test_check_flags_a_hand_edit_and_sync_keeps_it_through_a_spec_change(
        project: Project) -> None:
    _opt_in(project)
    assert project.mlgen("sync")[0] == 0
    project.commit("azure pipelines")
    project.write("azure-pipelines.yml", project.read("azure-pipelines.yml") + EDIT)
    code, status = _check(project)
    assert code == 1 and status["azure-pipelines.yml"] != "ok"
    # A spec change renders a new file; the hand edit is merged in, not lost.
    project.spec("\nci:\n", "\nci:\n  azure:\n    pool: gpu\n")
    assert project.mlgen("sync")[0] == 0
    text = project.read("azure-pipelines.yml")
    assert EDIT in text and 'name: "gpu"' in text and "vmImage" not in text


def test_opting_out_leaves_the_lock(project: Project) -> None:
    _opt_in(project)
    assert project.mlgen("sync")[0] == 0
    project.write("mlgen.yaml", project.read("mlgen.yaml").replace(TARGETS, ""))
    project.mlgen("sync")
    lock = json.loads(project.read(".mlgen/lock.json"))
    assert "azure-pipelines.yml" not in lock["files"]
    assert _check(project)[0] == 0
