"""`mlgen check`, `sync` and `render` at a monorepo's root (or in one model's folder) act on
every model's files under the one root lock: green after a render, red after an edit of a
generated file, and a hand edit survives a sync that re-renders the file."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import call_mlgen

from .conftest import git


def check(capsys: pytest.CaptureFixture[str], where: Path) -> tuple[int, dict]:
    code, out, _ = call_mlgen(capsys, "-C", str(where), "check", "--json")
    return code, json.loads(out)


def test_check_is_green_on_the_example_from_the_root_and_from_a_model_folder(
        monorepo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, report = check(capsys, monorepo)
    assert code == 0 and report["in_sync"]
    paths = {f["path"] for f in report["files"]}
    assert {"models/fraud/Dockerfile", "models/rent/Dockerfile", "models/fraud/Jenkinsfile",
            ".github/workflows/fraud-ci.yml", ".github/workflows/rent-ci.yml",
            "models/rent/k8s/argocd/prod.yaml"} <= paths
    assert not (monorepo / "models/fraud/.mlgen/lock.json").exists()  # one lock, at the root
    # A model's CI runs `mlgen check` in its own folder: the same repository-wide answer.
    code, from_model = check(capsys, monorepo / "models" / "fraud")
    assert code == 0 and from_model == report


def test_an_edit_of_a_generated_file_turns_check_red(
        monorepo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    workflow = monorepo / ".github/workflows/rent-ci.yml"
    workflow.write_text(workflow.read_text().replace("timeout-minutes: 60", "timeout-minutes: 5"))
    code, report = check(capsys, monorepo)
    assert code == 1
    assert [(f["path"], f["status"]) for f in report["files"] if f["status"] != "ok"] == [
        (".github/workflows/rent-ci.yml", "edited")]


def test_sync_keeps_a_hand_edit_while_the_spec_change_lands(
        monorepo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    deployment = monorepo / "models/fraud/k8s/base/deployment.yaml"
    deployment.write_text(deployment.read_text() + "# team note: reviewed by risk\n")
    spec = monorepo / "models/fraud/mlgen.yaml"
    spec.write_text(spec.read_text().replace("version: \"2.0.1\"", "version: \"2.1.0\""))
    code, out, err = call_mlgen(capsys, "-C", str(monorepo), "sync")
    assert code == 0, out + err
    merged = deployment.read_text()
    assert "# team note: reviewed by risk" in merged and '"2.1.0"' in merged
    assert "merge  models/fraud/k8s/base/deployment.yaml" in out
    assert '"2.1.0"' in (monorepo / "models/fraud/k8s/overlays/prod/kustomization.yaml").read_text()
    assert "2.1.0" not in (monorepo / "models/rent/k8s/base/deployment.yaml").read_text()
    code, report = check(capsys, monorepo)
    assert code == 0, report
    git(monorepo, "add", "-A")
    changed = git(monorepo, "diff", "--cached", "--name-only").split()
    assert changed and all(p.startswith("models/fraud/") or p == ".mlgen/lock.json"
                           for p in changed), changed


def test_render_after_a_new_model_is_listed_writes_only_its_files(
        monorepo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    new = monorepo / "models" / "churn"
    new.mkdir()
    (new / "mlgen.yaml").write_text((monorepo / "models/fraud/mlgen.yaml").read_text()
                                    .replace("name: fraud", "name: churn")
                                    .replace("ml/fraud", "ml/churn"))
    root_spec = monorepo / "mlgen.yaml"
    root_spec.write_text(root_spec.read_text() + "  - models/churn\n")
    code, out, err = call_mlgen(capsys, "-C", str(monorepo), "render", "--json")
    assert code == 0, err
    created = sorted(f["path"] for f in json.loads(out)["files"] if f["action"] == "create")
    assert created and all(p.startswith(("models/churn/", ".github/workflows/churn-"))
                           for p in created), created
    assert ".github/workflows/churn-ci.yml" in created
    assert check(capsys, monorepo)[0] == 0


def test_init_inside_a_monorepo_leaves_pipeline_files_to_the_root(
        monorepo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = call_mlgen(capsys, "-C", str(monorepo), "init", str(monorepo / "models/churn"),
                              "--name", "churn", "--non-interactive")
    assert code == 0 and "list 'models/churn'" in err
    folder = monorepo / "models" / "churn"
    assert (folder / "mlgen.yaml").is_file() and (folder / "src" / "churn").is_dir()
    assert not (folder / ".mlgen/lock.json").exists() and not (folder / ".github").exists()
    assert not (folder / "Jenkinsfile").exists()
    root_spec = monorepo / "mlgen.yaml"
    root_spec.write_text(root_spec.read_text() + "  - models/churn\n")
    code, out, err = call_mlgen(capsys, "-C", str(monorepo), "sync")
    assert code == 0, out + err
    assert (monorepo / ".github/workflows/churn-ci.yml").is_file()
    assert (folder / "Jenkinsfile").is_file()
    assert check(capsys, monorepo)[0] == 0
    assert check(capsys, folder)[0] == 0
